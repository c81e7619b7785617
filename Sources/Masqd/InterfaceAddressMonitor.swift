import CLinux
import Glibc

/// Follows one interface's IPv4 address: an rtnetlink socket subscribed to address and link
/// events (RTMGRP_IPV4_IFADDR | RTMGRP_LINK), nonblocking, for the daemon's poll loop.
/// When `fileDescriptor` is readable, call `drainEvents()`; if it returns true, look the
/// address up again with `currentIPv4Address(interfaceName:)`. Use it from one thread.
public final class InterfaceAddressMonitor {
    public let interfaceName: String
    /// The rtnetlink socket (nonblocking).
    public let fileDescriptor: Int32
    private var interfaceIndex: UInt32
    private let buffer: UnsafeMutableRawPointer
    private static let bufferSize = 65536

    /// Opens the monitor. The interface need not exist yet: its appearance is an event too.
    public init(interfaceName: String) throws {
        let fd = clinux_rtnl_open_monitor()
        guard fd >= 0 else {
            throw MasqdError("watch addresses of \(interfaceName): \(String(cString: strerror(-fd)))")
        }
        self.interfaceName = interfaceName
        self.fileDescriptor = fd
        self.interfaceIndex = if_nametoindex(interfaceName)
        self.buffer = .allocate(byteCount: Self.bufferSize, alignment: 16)
    }

    deinit {
        close(fileDescriptor)
        buffer.deallocate()
    }

    /// Reads every pending event. True if any concerned the interface (an IPv4 address added
    /// or removed, the link changed, appeared or went away), or if events were lost (ENOBUFS).
    public func drainEvents() -> Bool {
        var changed = false
        if interfaceIndex == 0 { interfaceIndex = if_nametoindex(interfaceName) }
        while true {
            let count = recv(fileDescriptor, buffer, Self.bufferSize, Int32(MSG_DONTWAIT))
            if count < 0 {
                if errno == EINTR { continue }
                if errno == ENOBUFS { changed = true; continue }  // overrun: assume a change
                break  // EAGAIN: drained
            }
            if count == 0 { break }
            if interfaceName.withCString({
                clinux_rtnl_event_affects(buffer, count, interfaceIndex, $0)
            }) != 0 {
                changed = true
            }
        }
        // The link may have been deleted and recreated under a new index.
        if changed { interfaceIndex = if_nametoindex(interfaceName) }
        return changed
    }

    /// The first primary IPv4 address of the interface, host byte order; nil if the interface
    /// does not exist or has none. Reads the current network namespace (RTM_GETADDR dump).
    public static func currentIPv4Address(interfaceName: String) -> UInt32? {
        let index = if_nametoindex(interfaceName)
        guard index != 0 else { return nil }
        var address: UInt32 = 0
        return clinux_rtnl_primary_ipv4(index, &address) == 1 ? address : nil
    }

    /// Whether an interface of that name exists in the current network namespace.
    public static func interfaceExists(_ name: String) -> Bool {
        if_nametoindex(name) != 0
    }
}
