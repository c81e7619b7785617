// `--worker-cpus LIST`: pins each packet worker to one CPU (issue #21). Unpinned (the
// default), the scheduler may place a worker so that each packet wakes a halted vCPU, which
// on a small VM moves a round trip's latency by more than the engine's own work; pinned, the
// placement is the operator's choice and stays put. Which CPUs exist is checked at start
// (pthread_setaffinity_np refuses an offline one), not here: `rules print` may run elsewhere.

extension EngineOptions {
    /// CPU_SETSIZE: the highest CPU number pthread_setaffinity_np can name, plus one.
    static let cpuNumberLimit = 1024

    func checkedWorkerCPUs() throws(MasqdError) -> [Int] {
        guard let workerCpus else { return [] }
        var cpus: [Int] = []
        for piece in workerCpus.split(separator: ",", omittingEmptySubsequences: false) {
            guard let cpu = Int(piece), (0..<Self.cpuNumberLimit).contains(cpu) else {
                throw .option("--worker-cpus", workerCpus, "expected a comma-separated list of CPU numbers from 0 to \(Self.cpuNumberLimit - 1)")
            }
            cpus.append(cpu)
        }
        return cpus
    }
}
