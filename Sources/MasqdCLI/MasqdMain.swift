import Masqd

// The public entry point: an executable's whole main.swift is one call of it, with the
// helpers it adds to the built-in ones (masqd's own passes none).

public enum MasqdMain {
    /// Runs the masqd command line (`run`, `rules`, `flows`, `stats`, `lab`) with `helpers`
    /// added to the built-in ones: `--helpers`, `--helper-ports`, config files and reloads
    /// can name them, and their events are counted under their names. They are off unless
    /// named. A name that clashes with a built-in helper, or is malformed, ends the process
    /// with a one-line message and status 1 before any command runs.
    public static func main(helpers: [HelperCatalog.Entry]) -> Never {
        do {
            try HelperCatalog.add(helpers)
        } catch {
            MasqdCommand.fail(error.description)
        }
        MasqdCommand.main()
        MasqdCommand.exit()
    }
}
