#if canImport(Glibc)
import Glibc
#endif
import Yams

// Laying the command line over a config file, and reporting a validation error about a value
// from the file at the file's line.

extension ConfigFile {
    /// `commandLine` with this file's settings under it: each option the command line did not
    /// give takes the file's value(s); one it gave keeps its own (a repeatable option its whole
    /// list). Returns the options (without `--config`) and the file settings that were used.
    public func applied(under commandLine: EngineOptions) -> (options: EngineOptions, fromFile: [Setting]) {
        var options = commandLine
        options.config = nil
        var used: [Setting] = []
        for setting in settings {
            guard let kind = Self.kind(ofKey: setting.key) else { continue }
            switch kind {
            case .single(let property):
                guard commandLine[keyPath: property] == nil, let value = setting.values.first else { continue }
                options[keyPath: property] = value.text
            case .list(let property):
                guard commandLine[keyPath: property].isEmpty else { continue }
                options[keyPath: property] = setting.values.map(\.text)
            case .flag(let property):
                guard !commandLine[keyPath: property], let value = setting.values.first else { continue }
                options[keyPath: property] = value.text == "true"
            }
            used.append(setting)
        }
        return (options, used)
    }

    /// `error` from checking the options, placed at the file line of the value it names when
    /// that value came from the file: "--lan 192.0.2.0/33: not an IPv4 prefix …" becomes
    /// "FILE:4: lan 192.0.2.0/33: not an IPv4 prefix …". Errors about command-line values
    /// are returned unchanged.
    public func locate(_ error: MasqdError, fromFile used: [Setting]) -> MasqdError {
        let message = error.description
        for setting in used {
            let option = "--" + setting.key
            guard message.hasPrefix(option + " ") || message.hasPrefix(option + ":") else { continue }
            // The value's own line (an item of a list may be on its own line), else the key's.
            let line = setting.values.first(where: { message.hasPrefix("\(option) \($0.text): ") })?.line ?? setting.line
            return MasqdError("\(path):\(line): \(message.dropFirst(2))")
        }
        return error
    }
}

// MARK: - Reading

extension ConfigFile {
    /// The file's bytes, or "FILE: cannot read: REASON".
    static func readFile(_ path: String) throws(MasqdError) -> [UInt8] {
        func failure(_ reason: String) -> MasqdError { MasqdError("\(path): cannot read: \(reason)") }
        func errnoReason() -> String { String(cString: strerror(errno)) }
        guard !path.isEmpty else { throw failure("empty file name") }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure(errnoReason()) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(errnoReason())
            }
            if n == 0 { break }
            bytes += chunk[0..<n]
            guard bytes.count <= maximumSize else { throw failure("larger than \(maximumSize / 1024) KiB") }
        }
        return bytes
    }

    /// 1-based line of the first byte that is not valid UTF-8.
    static func lineOfFirstInvalidUTF8(_ bytes: [UInt8]) -> Int {
        var iterator = bytes.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        var line = 1
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded): if encoded.count == 1, encoded.first == 0x0A { line += 1 }
            case .emptyInput, .error: return line
            }
        }
    }

    /// A YAML error as "FILE:LINE: problem (context)".
    static func syntaxError(_ error: YamlError, path: String, text: String) -> MasqdError {
        func located(_ problem: String, _ mark: Mark, _ context: YamlError.Context?) -> MasqdError {
            if problem == "but found another document" {
                return MasqdError("\(path):\(mark.line): a second YAML document; the file must be one mapping of options")
            }
            var message = "\(path):\(mark.line): \(problem)"
            if let context { message += " (\(context.text) at line \(context.mark.line))" }
            return MasqdError(message)
        }
        switch error {
        case let .scanner(context, problem, mark, _): return located(problem, mark, context)
        case let .parser(context, problem, mark, _): return located(problem, mark, context)
        case let .composer(context, problem, mark, _): return located(problem, mark, context)
        case let .reader(problem, offset, _, _):
            let line = offset.map { offset in 1 + text.prefix(offset).reduce(0) { $0 + ($1 == "\n" ? 1 : 0) } } ?? 1
            return MasqdError("\(path):\(line): \(problem)")
        default:
            return MasqdError("\(path): \(String(describing: error).split(separator: "\n").first ?? "invalid YAML")")
        }
    }
}
