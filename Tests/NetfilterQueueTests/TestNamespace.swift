import Foundation
import Glibc

/// A network namespace of its own for one test; `remove()` it in a `defer`.
final class TestNamespace {
    let name: String

    init(tag: Int) throws {
        name = "nfqt-\(getpid())-\(tag)"
        _ = try? Self.run(["ip", "netns", "del", name])
        try Self.run(["ip", "netns", "add", name])
        try Self.run(["ip", "-n", name, "link", "set", "lo", "up"])
    }

    func remove() {
        _ = try? Self.run(["ip", "netns", "del", name])
    }

    /// Runs a command inside the namespace; throws if it exits nonzero.
    func exec(_ arguments: [String]) throws {
        try Self.run(["ip", "netns", "exec", name] + arguments)
    }

    /// Runs `body` on a fresh thread that has joined the namespace, so sockets it opens live
    /// there (and keep living there when used from other threads afterwards).
    func onThread<T>(_ body: () throws -> T) throws -> T {
        var result: Result<T, any Error>?
        let path = "/var/run/netns/\(name)"
        try withoutActuallyEscaping(body) { body in
            let box = ThreadWork {
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else {
                    result = .failure(TestFailure("open \(path): errno \(errno)"))
                    return
                }
                defer { close(fd) }
                guard Self.setns(fd, 0x4000_0000 /* CLONE_NEWNET */) == 0 else {
                    result = .failure(TestFailure("setns \(path): errno \(errno)"))
                    return
                }
                result = Result { try body() }
            }
            let context = Unmanaged.passRetained(box).toOpaque()
            var thread = pthread_t()
            let created = pthread_create(&thread, nil, { raw in
                let work = Unmanaged<ThreadWork>.fromOpaque(raw!).takeRetainedValue()
                work.run()
                return nil
            }, context)
            guard created == 0 else {
                Unmanaged<ThreadWork>.fromOpaque(context).release()
                throw TestFailure("pthread_create: \(created)")
            }
            pthread_join(thread, nil)
        }
        return try result!.get()
    }

    /// setns(2), which Glibc's Swift module does not export.
    private static let setns: @convention(c) (Int32, Int32) -> Int32 = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else {
            fatalError("setns not found")
        }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
    }()

    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw TestFailure("\(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(text)")
        }
        return text
    }
}

private final class ThreadWork {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
