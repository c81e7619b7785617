import Foundation
import Yams

// `--config FILE` (../shared/INTERFACE.md): the ENGINE OPTIONS from a YAML file. The file is a
// mapping whose keys are the options' long names without "--" (`wan`, `lan`, `port-range`,
// `no-hairpin`, …); a repeatable option takes a sequence or a single value, a flag a boolean.
//
// The file is turned into EngineOptions values, each remembering the line it came from; the
// command line's values are laid over them (an option given there replaces the file's, a
// repeatable one its whole list), and the result is checked by `EngineOptions`, the one place
// that validates. A validation error about a value from the file is reported at its line.
// Every error is one line naming the file (and the line and key where there is one); an error
// anywhere refuses the whole file.

public struct ConfigFile: Sendable, Equatable {
    /// One value from the file and the line it is on.
    public struct Value: Sendable, Equatable {
        public var text: String
        public var line: Int
    }

    /// One key of the file: the option it sets and its values (one for a single-valued
    /// option or a flag, any number for a repeatable option).
    public struct Setting: Sendable, Equatable {
        public var key: String
        /// Line of the key itself.
        public var line: Int
        public var values: [Value]
    }

    public let path: String
    /// In file order.
    public let settings: [Setting]

    /// Largest file read: a configuration is a few lines, anything bigger is a mistake.
    static let maximumSize = 1 << 20

    /// Reads and parses the file at `path`.
    public static func load(path: String) throws(MasqdError) -> ConfigFile {
        let bytes = try readFile(path)
        return try ConfigFile(parsing: bytes, path: path)
    }

    /// Parses `text` as the contents of the file named `path` (used in messages).
    public init(parsing text: String, path: String) throws(MasqdError) {
        try self.init(parsing: Array(text.utf8), path: path)
    }

    init(parsing bytes: [UInt8], path: String) throws(MasqdError) {
        self.path = path
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw MasqdError("\(path):\(Self.lineOfFirstInvalidUTF8(bytes)): not UTF-8 text")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw Self.syntaxError(error, path: path, text: text)
        } catch {
            throw MasqdError("\(path): \(error)")
        }
        guard let root, !Self.isNull(root) else {
            settings = []  // an empty file sets nothing
            return
        }
        guard let mapping = root.mapping else {
            throw MasqdError("\(path):\(Self.line(root)): expected a mapping of option names to values, found \(Self.kind(root))")
        }
        var settings: [Setting] = []
        for (keyNode, valueNode) in mapping {
            let line = Self.line(keyNode)
            guard let key = keyNode.scalar.map({ Self.display($0.string) }) else {
                throw MasqdError("\(path):\(line): a key must be an option name, found \(Self.kind(keyNode)) (known: \(Self.knownKeys))")
            }
            guard let kind = Self.kind(ofKey: key) else {
                throw MasqdError("\(path):\(line): unknown key '\(key)' (known: \(Self.knownKeys))")
            }
            if let first = settings.first(where: { $0.key == key }) {
                throw MasqdError("\(path):\(line): key '\(key)' given twice (first at line \(first.line))")
            }
            let values = try Self.values(of: valueNode, key: key, kind: kind, path: path)
            settings.append(Setting(key: key, line: line, values: values))
        }
        self.settings = settings
    }

    /// The same settings as a command line (`--lan A --lan B --no-hairpin …`).
    public var arguments: [String] {
        settings.flatMap { setting -> [String] in
            switch Self.kind(ofKey: setting.key) {
            case .flag: setting.values.first?.text == "true" ? ["--" + setting.key] : []
            default: setting.values.flatMap { ["--" + setting.key, $0.text] }
            }
        }
    }
}

// MARK: - Keys

extension ConfigFile {
    /// How an option takes its value; the key path is the EngineOptions property it sets.
    enum Kind {
        case single(WritableKeyPath<EngineOptions, String?>)
        case list(WritableKeyPath<EngineOptions, [String]>)
        case flag(WritableKeyPath<EngineOptions, Bool>)
    }

