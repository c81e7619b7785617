// `--state-file PATH` and `--checkpoint-interval SECONDS`: where the translation state is
// saved across restarts, and how often while running (Engine-State.swift).

/// The state file's settings; absent without `--state-file` (nothing is saved or restored).
public struct StateFileSettings: Sendable, Equatable {
    public var path: String
    /// Seconds between saves while running; 0: only when the engine stops.
    public var checkpointInterval: UInt32

    public static let defaultCheckpointInterval: UInt32 = 60

    public init(path: String, checkpointInterval: UInt32 = StateFileSettings.defaultCheckpointInterval) {
        self.path = path
        self.checkpointInterval = checkpointInterval
    }
}

extension EngineOptions {
    func checkedStateFile() throws(MasqdError) -> StateFileSettings? {
        guard let stateFile else {
            if let checkpointInterval {
                throw .option("--checkpoint-interval", checkpointInterval, "needs --state-file (there is nothing to save)")
            }
            return nil
        }
        guard !stateFile.isEmpty, !stateFile.hasSuffix("/"), !stateFile.contains("\n"), !stateFile.contains("\0") else {
            throw .option("--state-file", stateFile, "not a file name")
        }
        var settings = StateFileSettings(path: stateFile)
        if let checkpointInterval {
            guard let seconds = UInt32(checkpointInterval), seconds <= 86_400 else {
                throw .option("--checkpoint-interval", checkpointInterval, "expected SECONDS from 0 (only at stop) to 86400")
            }
            settings.checkpointInterval = seconds
        }
        return settings
    }
}
