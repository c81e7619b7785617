import NATCore

// What the control socket answers: `stats` as `name value` lines, `flows` one translation
// per line.

extension Engine {
    func statsReport() -> String {
        let core = translator.counters
        let q = queue.statistics
        var lines: [(String, String)] = [
            ("queue", "\(settings.queue)"),
            ("external_address", translator.configuration.externalAddress.map { "\($0)" } ?? "none"),
            ("packets_received", "\(counters.packetsReceived)"),
            ("verdict_accept", "\(counters.verdictAccept)"),
            ("verdict_accept_rewritten", "\(counters.verdictAcceptRewritten)"),
            ("verdict_drop", "\(counters.verdictDrop)"),
            ("translated_outbound", "\(core.outboundTranslated)"),
            ("translated_inbound", "\(core.inboundTranslated)"),
            ("inbound_unmatched", "\(core.inboundUnmatched)"),
            ("inbound_not_for_us", "\(core.inboundNotForUs)"),
            ("outbound_not_internal", "\(core.outboundNotInternal)"),
            ("flows_active", "\(translator.sessionCount)"),
            ("flows_max", "\(translator.configuration.maxSessions)"),
            ("flows_created", "\(core.sessionsCreated)"),
            ("flows_expired", "\(core.sessionsExpired)"),
            ("flows_flushed", "\(core.sessionsFlushed)"),
            ("mappings_active", "\(translator.mappingCount)"),
            ("mappings_max", "\(translator.configuration.maxMappings)"),
            ("mappings_created", "\(core.mappingsCreated)"),
            ("external_address_changes", "\(core.externalAddressChanges)"),
            ("sessions_opened_inbound", "\(core.sessionsOpenedInbound)"),
            ("hairpin_translated", "\(core.hairpinTranslated)"),
            ("hairpin_passed", "\(core.hairpinPassed)"),
            ("icmp_errors_inbound", "\(core.icmpErrorsInbound)"),
            ("icmp_errors_outbound", "\(core.icmpErrorsOutbound)"),
            ("drop_truncated", "\(counters.truncatedDropped)"),
        ]
        for reason in DropReason.allCases {
            lines.append(("drop_\(reason)", "\(core.drops(reason))"))
        }
        lines += residence.report("latency_receive_to_verdict_ns")
        lines += costPerPacket.report("latency_per_packet_ns")
        lines += [
            ("helper_connections", "\(translator.helperConnectionCount)"),
            ("helper_expectations_pending", "\(translator.pendingExpectationCount)"),
            ("helper_expectations_fulfilled", "\(core.expectationsFulfilled)"),
            ("helper_expectations_expired", "\(core.expectationsExpired)"),
            ("helper_lines_held", "\(core.helperLinesHeld)"),
            ("helper_held_released", "\(core.helperHeldReleased)"),
        ]
        for (index, registration) in translator.configuration.helpers.enumerated() {
            for event in HelperEvent.allCases {
                lines.append(("helper_\(registration.helper.name)_\(event)", "\(core.helperEvents(helper: index, event))"))
            }
        }
        let fragments = reassembler.counters
        lines += [
            ("fragments_offered", "\(fragments.fragmentsOffered)"),
            ("fragments_held", "\(fragments.fragmentsHeld)"),
            ("fragments_bytes_held", "\(fragments.bytesHeld)"),
            ("fragments_bytes_max", "\(reassembler.limits.maxBytes)"),
            ("fragments_datagrams_in_progress", "\(fragments.datagramsInProgress)"),
            ("fragments_datagrams_reassembled", "\(fragments.datagramsCompleted)"),
            ("fragments_datagrams_discarded", "\(fragments.datagramsDiscarded)"),
        ]
        for reason in FragmentDropReason.allCases {
            lines.append(("fragments_drop_\(reason)", "\(fragments.drops(reason))"))
        }
        lines += [
            ("passed_not_ipv4", "\(counters.notIPv4Passed)"),
            ("passed_unexpected_hook", "\(counters.unexpectedHookPassed)"),
            ("queue_batches", "\(counters.batches)"),
            ("queue_verdict_messages", "\(q.verdictMessagesSent)"),
            ("queue_netlink_errors", "\(q.netlinkErrors)"),
            ("queue_refused_verdicts", "\(counters.refusedVerdicts)"),
            ("queue_receive_overruns", "\(q.receiveOverruns)"),
            ("queue_verdicts_lost", "\(q.verdictsLost)"),
        ]
        return lines.map { "\($0.0) \($0.1)\n" }.joined()
    }

    /// Filters: `tcp`, `udp`, `icmp`, or an address that must appear in the flow.
    func flowsReport(filters: [String]) -> String {
        let now = MonotonicClock.now()
        var protocols: Set<UInt8> = []
        var addresses: Set<IPv4Address> = []
        for filter in filters {
            switch filter {
            case "tcp": protocols.insert(IPProtocolNumber.tcp)
            case "udp": protocols.insert(IPProtocolNumber.udp)
            case "icmp": protocols.insert(IPProtocolNumber.icmp)
            default:
                guard let address = IPv4Address(filter) else { return "error: unknown filter '\(filter)'\n" }
                addresses.insert(address)
            }
        }
        var output = ""
        var count = 0
        translator.forEachSession(now: now) { flow in
            if !protocols.isEmpty, !protocols.contains(flow.protocolNumber) { return }
            if !addresses.isEmpty, !addresses.contains(flow.internalAddress), !addresses.contains(flow.remoteAddress) { return }
            output += flow.description + "\n"
            count += 1
        }
        return output
    }
}
