import Benchmark
import NATCore

// What a checkpoint costs (issue #8): `exportState` runs with the engine's lock held, so its
// time is how long the packet workers wait; encoding and writing happen outside the lock.

func stateBenchmarks() {
    Benchmark("Export the state of 262144 flows (under the engine lock)",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal], scalingFactor: .one, maxDuration: .seconds(10), maxIterations: 10,
                                   thresholds: [:])) { (benchmark: Benchmark, setup: (NATTranslator, [[UInt8]])) in
        for _ in benchmark.scaledIterations {
            blackHole(setup.0.exportState(now: start, savedAt: 1_700_000_000_000_000_000))
        }
    } setup: {
        populatedTranslator(flows: 262_144)
    }

    Benchmark("Encode the state of 262144 flows (outside the lock)",
              configuration: .init(metrics: [.wallClock], scalingFactor: .one, maxDuration: .seconds(10), maxIterations: 10,
                                   thresholds: [:])) { (benchmark: Benchmark, snapshot: NATStateSnapshot) in
        for _ in benchmark.scaledIterations {
            blackHole(snapshot.encoded())
        }
    } setup: {
        populatedTranslator(flows: 262_144).0.exportState(now: start, savedAt: 1_700_000_000_000_000_000)
    }
}