    /// The ENGINE OPTIONS a file may set, named as on the command line without "--", in the
    /// order of `masqd run --help`. `--config` itself is not among them: no nesting.
    /// (ConfigFileTests checks that this is every EngineOptions option but `config`.)
    static var keys: [(name: String, kind: Kind)] {
        [
            ("queue", .single(\.queue)),
            ("queues", .single(\.queues)),
            ("wan", .single(\.wan)),
            ("lan", .list(\.lan)),
            ("forward", .list(\.forward)),
            ("port-range", .single(\.portRange)),
            ("helpers", .single(\.helpers)),
            ("helper-ports", .list(\.helperPorts)),
            ("filtering", .single(\.filtering)),
            ("max-flows", .single(\.maxFlows)),
            ("max-flows-per-host", .single(\.maxFlowsPerHost)),
            ("timeout", .list(\.timeout)),
            ("reserve-local-port-range", .single(\.reserveLocalPortRange)),
            ("max-helper-flows-per-host", .single(\.maxHelperFlowsPerHost)),
            ("no-hairpin", .flag(\.noHairpin)),
            ("fail-open", .flag(\.failOpen)),
            ("firewall", .single(\.firewall)),
            ("control", .single(\.control)),
            ("metrics", .single(\.metrics)),
            ("state-file", .single(\.stateFile)),
            ("checkpoint-interval", .single(\.checkpointInterval)),
            ("audit-log", .single(\.auditLog)),
            ("ipfix-collector", .single(\.ipfixCollector)),
            ("ipfix-domain-id", .single(\.ipfixDomainId)),
            ("no-nat-to", .list(\.noNatTo)),
            ("max-new-flows-per-host", .single(\.maxNewFlowsPerHost)),
            ("to-source", .list(\.toSource)),
            ("pool-placement", .single(\.poolPlacement)),
            ("max-other-flows", .single(\.maxOtherFlows)),
            ("sync-listen", .single(\.syncListen)),
            ("sync-peer", .single(\.syncPeer)),
            ("sync-key", .single(\.syncKey)),
            ("sync-interval", .single(\.syncInterval)),
            ("role", .single(\.role)),
            ("virtual-address", .single(\.virtualAddress)),
            ("fast-path", .flag(\.fastPath)),
            ("fast-path-lan-interface", .list(\.fastPathLanInterface)),
            ("fast-path-max-flows", .single(\.fastPathMaxFlows)),
            ("fast-path-delay", .single(\.fastPathDelay)),
            ("fast-path-object", .single(\.fastPathObject)),
            ("redirect", .list(\.redirect)),
            ("max-redirect-flows", .single(\.maxRedirectFlows)),
            ("reverse-path-check", .single(\.reversePathCheck)),
            ("max-redirect-flows-per-host", .single(\.maxRedirectFlowsPerHost)),
            ("port-block-size", .single(\.portBlockSize)),
            ("max-port-blocks-per-host", .single(\.maxPortBlocksPerHost)),
            ("worker-cpus", .single(\.workerCpus)),
            ("busy-poll", .single(\.busyPoll)),
        ]
    }

    /// The keys a file may have, for messages.
    public static var keyNames: [String] { keys.map(\.name) }

    static var knownKeys: String { keyNames.joined(separator: ", ") }

    static func kind(ofKey key: String) -> Kind? {
        keys.first(where: { $0.name == key })?.kind
    }
}

// MARK: - Values

extension ConfigFile {
    static func values(of node: Node, key: String, kind: Kind, path: String) throws(MasqdError) -> [Value] {
        let line = line(node)
        func wrongType(_ expected: String) -> MasqdError {
            MasqdError("\(path):\(line): key '\(key)' expects \(expected), found \(Self.kind(node))")
        }
        switch kind {
        case .single:
            if key == "helpers", let sequence = node.sequence {
                // `helpers: [ftp, irc]` reads as naturally as `helpers: ftp,irc`.
                var names: [String] = []
                for item in sequence {
                    guard let text = plainValue(item) else {
                        throw MasqdError("\(path):\(Self.line(item)): key 'helpers' expects helper names, found \(Self.kind(item))")
                    }
                    names.append(text)
                }
                guard !names.isEmpty else { throw wrongType("a comma-separated list of helpers or none") }
                return [Value(text: names.joined(separator: ","), line: line)]
            }
            guard let text = plainValue(node) else { throw wrongType("a single value") }
            return [Value(text: text, line: line)]
        case .list:
            if let sequence = node.sequence {
                var values: [Value] = []
                for item in sequence {
                    guard let text = plainValue(item) else {
                        throw MasqdError("\(path):\(Self.line(item)): key '\(key)' expects a list of single values, found \(Self.kind(item)) in it")
                    }
                    values.append(Value(text: text, line: Self.line(item)))
                }
                return values
            }
            guard let text = plainValue(node) else { throw wrongType("a value or a list of values") }
            return [Value(text: text, line: line)]
        case .flag:
            guard let scalar = node.scalar, Self.resolvedTag(node) == .bool, let value = Bool.construct(from: scalar) else {
                throw wrongType("true or false")
            }
            return [Value(text: value ? "true" : "false", line: line)]
        }
    }

    /// A scalar's text, or nil for a sequence, a mapping, an empty value (`key:` or `~`) or
    /// text of more than one line (messages naming a value stay one line).
    static func plainValue(_ node: Node) -> String? {
        guard let scalar = node.scalar, !isNull(node),
              !scalar.string.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else { return nil }
        return scalar.string
    }

    static func line(_ node: Node) -> Int { node.mark?.line ?? 1 }

    /// The node's tag after resolution (`true` is a bool, `"true"` a string, `~` a null).
    static func resolvedTag(_ node: Node) -> Tag.Name { Tag.Name(rawValue: node.tag.description) }

    static func isNull(_ node: Node) -> Bool { resolvedTag(node) == .null }

    /// What a node is, for "expects X, found Y".
    static func kind(_ node: Node) -> String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .scalar: isNull(node) ? "no value" : "'\(display(node.scalar?.string ?? ""))'"
        }
    }

    /// Text from the file as a message shows it: one line, not too long.
    static func display(_ text: String) -> String {
        var shown = String(text.unicodeScalars.prefix(60).map {
            $0.properties.generalCategory == .control ? "\\u{\(String($0.value, radix: 16))}" : String($0)
        }.joined())
        if text.unicodeScalars.count > 60 { shown += "…" }
        return shown
    }
}
