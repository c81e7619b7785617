/* The fast path's map layout, shared by the BPF program (bpf/masqd_fastpath.bpf.c) and the
   daemon (shim.c, FastPathEntry.swift): one entry per flow and direction. Addresses and
   ports are in network byte order, as they sit in the packet; sizes are fixed (checked by
   _Static_assert here and by FastPathLayoutTests on the Swift side). */
#ifndef MASQD_FASTPATH_MAP_H
#define MASQD_FASTPATH_MAP_H

#include <linux/types.h>

/* Which program looks the key up: the LAN interfaces' (outbound, the source is rewritten)
   or the WAN interface's (inbound, the destination is rewritten). */
#define MASQD_FP_OUTBOUND 0
#define MASQD_FP_INBOUND 1

struct masqd_fp_key {
    __be32 saddr;
    __be32 daddr;
    __be16 sport;
    __be16 dport;
    __u8 protocol;  /* IPPROTO_TCP or IPPROTO_UDP */
    __u8 direction; /* MASQD_FP_OUTBOUND or MASQD_FP_INBOUND */
    __u16 pad;      /* zero */
};

struct masqd_fp_value {
    /* The key of the other direction's entry: a FIN, RST or SYN seen here closes both. */
    struct masqd_fp_key reverse;
    /* What replaces the source (outbound) or destination (inbound) address and port. */
    __be32 address;
    __be16 port;
    /* Set by the BPF program at a FIN, RST or SYN: from then on every packet of the flow is
       the engine's; the daemon reads the counts and deletes the entry at its next reading. */
    __u16 closed;
    /* Outbound entries are only used when the route leaves by this interface, inbound
       ones only when it does not (a LAN interface). */
    __u32 wan_ifindex;
    __u32 pad2;
    /* Written by the BPF program: bpf_ktime_get_ns (CLOCK_MONOTONIC, the daemon's clock)
       of the last packet translated, packets (GSO segments counted one by one) and bytes. */
    __u64 last_seen_ns;
    __u64 packets;
    __u64 bytes;
    /* TCP, written by the BPF program from the segments it translates, about their sender
       (outbound entry: the internal host; inbound: the remote): its highest acknowledgement
       number with the window field it announced there, and the sequence number after its
       latest segment. The engine reads them when a FIN or RST of the flow comes to it: its
       window tracking saw nothing of the offloaded stretch (TCPWindowTracking). */
    __u32 tcp_ack;
    __u32 tcp_seq_end;
    __u16 tcp_window;
    __u16 tcp_known; /* 1 once the fields above were written */
    __u32 pad3;
};

_Static_assert(sizeof(struct masqd_fp_key) == 16, "masqd_fp_key is 16 bytes");
_Static_assert(sizeof(struct masqd_fp_value) == 72, "masqd_fp_value is 72 bytes");

#endif
