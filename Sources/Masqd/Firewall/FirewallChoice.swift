import Foundation
import MasqdShell

// `--firewall nft|iptables`: which tool writes the steering rules. Unset, the system decides
// (`systemDefault`), once per `rules` command; `run` installs no rules and only keeps the
// setting so that a reload cannot change it.

public enum FirewallChoice: String, Sendable, CaseIterable {
    case iptables, nft

    /// What the system uses: iptables when it is the legacy (x_tables) variant or nft is
    /// missing; nft when iptables is absent or is itself the nf_tables variant — provided the
    /// kernel has nft's `queue` statement (CONFIG_NFT_QUEUE, checked with `nft -c`, which
    /// changes nothing); else iptables, whose NFQUEUE target needs only x_tables' module.
    public static func systemDefault() -> FirewallChoice {
        guard let nft = Shell.which("nft") else { return .iptables }
        if let iptables = Shell.which("iptables") {
            let version = (try? Shell.run([iptables, "-V"], timeout: 10))?.stdout ?? ""
            guard version.contains("nf_tables") else { return .iptables }
        }
        return kernelHasNftQueue(nft: nft) ? .nft : .iptables
    }

    /// Whether the kernel accepts a `queue` rule: `nft -c` sends the batch and aborts it.
    public static func kernelHasNftQueue(nft: String) -> Bool {
        let probe = """
            table ip masqd_probe {
            \tchain probe {
            \t\ttype filter hook prerouting priority -300; policy accept;
            \t\tmeta l4proto 253 queue num 0 bypass
            \t}
            }

            """
        return NftablesBackend.withScriptFile(probe) { path in
            (try? Shell.run([nft, "-c", "-f", path], timeout: 10))?.succeeded ?? false
        } ?? false
    }
}
