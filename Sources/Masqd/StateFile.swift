import Glibc

// The state file on disk: read whole, written atomically (PATH.tmp, fsync, rename, fsync of
// the directory) so a crash or power cut mid-save leaves the previous file intact, and moved
// aside to PATH.bad when refused. Every error is one line naming the file.

enum StateFile {
    /// Largest file read: 16M sessions with their mappings stay well under it.
    static let maximumSize = 1 << 30

    /// The file's bytes, or nil when there is none.
    static func read(_ path: String) throws(MasqdError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw failure(path, "cannot read")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure(path, "cannot read") }
        guard info.st_mode & S_IFMT == S_IFREG else { throw MasqdError("\(path): not a regular file") }
        guard Int(info.st_size) <= maximumSize else { throw MasqdError("\(path): larger than \(maximumSize >> 20) MiB") }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw failure(path, "cannot read") }
            if n == 0 { break } // shrank while being read: the decoder reports it truncated
            done += n
        }
        return Array(bytes[0..<done])
    }

    /// Replaces the file with `bytes` in one step. The temporary file is always a new one
    /// (O_EXCL, O_NOFOLLOW): a symlink or file planted at PATH.tmp is never written through.
    /// One left by a crash mid-save is removed first (unlink removes a link, not its target).
    static func write(_ bytes: [UInt8], to path: String) throws(MasqdError) {
        let temporary = path + ".tmp"
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC
        var fd = open(temporary, flags, 0o600)
        if fd < 0, errno == EEXIST, unlink(temporary) == 0 { fd = open(temporary, flags, 0o600) }
        guard fd >= 0 else { throw failure(temporary, "cannot create") }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                let error = failure(temporary, "cannot write")
                close(fd)
                unlink(temporary)
                throw error
            }
            done += n
        }
        var synced = fsync(fd)
        while synced != 0, errno == EINTR { synced = fsync(fd) }
        guard synced == 0 else {
            let error = failure(temporary, "cannot write")
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let error = failure(path, "cannot replace")
            unlink(temporary)
            throw error
        }
        // The rename itself must reach the disk too.
        let directory = open(directoryOf(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
    }

    /// Renames a refused file to PATH.bad (replacing an older one), so it is not read again
    /// and stays there to be looked at. Returns the new name, or nil if that failed.
    static func moveAside(_ path: String) -> String? {
        let bad = path + ".bad"
        return rename(path, bad) == 0 ? bad : nil
    }

    /// Checks that the file's directory exists: a wrong path is a bad option, found at start.
    static func checkDirectory(of path: String) throws(MasqdError) {
        let directory = directoryOf(path)
        var info = stat()
        guard stat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw .option("--state-file", path, "directory \(directory) does not exist")
        }
        guard access(directory, W_OK) == 0 else {
            throw .option("--state-file", path, "directory \(directory) is not writable")
        }
    }

    static func directoryOf(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func failure(_ path: String, _ what: String) -> MasqdError {
        MasqdError("\(path): \(what): \(String(cString: strerror(errno)))")
    }
}

/// CLOCK_REALTIME in nanoseconds since 1970: the one wall-clock read, to measure how long the
/// daemon was down between a save and the restore (the monotonic clock restarts at boot).
enum WallClock {
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}
