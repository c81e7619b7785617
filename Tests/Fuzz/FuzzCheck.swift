// What every fuzz harness here does when an invariant breaks (run-fuzz.sh links this file
// into each): a line on stderr, written unbuffered since the process traps right after.

#if canImport(Glibc)
import Glibc
#endif

/// Writes `text` and a newline to stderr at once.
func say(_ text: String) {
    var bytes = Array((text + "\n").utf8)
    bytes.withUnsafeMutableBytes { b in _ = write(2, b.baseAddress, b.count) }
}

/// Traps through the harness's `fail` (its name in the message, and what else it reports)
/// unless `condition` holds.
@inline(__always) func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fail(message()) }
}
