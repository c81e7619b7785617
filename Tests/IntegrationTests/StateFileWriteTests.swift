import Foundation
import Testing
@testable import Masqd

/// Issue #20 item 9: the state file's temporary copy is always created new (O_EXCL,
/// O_NOFOLLOW), so a symlink planted at PATH.tmp is never written through.
@Suite struct StateFileWriteTests {
    private func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "masqd-statefile-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        return dir
    }

    @Test func aSymlinkAtTheTemporaryPathIsNotFollowed() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let victim = dir + "/victim"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: victim))
        let path = dir + "/masqd.state"
        try FileManager.default.createSymbolicLink(atPath: path + ".tmp", withDestinationPath: victim)
        try StateFile.write([1, 2, 3, 4], to: path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: victim)) == Data("keep me".utf8), "the link's target was written")
        #expect(try StateFile.read(path) == [1, 2, 3, 4])
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect(attributes[.type] as? FileAttributeType == .typeRegular)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test func aTemporaryFileLeftByACrashIsReplaced() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/masqd.state"
        try Data(repeating: 0x55, count: 100).write(to: URL(fileURLWithPath: path + ".tmp"))
        try StateFile.write([9, 8, 7], to: path)
        #expect(try StateFile.read(path) == [9, 8, 7])
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
    }
}
