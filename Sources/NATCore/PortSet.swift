/// A set of outside ports: configured ranges, or a MAP-E port set (RFC 7597 §5.1). Ports are addressed
/// by index 0..<count, so an allocator can walk them in any order without materialising a list.
public struct PortSet: Sendable, Equatable, CustomStringConvertible {
    /// Sorted, disjoint, non-adjacent ranges.
    public let ranges: [ClosedRange<UInt16>]
    /// `starts[i]` is the index of the first port of `ranges[i]`.
    @usableFromInline let starts: [Int]
    public let count: Int

    /// Every port 1-65535.
    public static let all = PortSet(ranges: [1...65535])

    public init(ranges input: [ClosedRange<UInt16>]) {
        let sorted = input.sorted { $0.lowerBound < $1.lowerBound }
        var merged: [ClosedRange<UInt16>] = []
        for r in sorted {
            if let last = merged.last, Int(r.lowerBound) <= Int(last.upperBound) + 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                merged.append(r)
            }
        }
        var s: [Int] = []
        var n = 0
        for r in merged {
            s.append(n)
            n += Int(r.upperBound) - Int(r.lowerBound) + 1
        }
        ranges = merged
        starts = s
        count = n
    }

    /// The MAP-E port set of RFC 7597 §5.1: `offsetBits` (a), `psidLength` (k), and `psid`. Each block
    /// index A runs from 1 to 2^a − 1 (A = 0, the well-known ports, is excluded when a > 0), and each block
    /// holds 2^(16−a−k) contiguous ports: port = A·2^(16−a) + PSID·2^(16−a−k) + j.
    /// v6plus (a=4, k=8) gives 15 × 16 = 240 ports; OCN virtual connect (a=6, k=6) 63 × 16 = 1008.
    public init?(psid: UInt16, psidLength k: Int, offsetBits a: Int) {
        guard (0...16).contains(a), (0...16).contains(k), a + k <= 16,
              k == 16 ? true : Int(psid) < (1 << k) else { return nil }
        let m = 16 - a - k
        var rs: [ClosedRange<UInt16>] = []
        let firstA = a == 0 ? 0 : 1
        let lastA = (1 << a) - 1
        for blockA in firstA...lastA {
            let base = (blockA << (16 - a)) | (Int(psid) << m)
            let lo = base, hi = base + (1 << m) - 1
            guard hi <= 65535 else { continue }
            // Port 0 is never usable.
            let l = max(lo, 1)
            if l <= hi { rs.append(UInt16(l)...UInt16(hi)) }
        }
        guard !rs.isEmpty else { return nil }
        self.init(ranges: rs)
    }

    /// The port at `index` (0..<count).
    @inlinable public func port(at index: Int) -> UInt16 {
        // Binary search for the range holding `index`.
        var lo = 0, hi = starts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) >> 1
            if starts[mid] <= index { lo = mid } else { hi = mid - 1 }
        }
        return ranges[lo].lowerBound &+ UInt16(truncatingIfNeeded: index - starts[lo])
    }

    @inlinable public func contains(_ port: UInt16) -> Bool {
        for r in ranges where r.contains(port) { return true }
        return false
    }

    /// The ports of this set below 1024 and from 1024 up (RFC 4787 REQ-3 / RFC 6888: keep a
    /// privileged source port privileged and an unprivileged one unprivileged).
    public func split(at boundary: UInt16 = 1024) -> (low: PortSet, high: PortSet) {
        var low: [ClosedRange<UInt16>] = [], high: [ClosedRange<UInt16>] = []
        for r in ranges {
            if r.upperBound < boundary { low.append(r) }
            else if r.lowerBound >= boundary { high.append(r) }
            else {
                low.append(r.lowerBound...(boundary - 1))
                high.append(boundary...r.upperBound)
            }
        }
        return (PortSet(ranges: low), PortSet(ranges: high))
    }

    public var description: String {
        ranges.map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            .joined(separator: ",")
    }
}
