import CFastPath
import Glibc

// The loaded BPF object (CFastPath over libbpf): its two tc programs and its flow map. One per
// engine, main loop only. Closing it (deinit) frees programs and map once they are detached.

final class FastPathProgram {
    private let handle: OpaquePointer
    let objectPath: String

    /// Where `--fast-path` looks without --fast-path-object: next to the binary (a build
    /// tree, after Deploy/build-bpf.sh), then where the package installs it.
    static var defaultObjectPaths: [String] {
        var paths: [String] = []
        if let executable = realpath("/proc/self/exe", nil) {
            let path = String(cString: executable)
            free(executable)
            if let slash = path.lastIndex(of: "/") { paths.append(path[..<slash] + "/masqd_fastpath.bpf.o") }
        }
        return paths + ["/usr/lib/masqd/masqd_fastpath.bpf.o"]
    }

    /// Loads the object (the verifier runs here); the error is one line naming the cause.
    init(settings: FastPathSettings, mapEntries: UInt32) throws(MasqdError) {
        let candidates = settings.objectPath.map { [$0] } ?? Self.defaultObjectPaths
        guard let path = candidates.first(where: { access($0, R_OK) == 0 }) else {
            throw MasqdError("--fast-path: no BPF object at \(candidates.joined(separator: " or ")) (build it with Deploy/build-bpf.sh, or give --fast-path-object)")
        }
        var error = [CChar](repeating: 0, count: 1024)
        guard let loaded = cfastpath_load(path, mapEntries, &error, error.count) else {
            throw MasqdError("--fast-path: the kernel would not load \(path): \(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
        }
        handle = loaded
        objectPath = path
    }

    deinit { cfastpath_close(handle) }

    var mapID: UInt32 { cfastpath_map_id(handle) }
    var mapCapacity: UInt32 { cfastpath_map_capacity(handle) }

    /// Attaches on an interface's ingress (inbound: the WAN's program), replacing masqd's
    /// filter left there by an earlier run. Returns whether one was there.
    @discardableResult
    func attach(ifindex: UInt32, inbound: Bool) throws(MasqdError) -> Bool {
        let leftover = cfastpath_attached(Int32(ifindex)) == 1
        let rc = cfastpath_attach(handle, Int32(ifindex), inbound ? 1 : 0)
        guard rc == 0 else { throw MasqdError("--fast-path: cannot attach to tc ingress of interface \(ifindex): \(String(cString: strerror(-rc)))") }
        return leftover
    }

    /// Removes masqd's filter from an interface; false if there was none.
    @discardableResult
    static func detach(ifindex: UInt32) -> Bool {
        cfastpath_detach(Int32(ifindex)) == 0
    }

    /// 0, -EEXIST, -E2BIG (full) or another -errno.
    func add(_ key: masqd_fp_key, _ value: masqd_fp_value) -> Int32 {
        var key = key, value = value
        return cfastpath_add(handle, &key, &value)
    }

    func delete(_ key: masqd_fp_key) {
        var key = key
        _ = cfastpath_delete(handle, &key)
    }

    func lookup(_ key: masqd_fp_key) -> masqd_fp_value? {
        var key = key
        var value = masqd_fp_value()
        return cfastpath_lookup(handle, &key, &value) == 0 ? value : nil
    }
}
