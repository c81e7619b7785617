// A fixed log2 histogram of nanosecond durations: what `masqd stats` shows of the time
// packets spend inside the engine. Recording is a few integer operations, no allocation.

struct LatencyHistogram {
    /// Bucket i counts durations below 2^(i+7) ns (128 ns … ~1 s); the last takes the rest.
    static let bucketCount = 24
    private(set) var buckets = [UInt64](repeating: 0, count: LatencyHistogram.bucketCount)
    private(set) var samples: UInt64 = 0
    private(set) var total: UInt64 = 0

    static func upperBound(_ bucket: Int) -> UInt64 { 1 << UInt64(bucket + 7) }

    mutating func record(_ nanoseconds: UInt64, count: UInt64 = 1) {
        let bits = 64 - nanoseconds.leadingZeroBitCount // nanoseconds < 2^bits
        let bucket = min(max(bits - 7, 0), LatencyHistogram.bucketCount - 1)
        buckets[bucket] &+= count
        samples &+= count
        total &+= nanoseconds &* count
    }

    /// Adds another histogram's samples (the workers' histograms, for a report).
    mutating func add(_ other: LatencyHistogram) {
        for i in buckets.indices { buckets[i] &+= other.buckets[i] }
        samples &+= other.samples
        total &+= other.total
    }

    /// The bucket bound below which `fraction` of the samples lie (an upper estimate).
    func percentile(_ fraction: Double) -> UInt64 {
        guard samples > 0 else { return 0 }
        let wanted = UInt64((Double(samples) * fraction).rounded(.up))
        var seen: UInt64 = 0
        for (i, n) in buckets.enumerated() {
            seen += n
            if seen >= wanted { return LatencyHistogram.upperBound(i) }
        }
        return LatencyHistogram.upperBound(LatencyHistogram.bucketCount - 1)
    }

    /// `name_le_BOUND count` lines (cumulative, like a Prometheus histogram), then sum and count.
    func report(_ name: String) -> [(String, String)] {
        var lines: [(String, String)] = []
        var cumulative: UInt64 = 0
        for (i, n) in buckets.enumerated() {
            cumulative += n
            if n > 0 || (cumulative > 0 && cumulative < samples) {
                lines.append(("\(name)_le_\(LatencyHistogram.upperBound(i))", "\(cumulative)"))
            }
        }
        lines.append(("\(name)_count", "\(samples)"))
        lines.append(("\(name)_sum", "\(total)"))
        lines.append(("\(name)_p50", "\(percentile(0.5))"))
        lines.append(("\(name)_p99", "\(percentile(0.99))"))
        return lines
    }
}
