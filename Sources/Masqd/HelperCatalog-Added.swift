import NATCore
import Synchronization

// Helpers an executable adds to the catalog (`MasqdMain.main(helpers:)` in MasqdCLI), so a
// package outside masqd builds its own masqd with them and they work wherever a built-in one
// does: `--helpers`, `--helper-ports`, config files, reload, counters, state files (all of
// which look helpers up here by name).
//
// Held process-wide because the command line is parsed (and, on SIGHUP, parsed again) by
// ArgumentParser, which cannot be handed values. It is set once, before any command runs;
// the Mutex makes the rare reads (option checks) safe from any thread all the same.

extension HelperCatalog {
    /// nil until `add` ran; then the added entries (possibly none), for good.
    private static let added = Mutex<[Entry]?>(nil)

    /// The built-in entries, then the added ones.
    static var all: [Entry] { entries + (added.withLock { $0 } ?? []) }

    /// Adds `extra` to the catalog. Once per process, before any command runs; refuses a
    /// name that is taken, malformed, or that its helper does not answer to.
    package static func add(_ extra: [Entry]) throws(MasqdError) {
        var seen = Set(entries.map(\.name))
        for entry in extra {
            try check(entry, builtIn: seen)
            seen.insert(entry.name)
        }
        try added.withLock { (value: inout [Entry]?) throws(MasqdError) in
            guard value == nil else { throw MasqdError("helpers can be added only once, before any command runs") }
            value = extra
        }
    }

    /// Longest helper name: the state file keeps a helper connection's name in 16 bytes.
    static let maximumNameLength = 16

    private static func check(_ entry: Entry, builtIn taken: Set<String>) throws(MasqdError) {
        let name = entry.name
        if entries.contains(where: { $0.name == name }) {
            throw MasqdError("helper '\(name)' clashes with the built-in helper of that name; give yours another name")
        }
        guard !taken.contains(name) else { throw MasqdError("helper '\(name)' is added twice") }
        // It is an item of `--helpers` (comma-separated, `none` reserved), part of metric names
        // (`helper_NAME_rewrites`), and a zero-padded ASCII field of the state file.
        let first = name.utf8.first ?? 0
        guard name != "none", (1...maximumNameLength).contains(name.utf8.count),
              first >= UInt8(ascii: "a") && first <= UInt8(ascii: "z"),
              name.utf8.allSatisfy({ ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_") })
        else {
            throw MasqdError("helper name '\(name)': use 1-\(maximumNameLength) of a-z, 0-9 and _, starting with a letter (not 'none')")
        }
        guard !entry.defaultPorts.isEmpty else { throw MasqdError("helper '\(name)' has no default ports") }
        // Counters and saved helper connections go by the helper's own name.
        let made = entry.make().name
        guard made == name else { throw MasqdError("helper '\(name)' makes a helper named '\(made)'; the two names must be the same") }
    }
}
