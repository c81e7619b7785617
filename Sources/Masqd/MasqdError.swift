// Errors the daemon reports to a person: each is one line naming the culprit.

public struct MasqdError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) { self.description = description }

    /// A bad option value: "--lan 192.0.2.0/33: not an IPv4 prefix (A.B.C.D/N)".
    public static func option(_ name: String, _ value: String, _ reason: String) -> MasqdError {
        MasqdError("\(name) \(value): \(reason)")
    }
}
