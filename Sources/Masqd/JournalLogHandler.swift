import Glibc
import Logging

// Log lines for the systemd journal. The journal stamps every line itself, so swift-log's
// stream handler (which prints its own timestamp) made each entry carry two. When stderr is
// the journal's stream, lines go out as `<PRIORITY>level: message [metadata]` instead: the
// journal takes the `<N>` prefix as the entry's syslog priority, so `journalctl -p warning`
// and the colouring work.

public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    /// Where lines go: stderr, the journal's stream (another descriptor only in tests).
    let fileDescriptor: Int32

    /// The journal names the unit on every entry, so the logger's label is not repeated.
    public init() { fileDescriptor = 2 }
    init(fileDescriptor: Int32) { self.fileDescriptor = fileDescriptor }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        var line = Self.line(level: event.level, message: "\(event.message)", metadata: merged)
        // One write per entry, so lines from several threads never interleave.
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0, errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }

    /// The syslog priority the journal reads from a line's `<N>` prefix (sd-daemon.h).
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// One journal line, newline included. Newlines inside the message would start entries
    /// of their own at the default priority, so they are replaced.
    static func line(level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var text = "<\(priority(level))>\(level): \(message)"
        if !metadata.isEmpty {
            text += " [" + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + "]"
        }
        return text.replacingNewlines() + "\n"
    }

    /// True when file descriptor `fd` is the stream systemd connected to the journal:
    /// `JOURNAL_STREAM` holds its "device:inode" (systemd.exec(5)).
    public static func isJournalStream(fd: Int32, journalStream: String?) -> Bool {
        guard let journalStream else { return false }
        let parts = journalStream.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var status = stat()
        guard fstat(fd, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }

    /// The process's log setup: journal lines under systemd, swift-log's stream handler
    /// (with timestamps) everywhere else.
    public static func bootstrapLogging() {
        let env = getenv("JOURNAL_STREAM").map { String(cString: $0) }
        if isJournalStream(fd: 2, journalStream: env) {
            LoggingSystem.bootstrap { _ in JournalLogHandler() }
        } else {
            LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        }
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        guard utf8.contains(where: { $0 == 10 || $0 == 13 }) else { return self }
        return String(decoding: utf8.map { $0 == 10 || $0 == 13 ? 32 : $0 }, as: UTF8.self)
    }
}
