import Glibc

/// Why a NetfilterQueue operation failed.
public enum NetfilterQueueError: Error, CustomStringConvertible, Equatable {
    /// The bind was refused with EPERM: another socket owns this queue number.
    case queueInUse(UInt16)
    /// A system call or a netlink request failed with `errno`.
    case system(operation: String, errno: Int32)
    /// The kernel did not answer a configuration request in time.
    case noAcknowledgement(operation: String)
    /// The configuration cannot be used (e.g. batchSize < 1).
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .queueInUse(let queue):
            return "queue \(queue) is already in use"
        case .system(let operation, let code):
            return "\(operation): \(String(cString: strerror(code)))"
        case .noAcknowledgement(let operation):
            return "\(operation): no answer from the kernel"
        case .invalidConfiguration(let reason):
            return "invalid queue configuration: \(reason)"
        }
    }
}
