import NATCore

// What the control socket answers: `stats` as `name value` lines (from the metric list the
// Prometheus page renders too), `flows` one translation per line. Both copy what they need
// under the lock and make their text after releasing it: the workers wait only for the copy.

extension Engine {
    /// Answers a control request (main loop; takes the lock itself, for the copy only).
    func respond(to request: String) -> String {
        let words = request.split(separator: " ")
        switch words.first {
        case "stats": return statsReport()
        case "flows": return flowsReport(filters: words.dropFirst().map(String.init))
        case "role": return changeRole(words.dropFirst().first.map(String.init))
        case "original-destination": return originalDestinationReport(words)
        default: return "error: unknown request '\(request)' (known: stats, flows, role, original-destination)\n"
        }
    }

    /// `masqd stats`: every metric as a `name value` line.
    func statsReport() -> String {
        EngineMetric.statsText(withTranslator { _ in metricList() })
    }

    /// Every metric of the engine, in `masqd stats` order: the one list that both `masqd stats`
    /// and the Prometheus page render (Engine-Metrics.swift). Call with the lock held.
    func metricList() -> [EngineMetric] {
        let core = translator.counters
        let q = queueStatistics
        let counters = self.counters
        var list: [EngineMetric] = [
            .gauge("queue", settings.queue, "First NFQUEUE number bound."),
            .gauge("queues", settings.queueCount, "NFQUEUE queues bound, one worker thread each."),
            .info("external_address", label: "address", translator.configuration.externalAddress.map { "\($0)" } ?? "none",
                  "The WAN address translations use (none: the WAN interface has no IPv4 address)."),
            .counter("packets_received", counters[.packetsReceived], "Packets taken from the queues."),
        ]
        // Per worker: how --queue-balance spread the traffic.
        if workers.count > 1 {
            for worker in workers {
                let number = worker.queue.configuration.queueNumber
                list.append(.counter("queue_\(number)_packets_received", worker.counters[.packetsReceived],
                                     "Packets taken from one queue.", family: "queue_packets_received", labels: [("queue", "\(number)")]))
            }
        }
        list += [
            .counter("verdict_accept", counters[.verdictAccept], "Packets passed on unchanged."),
            .counter("verdict_accept_rewritten", counters[.verdictAcceptRewritten], "Packets passed on with their rewritten bytes."),
            .counter("verdict_drop", counters[.verdictDrop], "Packets dropped."),
            .counter("translated_outbound", core[.outboundTranslated], "Packets masqueraded on their way out."),
            .counter("translated_inbound", core[.inboundTranslated], "Packets translated back on their way in."),
            .counter("inbound_unmatched", core[.inboundUnmatched], "Inbound packets to the WAN address matching no translation: passed to the router's own stack."),
            .counter("pass_local_port", core[.inboundLocalPort], "Inbound and hairpinned packets to a port the router's own sockets hold (no port forward on it): passed to the router's stack untranslated."),
            .counter("ports_skipped_local", core[.localPortSkips], "New mappings whose internal port the router holds or reserves: given another port."),
            .gauge("local_ports_held_tcp", localPortsState.lastHeldCounts?.tcp ?? 0, "TCP ports the router's own sockets hold on the WAN address or the wildcard (kept from mappings)."),
            .gauge("local_ports_held_udp", localPortsState.lastHeldCounts?.udp ?? 0, "UDP ports the router's own sockets hold on the WAN address or the wildcard (kept from mappings)."),
            .gauge("local_ports_reserved", localPortsState.lastReserved?.count ?? 0, "Ports of the router's ephemeral range kept from mappings (--reserve-local-port-range; 0: none)."),
            .counter("mappings_evicted_local_port", core[.mappingsEvictedLocalPort], "Dynamic mappings removed with their sessions because a router socket took their port."),
            .counter("inbound_not_for_us", core[.inboundNotForUs], "Inbound packets not addressed to the WAN address: passed unchanged."),
            .counter("outbound_not_internal", core[.outboundNotInternal], "Outbound packets from outside the LAN prefixes: passed unchanged."),
            .gauge("flows_active", translator.sessionCount, "Live translations (sessions)."),
            .gauge("flows_max", translator.configuration.maxSessions, "Cap on live translations (--max-flows)."),
            .counter("flows_created", core[.sessionsCreated], "Translations created."),
            .counter("flows_expired", core[.sessionsExpired], "Translations ended by their idle timeout."),
            .counter("flows_flushed", core[.sessionsFlushed], "Translations removed by a WAN address change or a replaced port forward."),
            .gauge("mappings_active", translator.mappingCount, "Live mappings of internal endpoints to external ports, port forwards included."),
            .gauge("mappings_max", translator.configuration.maxMappings, "Cap on dynamic mappings (--max-flows)."),
            .counter("mappings_created", core[.mappingsCreated], "Dynamic mappings created."),
            .counter("external_address_changes", core[.externalAddressChanges], "Changes of the WAN address."),
            .counter("sessions_opened_inbound", core[.sessionsOpenedInbound], "Translations opened from outside (port forwards, endpoint-independent filtering, helpers' expected connections)."),
            .counter("hairpin_translated", core[.hairpinTranslated], "Packets from inside to the WAN address translated back inside."),
            .counter("hairpin_passed", core[.hairpinPassed], "Packets from inside to the router's addresses passed to its own stack."),
            .counter("ignored_rst_out_of_window", core[.ignoredRSTOutOfWindow], "TCP RSTs from outside beyond the inside host's window: forwarded, the session left as it was."),
            .counter("ignored_rst_in_window", core[.ignoredRSTInWindow], "TCP RSTs from outside in the window but not at the expected sequence number: forwarded (the host answers with a challenge ACK), the session left as it was."),
            .counter("ignored_fin_out_of_window", core[.ignoredFINOutOfWindow], "TCP FINs from outside beyond the inside host's window: forwarded, the session left as it was."),
            .counter("ignored_bad_checksum", core[.ignoredBadChecksum], "TCP SYN, FIN or RST segments with a wrong final checksum: forwarded, the session left as it was."),
            .counter("icmp_errors_inbound", core[.icmpErrorsInbound], "Inbound ICMP errors whose quoted packet was translated."),
            .counter("icmp_errors_outbound", core[.icmpErrorsOutbound], "Outbound ICMP errors whose quoted packet was translated."),
            .counter("drop_truncated", counters[.truncatedDropped], "Packets dropped, by reason.", family: "drops", labels: [("reason", "truncated")]),
            .counter("drop_not_ipv4", counters[.notIPv4Dropped], "Packets dropped, by reason.", family: "drops", labels: [("reason", "not_ipv4")]),
            .counter("drop_unexpected_hook", counters[.unexpectedHookDropped], "Packets dropped, by reason.", family: "drops", labels: [("reason", "unexpected_hook")]),
        ]
        for reason in DropReason.allCases {
            list.append(.counter("drop_\(reason)", core.drops(reason), "Packets dropped, by reason.", family: "drops", labels: [("reason", "\(reason)")]))
        }
        list += [
            .histogram("latency_receive_to_verdict", residence, "Time from a packet's receive to its verdict sent, in its batch."),
            .histogram("latency_per_packet", costPerPacket, "The engine's own translation time per packet (a batch's time over its size)."),
            .gauge("helper_connections", translator.helperConnectionCount, "Live connections with an application helper."),
            .gauge("helper_expectations_pending", translator.pendingExpectationCount, "Connections helpers expect that have not arrived yet."),
            .counter("helper_expectations_fulfilled", core[.expectationsFulfilled], "Expected connections that arrived."),
            .counter("helper_expectations_expired", core[.expectationsExpired], "Expected connections that did not arrive in time."),
            .counter("helper_expectations_refused_host_share", core[.expectationsRefusedHostShare], "Expected connections refused because the internal host had its share pending (--max-helper-flows-per-host)."),
            .counter("helper_lines_held", core[.helperLinesHeld], "Unfinished lines held back until the rest arrived."),
            .counter("helper_held_released", core[.helperHeldReleased], "Held bytes sent on unfinished."),
        ]
        for (index, registration) in translator.configuration.helpers.enumerated() {
            for event in HelperEvent.allCases {
                list.append(.counter("helper_\(registration.helper.name)_\(event)", core.helperEvents(helper: index, event),
                                     "Application helper events, by helper and event.", family: "helper_events",
                                     labels: [("helper", registration.helper.name), ("event", "\(event)")]))
            }
        }
        let fragments = fragmentCounters
        list += [
            .counter("fragments_offered", fragments[.fragmentsOffered], "IPv4 fragments received."),
            .gauge("fragments_held", fragments.fragmentsHeld, "Fragments held until their datagram is whole."),
            .gauge("fragments_bytes_held", fragments.bytesHeld, "Bytes of fragments held."),
            .gauge("fragments_bytes_max", fragmentBytesMax, "Cap on bytes of fragments held."),
            .gauge("fragments_datagrams_in_progress", fragments.datagramsInProgress, "Datagrams being reassembled."),
            .counter("fragments_datagrams_reassembled", fragments[.datagramsCompleted], "Datagrams reassembled."),
            .counter("fragments_datagrams_discarded", fragments[.datagramsDiscarded], "Datagrams given up before they were whole."),
        ]
        for reason in FragmentDropReason.allCases {
            list.append(.counter("fragments_drop_\(reason)", fragments.drops(reason), "Fragments dropped, by reason.",
                                 family: "fragments_drops", labels: [("reason", "\(reason)")]))
        }
        let metrics = metricsServer?.counters ?? MetricsServer.Counters()
        list += [
            .counter("queue_batches", counters[.batches], "Batches taken from the queues."),
            .counter("queue_busy_polled_batches", counters[.busyPolledBatches], "Batches found by polling the queue after the last one (--busy-poll), without sleeping."),
            .counter("queue_verdict_messages", q[.verdictMessagesSent], "Verdict messages sent to the kernel."),
            .counter("queue_netlink_errors", q[.netlinkErrors], "Netlink errors from the queues."),
            .counter("queue_refused_verdicts", counters[.refusedVerdicts], "Verdicts the kernel refused."),
            .counter("queue_receive_overruns", q[.receiveOverruns], "Times the queue socket's receive buffer overran (packets lost in the kernel)."),
            .counter("queue_verdicts_lost", q[.verdictsLost], "Verdicts that could not be sent."),
            .counter("reloads", reloading.reloads, "Reloads of the settings (SIGHUP) applied."),
            .counter("reload_failures", reloading.failures, "Reloads refused (a bad file, a key that cannot change while running): the settings in force were kept."),
            .counter("metrics_scrapes", metrics[.scrapes], "Metrics pages served."),
            .counter("metrics_bad_requests", metrics[.badRequests], "Metrics requests answered with an error (not GET /metrics)."),
            .counter("metrics_clients_evicted", metrics[.clientsEvicted], "Metrics connections closed to make room for a new one (at most 16 open)."),
            .counter("metrics_clients_timed_out", metrics[.clientsTimedOut], "Metrics connections closed for taking too long."),
            .counter("control_clients_timed_out", control.counters[.clientsTimedOut],
                     "Control socket clients closed for not sending their request within 1 s or not taking the answer within 2 s."),
            .counter("control_clients_evicted", control.counters[.clientsEvicted],
                     "Control socket clients closed to make room for a new one (at most 16 open)."),
        ]
        list += stateMetrics()
        list += auditMetrics()
        list += [
            .gauge("other_flows_active", translator.addressOnlyFlowCount, "Live address-only translations (protocols without ports: ESP, GRE, SCTP...)."),
            .gauge("other_flows_max", translator.configuration.maxAddressOnlyFlows, "Cap on address-only translations (--max-other-flows)."),
            .counter("other_flows_created", core[.addressOnlyFlowsCreated], "Address-only translations created."),
            .counter("other_flows_expired", core[.addressOnlyFlowsExpired], "Address-only translations ended by their idle timeout."),
            .gauge("gre_calls_active", translator.greCallCount, "PPTP calls whose enhanced GRE call IDs are translated (the pptp helper)."),
        ]
        list += haMetrics()
        list += fastPath?.metrics() ?? []
        list += redirectMetrics()
        list += reclaimMetrics()
        list += portBlockMetrics()
        return list
    }

