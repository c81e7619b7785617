import Glibc
import Logging
import Testing
@testable import Masqd

/// Under systemd masqd's log lines carry a syslog priority prefix and no timestamp of their
/// own (the journal stamps them); elsewhere swift-log's stream handler is used.
@Suite struct JournalLogHandlerTests {
    @Test func eachLevelGetsItsSyslogPriority() {
        let expected: [(Logger.Level, String)] = [
            (.trace, "<7>trace: m\n"), (.debug, "<7>debug: m\n"), (.info, "<6>info: m\n"),
            (.notice, "<5>notice: m\n"), (.warning, "<4>warning: m\n"), (.error, "<3>error: m\n"),
            (.critical, "<2>critical: m\n"),
        ]
        for (level, line) in expected {
            #expect(JournalLogHandler.line(level: level, message: "m", metadata: [:]) == line)
        }
    }

    @Test func metadataIsSortedAndNewlinesCannotStartAnEntry() {
        let line = JournalLogHandler.line(level: .warning, message: "reload refused:\nline 2\r\n",
                                          metadata: ["queue": "3", "file": "/etc/masqd/masqd.yaml"])
        #expect(line == "<4>warning: reload refused: line 2   [file=/etc/masqd/masqd.yaml queue=3]\n")
        #expect(line.utf8.filter { $0 == 10 }.count == 1)
    }

    @Test func theJournalStreamIsRecognisedByDeviceAndInode() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        var status = stat()
        #expect(fstat(fds[1], &status) == 0)
        let mine = "\(status.st_dev):\(status.st_ino)"
        #expect(JournalLogHandler.isJournalStream(fd: fds[1], journalStream: mine))
        #expect(!JournalLogHandler.isJournalStream(fd: fds[1], journalStream: "\(status.st_dev):\(status.st_ino + 1)"))
        #expect(!JournalLogHandler.isJournalStream(fd: fds[1], journalStream: nil))
        for bad in ["", ":", "1", "a:b", "1:2:3", "\(status.st_dev):"] {
            #expect(!JournalLogHandler.isJournalStream(fd: fds[1], journalStream: bad), "\(bad)")
        }
        #expect(!JournalLogHandler.isJournalStream(fd: -1, journalStream: mine))
    }

    @Test func aLogEntryIsOneWriteOfOneLine() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        var handler = JournalLogHandler(fileDescriptor: fds[1])
        handler.metadata = ["worker": "q3"]
        handler.log(event: LogEvent(level: .error, message: "queue 3: send refused", metadata: ["errno": "105"],
                                    source: "Masqd", file: #fileID, function: #function, line: #line))
        close(fds[1])
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = read(fds[0], &buffer, buffer.count)
        close(fds[0])
        #expect(count > 0)
        #expect(String(decoding: buffer.prefix(max(count, 0)), as: UTF8.self) == "<3>error: queue 3: send refused [errno=105 worker=q3]\n")
    }
}
