import Foundation
import Masqd
import MasqdShell
import Testing

/// What the package ships besides the engine: `masqd --version` prints the version the
/// package is built as (Deploy/package-deb.sh reads it from Version.swift), and the built-in
/// completion scripts generate and complete masqd's real subcommands and options.
@Suite(.integrationLimit)
struct VersionAndCompletionTests {
    @Test("masqd --version prints the version Deploy/package-deb.sh names the package with, and nothing else")
    func versionMatchesPackage() throws {
        let masqd = try Integration.masqdExecutable()
        let version = try Shell.run([masqd, "--version"])
        #expect(version.status == 0, "\(version.summary)")
        #expect(version.stderr.isEmpty)
        let package = try Shell.run(["bash", DeployTests.deploy + "/package-deb.sh", "--print-version"])
        try #require(package.succeeded, "\(package.summary)")
        let packaged = package.stdout.trimmingCharacters(in: .newlines)
        #expect(packaged.range(of: #"^[0-9]+\.[0-9]+\.[0-9]+$"#, options: .regularExpression) != nil, "package version \(packaged)")
        #expect(version.stdout == packaged + "\n", "masqd --version: \(version.stdout)")
    }

    /// Completions for the words of `line` from the generated bash script, as bash-completion
    /// would ask for them (the function gets the command, the current and the previous word).
    static func bashCompletions(script: String, line: String) throws -> [String] {
        let driver = """
            source "$1"
            read -ra COMP_WORDS <<<"$2"
            [[ "$2" == *" " ]] && COMP_WORDS+=("")
            COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) COMP_LINE="$2" COMP_POINT=${#2} COMPREPLY=()
            _masqd masqd "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
            printf '%s\\n' "${COMPREPLY[@]}"
            """
        let result = try Shell.run(["bash", "-c", driver, "complete", script, line])
        try #require(result.succeeded, "\(result.summary)")
        return result.stdout.split(separator: "\n").map(String.init)
    }

    @Test("the bash completion script completes subcommands, rules' subcommands and run's options")
    func bashCompletes() throws {
        let masqd = try Integration.masqdExecutable()
        let generated = try Shell.run([masqd, "--generate-completion-script", "bash"])
        try #require(generated.succeeded, "\(generated.summary)")
        #expect(generated.stdout.contains("complete -o filenames -F _masqd masqd"))
        let dir = try DeployTests.temporaryDirectory("completion")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = dir + "/masqd.bash"
        try generated.stdout.write(toFile: script, atomically: true, encoding: .utf8)

        #expect(try Self.bashCompletions(script: script, line: "masqd ru") == ["run", "rules"])
        #expect(Set(try Self.bashCompletions(script: script, line: "masqd rules ")).isSuperset(of: ["install", "remove", "print"]))
        #expect(try Self.bashCompletions(script: script, line: "masqd run --wa") == ["--wan"])
        #expect(try Self.bashCompletions(script: script, line: "masqd run --state") == ["--state-file"])
    }

    @Test("zsh and fish completion scripts generate for masqd and name its subcommands and options; other shells are refused")
    func zshAndFishGenerate() throws {
        let masqd = try Integration.masqdExecutable()
        let zsh = try Shell.run([masqd, "--generate-completion-script", "zsh"])
        try #require(zsh.succeeded, "\(zsh.summary)")
        #expect(zsh.stdout.hasPrefix("#compdef masqd\n"))
        let fish = try Shell.run([masqd, "--generate-completion-script", "fish"])
        try #require(fish.succeeded, "\(fish.summary)")
        #expect(fish.stdout.contains("complete -c 'masqd' "))
        for script in [zsh.stdout, fish.stdout] {
            for word in ["rules", "flows", "replay", "wan", "state-file"] {
                #expect(script.contains(word), "\(word) missing from a completion script")
            }
        }
        // A shell's own parser, where it is installed (neither is in install-deps.sh).
        for (shell, text) in [("zsh", zsh.stdout), ("fish", fish.stdout)] {
            guard let path = Shell.which(shell) else { continue }
            let dir = try DeployTests.temporaryDirectory(shell)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try text.write(toFile: dir + "/masqd", atomically: true, encoding: .utf8)
            let parsed = try Shell.run([path, "-n", dir + "/masqd"])
            #expect(parsed.succeeded, "\(shell) -n: \(parsed.summary)")
        }
        let other = try Shell.run([masqd, "--generate-completion-script", "tcsh"])
        #expect(other.status != 0 && other.stderr.contains("tcsh"), "\(other.summary)")
    }
}