    /// Filters: `tcp`, `udp`, `icmp`, `other` (address-only: the protocols without ports), or
    /// an address that must appear in the flow.
    func flowsReport(filters: [String]) -> String {
        var protocols: Set<UInt8> = []
        var addresses: Set<IPv4Address> = []
        var other = false
        for filter in filters {
            switch filter {
            case "tcp": protocols.insert(IPProtocolNumber.tcp)
            case "udp": protocols.insert(IPProtocolNumber.udp)
            case "icmp": protocols.insert(IPProtocolNumber.icmp)
            case "other": other = true
            default:
                guard let address = IPv4Address(filter) else { return "error: unknown filter '\(filter)'\n" }
                addresses.insert(address)
            }
        }
        // Under the lock: only the matching rows, copied (about 50 bytes each).
        let flows: [SessionSnapshot] = withTranslator { translator in
            var flows: [SessionSnapshot] = []
            flows.reserveCapacity(protocols.isEmpty && addresses.isEmpty ? translator.sessionCount : 0)
            translator.forEachSession(now: MonotonicClock.now()) { flow in
                if !protocols.isEmpty || other, !protocols.contains(flow.protocolNumber), !(other && flow.isAddressOnly) { return }
                if !addresses.isEmpty, !addresses.contains(flow.internalAddress), !addresses.contains(flow.remoteAddress) { return }
                flows.append(flow)
            }
            return flows
        }
        var output = ""
        for flow in flows { output += flow.description + (fastPath?.isOffloaded(flow) == true ? " offloaded" : "") + "\n" }
        for flow in redirectFlowLines(protocols: protocols, addresses: addresses) { output += flow.description + "\n" }
        return output
    }
}
