import NATCore

// What the steering rules do, whoever writes them (IptablesBackend, NftablesBackend): built
// once from the settings, so both backends steer exactly the same packets (KERNEL-FACTS 1, 4,
// 6): inbound from the WAN before routing (a rewritten destination is then routed to the LAN
// host), outbound to the WAN after routing. Nothing matches on conntrack, so fragments reach
// the engine as they are.

public struct FirewallPlan: Sendable, Equatable {
    /// Where a steering point sits. iptables: raw PREROUTING (priority -300), mangle FORWARD and
    /// mangle POSTROUTING (-150); nftables chains at the same hooks and priorities.
    public enum Hook: Sendable, Equatable {
        case prerouting, forward, postrouting
        /// The router's own packets (a redirect's proxy replies): mangle OUTPUT, -150.
        case output

        public var priority: Int { self == .prerouting ? -300 : -150 }
    }

    public enum InterfaceMatch: Sendable, Equatable {
        case named(String), notNamed(String)
    }

    /// iptables `-m addrtype --src-type LOCAL` / `! --src-type LOCAL`, nft `fib … type local`.
    public enum AddressType: Sendable, Equatable {
        case local, notLocal
    }

    public enum Action: Sendable, Equatable {
        /// To the engine's queue(s) (`queue`).
        case queue
        /// Dropped by the rule itself: nothing for the engine to decide.
        case drop
        /// Accepted untranslated, ahead of the queueing points of its hook (`--no-nat-to`).
        case exempt
    }

    /// One rule: the packets it matches (every match that is set) and what happens to them.
    public struct SteeringPoint: Sendable, Equatable {
        public var hook: Hook
        public var input: InterfaceMatch? = nil
        public var output: String? = nil
        public var source: IPv4Prefix? = nil
        public var destination: IPv4Prefix? = nil
        /// An IP protocol by name (`icmp`), or any.
        public var ipProtocol: String? = nil
        public var sourceType: AddressType? = nil
        public var destinationType: AddressType? = nil
        public var action: Action = .queue
        /// TCP by port: iptables `-p tcp --sport/--dport`, nft `tcp sport/dport` (ipProtocol unset).
        public var tcpSourcePort: UInt16? = nil
        public var tcpDestinationPort: UInt16? = nil
        /// Matches a source that does not route back through the input interface: iptables
        /// `-m rpfilter --invert`, nft `fib saddr . iif oif missing` (FirewallPlan-ReversePath.swift).
        public var reversePathFails: Bool = false
    }

    /// The queue or queues the rules send to; `bypass`: with no engine bound, accept untranslated.
    public struct QueueTarget: Sendable, Equatable {
        public var first: UInt16
        public var count: UInt16
        public var bypass: Bool

        public var last: UInt16 { first + count - 1 }
    }

    /// The rules. Their order within a hook does not matter among queueing points (one
    /// target); a backend puts drop points first in their hook, then exempt points, then the
    /// queueing ones.
    public var points: [SteeringPoint]
    public var queue: QueueTarget
    /// The comment every rule carries ("masqd queue N"): what `rules remove` and a person find them by.
    public var comment: String
    /// Hairpinning needs net.ipv4.conf.all.accept_local=1.
    public var needsAcceptLocal: Bool

    public init(_ settings: EngineSettings) {
        queue = QueueTarget(first: settings.queue, count: settings.queueCount, bypass: settings.failOpen)
        comment = SteeringRules.comment(queue: settings.queue, count: settings.queueCount)
        needsAcceptLocal = settings.hairpin
        let wan = settings.wanInterface
        var points = [SteeringPoint(hook: .prerouting, input: .named(wan))]
        for prefix in settings.noNATDestinations {
            // Replies from an excluded destination come to the LAN address itself; the engine
            // would drop them (inbound_to_internal_address). What it sends to the router's own
            // addresses (a port forward, the router's own connections) is still queued. Listed
            // before the spoof drop so that `rules print`, run line by line (each `-I … 1`),
            // leaves the drop above it.
            points.append(SteeringPoint(hook: .prerouting, input: .named(wan), source: prefix, destinationType: .notLocal, action: .exempt))
        }
        // accept_local is global (conf/all), so it would also take in WAN packets that claim
        // one of the router's own addresses (its LAN address, a management net) as source.
        // None is genuine: drop them before anything else sees them (the rule counts them).
        points.append(SteeringPoint(hook: .prerouting, input: .named(wan), sourceType: .local, action: .drop))
        if settings.internalPrefixes.isEmpty {
            // Every source that is not one of the router's own addresses.
            points.append(SteeringPoint(hook: .postrouting, output: wan, sourceType: .notLocal))
        } else {
            for prefix in settings.internalPrefixes {
                points.append(SteeringPoint(hook: .postrouting, output: wan, source: prefix))
            }
        }
        if settings.hairpin {
            // From inside to one of the router's own addresses: the engine hairpins those for
            // the external address and a mapped or forwarded port, and passes the rest.
            let sources: [IPv4Prefix?] = settings.internalPrefixes.isEmpty ? [nil] : settings.internalPrefixes
            for source in sources {
                points.append(SteeringPoint(hook: .prerouting, input: .notNamed(wan), source: source, destinationType: .local))
            }
            // accept_local (which hairpinning needs) also lets a LAN host send with one of the
            // router's own addresses as source, and such a packet matches no rule above: it
            // would leave untranslated. The router never forwards its own packets, and
            // hairpinned ones leave inside, so whatever this queues is spoofed: the engine
            // drops it (drop_spoofed_source).
            points.append(SteeringPoint(hook: .forward, output: wan, sourceType: .local))
        }
        // The router's own ICMP errors about packets it forwarded inbound quote internal
        // addresses; the engine translates their quoted packet.
        points.append(SteeringPoint(hook: .postrouting, output: wan, ipProtocol: "icmp", sourceType: .local))
        for prefix in settings.noNATDestinations {
            // Out to an excluded destination: never queued, so it leaves with the LAN source.
            // Last in the plan, so it ends above every queueing rule of its chain.
            points.append(SteeringPoint(hook: .postrouting, output: wan, destination: prefix, action: .exempt))
        }
        points += Self.redirectPoints(settings) + Self.reversePathPoints(settings)
        self.points = points
    }
}
