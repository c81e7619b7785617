import Glibc
import NATCore

// High availability (issue #18): `--sync-listen ADDR:PORT`, `--sync-peer ADDR:PORT`,
// `--sync-key FILE`, `--sync-interval SECONDS`, `--role active|standby` and
// `--virtual-address ADDR`. Two routers replicate the translation state over an authenticated
// UDP channel (Sync/); keepalived elects which one translates and says so with `masqd role`.

/// The sync channel's and the role's settings; absent without --sync-peer (one router).
public struct HASettings: Sendable, Equatable {
    public var listen: IPv4Endpoint
    public var peer: IPv4Endpoint
    /// The shared secret, read from --sync-key (never logged).
    public var key: [UInt8]
    /// Seconds between the active's full resyncs.
    public var interval: UInt32

    /// 30 s: increments carry every flow made, established or removed as it happens, so the
    /// periodic resync only refreshes what events do not say (TCP closing states, lifetimes
    /// of flows in use, helper state, address-only flows, redirects). A resync is the whole
    /// state, about 36 bytes a flow: the default cap of 262144 flows is 9.4 MB, 310 KB/s at
    /// this interval (at the 1 s before increments: 9.4 MB/s).
    public static let defaultInterval: UInt32 = 30

    public static func == (a: HASettings, b: HASettings) -> Bool {
        a.listen == b.listen && a.peer == b.peer && a.key == b.key && a.interval == b.interval
    }
}

/// Which router translates: keepalived's MASTER is `active`, its BACKUP `standby`.
public enum RouterRole: String, Sendable, Equatable {
    case active, standby
}

extension EngineOptions {
    func checkedHA() throws(MasqdError) -> HASettings? {
        guard let syncPeer else {
            if let syncListen { throw .option("--sync-listen", syncListen, "needs --sync-peer (whom to sync with)") }
            if let syncKey { throw .option("--sync-key", syncKey, "needs --sync-peer (whom to sync with)") }
            if let syncInterval { throw .option("--sync-interval", syncInterval, "needs --sync-peer (whom to sync with)") }
            return nil
        }
        guard let peer = IPv4Endpoint(syncPeer) else {
            throw .option("--sync-peer", syncPeer, "expected ADDR:PORT with an IPv4 address and a port 1-65535")
        }
        guard let syncListen else { throw MasqdError("--sync-listen: required with --sync-peer (this router's sync address, ADDR:PORT)") }
        guard let listen = IPv4Endpoint(syncListen) else {
            throw .option("--sync-listen", syncListen, "expected ADDR:PORT with an IPv4 address and a port 1-65535")
        }
        guard let syncKey else { throw MasqdError("--sync-key: required with --sync-peer (a file holding the shared secret, mode 0600)") }
        let key = try Self.readSyncKey(syncKey)
        var interval = HASettings.defaultInterval
        if let syncInterval {
            guard let seconds = UInt32(syncInterval), (1...3600).contains(seconds) else {
                throw .option("--sync-interval", syncInterval, "expected SECONDS from 1 to 3600")
            }
            interval = seconds
        }
        return HASettings(listen: listen, peer: peer, key: key, interval: interval)
    }

    func checkedRole() throws(MasqdError) -> RouterRole {
        guard let role else { return .active }
        guard let value = RouterRole(rawValue: role) else { throw .option("--role", role, "expected active or standby") }
        return value
    }

    func checkedVirtualAddress() throws(MasqdError) -> IPv4Address? {
        guard let virtualAddress else { return nil }
        guard let address = IPv4Address(virtualAddress) else { throw .option("--virtual-address", virtualAddress, "not an IPv4 address") }
        return address
    }

    /// The key file: a regular file owned by us, readable and writable by its owner only
    /// (a secret others can read lets them inject state), 16 to 4096 bytes (a trailing
    /// newline is not part of the key).
    static func readSyncKey(_ path: String) throws(MasqdError) -> [UInt8] {
        var status = stat()
        guard stat(path, &status) == 0 else { throw .option("--sync-key", path, "cannot read: \(String(cString: strerror(errno)))") }
        guard status.st_mode & S_IFMT == S_IFREG else { throw .option("--sync-key", path, "not a regular file") }
        guard status.st_mode & 0o077 == 0 else {
            throw .option("--sync-key", path, "readable or writable by group or others (mode \(String(status.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        guard status.st_uid == geteuid() else { throw .option("--sync-key", path, "owned by uid \(status.st_uid), not by uid \(geteuid()) (root)") }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .option("--sync-key", path, "cannot read: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 4097)
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n >= 0 else { throw .option("--sync-key", path, "cannot read: \(String(cString: strerror(errno)))") }
        var key = Array(bytes[0..<n])
        while let last = key.last, last == 0x0A || last == 0x0D { key.removeLast() }
        guard n <= 4096 else { throw .option("--sync-key", path, "longer than 4096 bytes") }
        guard key.count >= 16 else { throw .option("--sync-key", path, "shorter than 16 bytes (use e.g. `head -c 32 /dev/urandom | base64`)") }
        return key
    }
}
