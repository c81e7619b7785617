#if canImport(Glibc)
import Glibc
#endif
import Testing

// README.md's "Writing a helper" shows the TFTP helper whole as its first example: that copy
// must be the code that is compiled and tested (TFTPHelperTests), byte for byte.

@Suite("README TFTP example")
struct ReadmeTFTPExampleTests {
    /// The repository's root, from this file's path (Tests/NATHelpersTests/…).
    static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()

    static func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test("the README's TFTP helper is Sources/NATHelpers/TFTPHelper.swift's class, verbatim")
    func readmeShowsTheRealHelper() throws {
        let source = try #require(Self.read(Self.root + "/Sources/NATHelpers/TFTPHelper.swift"))
        let readme = try #require(Self.read(Self.root + "/README.md"))
        let start = try #require(source.firstRange(of: "public final class TFTPHelper"))
        var code = String(source[start.lowerBound...])
        while code.hasSuffix("\n") { code.removeLast() }
        #expect(code.split(separator: "\n").count > 10)
        #expect(readme.contains("```swift\n" + code + "\n```"), "README.md's TFTP example differs from TFTPHelper.swift")
    }
}
