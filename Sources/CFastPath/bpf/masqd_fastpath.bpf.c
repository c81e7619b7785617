// SPDX-License-Identifier: GPL-2.0
/* masqd's kernel fast path: tc clsact ingress (direct-action) on the LAN interfaces
   (masqd_outbound) and the WAN interface (masqd_inbound). A packet of a flow the engine has
   offloaded (an exact 5-tuple entry in masqd_flows) is translated here — address and port,
   incremental checksums, TTL — and redirected to its egress interface with
   bpf_redirect_neigh, past netfilter and so past the NFQUEUE rules. Everything else is
   returned untouched with TC_ACT_OK for the normal path: misses, non-IPv4, IP options,
   fragments, TTL <= 1, ICMP, TCP SYN/FIN/RST (the engine keeps the TCP state machine; a
   FIN, RST or SYN also marks the flow's two entries closed, so the rest of the connection
   is the engine's), and packets whose route is not the expected one.
   Built by Deploy/build-bpf.sh (clang -target bpf -O2 -g). */

#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "../include/masqd_fastpath_map.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536); /* the loader sets it (--fast-path-max-flows × 2) */
    __type(key, struct masqd_fp_key);
    __type(value, struct masqd_fp_value);
} masqd_flows SEC(".maps");

/* The sender's highest ACK (with its window) and the end of its latest segment: what the
   engine's window tracking needs when the flow comes back to it. Reordered older segments
   do not move them back; two CPUs racing on one flow leave one of two current values. */
static __always_inline void record_tcp(struct masqd_fp_value *value, const struct iphdr *ip, const struct tcphdr *tcp)
{
    const __u32 ack = bpf_ntohl(tcp->ack_seq);
    const __u32 seq_end = bpf_ntohl(tcp->seq) + (__u32)bpf_ntohs(ip->tot_len) - sizeof(struct iphdr) - tcp->doff * 4u;
    if (!value->tcp_known || (__s32)(ack - value->tcp_ack) >= 0) {
        value->tcp_ack = ack;
        value->tcp_window = bpf_ntohs(tcp->window);
    }
    if (!value->tcp_known || (__s32)(seq_end - value->tcp_seq_end) > 0)
        value->tcp_seq_end = seq_end;
    value->tcp_known = 1;
}

static __always_inline int translate(struct __sk_buff *skb, __u8 direction)
{
    void *data = (void *)(long)skb->data;
    void *data_end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
        return TC_ACT_OK;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end)
        return TC_ACT_OK;
    /* Options, fragments and expiring TTLs are the engine's and the kernel's. */
    if (ip->ihl != 5 || (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) || ip->ttl <= 1)
        return TC_ACT_OK;

    struct masqd_fp_key key = {
        .saddr = ip->saddr, .daddr = ip->daddr, .protocol = ip->protocol, .direction = direction,
    };
    const __u32 l4 = ETH_HLEN + sizeof(struct iphdr);
    __u32 check_offset;
    __u64 mangled_zero = 0;
    int control = 0;
    struct tcphdr *tcp = NULL;
    if (ip->protocol == IPPROTO_TCP) {
        tcp = (void *)(ip + 1);
        if ((void *)(tcp + 1) > data_end)
            return TC_ACT_OK;
        key.sport = tcp->source;
        key.dport = tcp->dest;
        control = tcp->syn | tcp->fin | tcp->rst;
        check_offset = l4 + offsetof(struct tcphdr, check);
    } else if (ip->protocol == IPPROTO_UDP) {
        struct udphdr *udp = (void *)(ip + 1);
        if ((void *)(udp + 1) > data_end)
            return TC_ACT_OK;
        key.sport = udp->source;
        key.dport = udp->dest;
        check_offset = l4 + offsetof(struct udphdr, check);
        mangled_zero = BPF_F_MARK_MANGLED_0; /* a UDP checksum of 0 (none) stays 0 */
    } else {
        return TC_ACT_OK;
    }

    struct masqd_fp_value *value = bpf_map_lookup_elem(&masqd_flows, &key);
    if (!value || value->closed)
        return TC_ACT_OK;
    if (control) {
        /* The connection opens or closes: from here on the engine sees every packet. The
           entries stay (closed) until the daemon has read their counts and deleted them. */
        struct masqd_fp_key reverse = value->reverse;
        struct masqd_fp_value *other = bpf_map_lookup_elem(&masqd_flows, &reverse);
        if (other)
            other->closed = 1;
        value->closed = 1;
        return TC_ACT_OK;
    }

    const int outbound = direction == MASQD_FP_OUTBOUND;
    const __be32 new_address = value->address;
    const __be16 new_port = value->port;
    const __be32 old_address = outbound ? ip->saddr : ip->daddr;
    const __be16 old_port = outbound ? key.sport : key.dport;

    /* The route of the translated packet, before anything is changed: a packet that would
       not leave where this flow leaves, or would need fragmenting, goes the normal way. */
    struct bpf_fib_lookup fib = {
        .family = AF_INET,
        .tos = ip->tos,
        .l4_protocol = ip->protocol,
        .sport = outbound ? new_port : key.sport,
        .dport = outbound ? key.dport : new_port,
        .tot_len = 0, /* 0: the MTU check is the skb's own, which knows GSO */
        .ifindex = skb->ingress_ifindex,
        .ipv4_src = outbound ? new_address : ip->saddr,
        .ipv4_dst = outbound ? ip->daddr : new_address,
    };
    long route = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
    if (route != BPF_FIB_LKUP_RET_SUCCESS && route != BPF_FIB_LKUP_RET_NO_NEIGH)
        return TC_ACT_OK;
    if (outbound ? fib.ifindex != value->wan_ifindex : fib.ifindex == value->wan_ifindex)
        return TC_ACT_OK;

    /* TTL and protocol share the header checksum's 16-bit word at offset 8. */
    __u16 ttl_word_old = *(__u16 *)&ip->ttl;
    __u16 ttl_word_new = ttl_word_old;
    ((__u8 *)&ttl_word_new)[0] -= 1;

    /* Counted before the rewrite (the packet pointers are invalid after it). */
    if (tcp)
        record_tcp(value, ip, tcp);
    value->last_seen_ns = bpf_ktime_get_ns();
    __sync_fetch_and_add(&value->packets, skb->gso_segs ? skb->gso_segs : 1);
    __sync_fetch_and_add(&value->bytes, skb->len - ETH_HLEN);

    /* L4 first: the pseudo-header part (BPF_F_PSEUDO_HDR) is right for CHECKSUM_PARTIAL
       packets (only the pseudo-header sum is in the field) and for complete ones alike; the
       port change is applied only to a complete checksum (the kernel's csum helpers). */
    const __u32 address_offset = ETH_HLEN + (outbound ? offsetof(struct iphdr, saddr) : offsetof(struct iphdr, daddr));
    const __u32 port_offset = l4 + (outbound ? 0 : 2); /* source, destination: the same in TCP and UDP */
    if (bpf_l4_csum_replace(skb, check_offset, old_address, new_address, BPF_F_PSEUDO_HDR | mangled_zero | sizeof(new_address)) ||
        bpf_l4_csum_replace(skb, check_offset, old_port, new_port, mangled_zero | sizeof(new_port)) ||
        bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old_address, new_address, sizeof(new_address)) ||
        bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), ttl_word_old, ttl_word_new, sizeof(ttl_word_new)) ||
        bpf_skb_store_bytes(skb, address_offset, &new_address, sizeof(new_address), 0) ||
        bpf_skb_store_bytes(skb, port_offset, &new_port, sizeof(new_port), 0) ||
        bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, ttl), &ttl_word_new, sizeof(ttl_word_new), 0))
        return TC_ACT_SHOT; /* half rewritten: never sent on (the helpers fail only on a broken skb) */

    struct bpf_redir_neigh nexthop = { .nh_family = AF_INET, .ipv4_nh = fib.ipv4_dst };
    return bpf_redirect_neigh(fib.ifindex, &nexthop, sizeof(nexthop), 0);
}

SEC("tc")
int masqd_outbound(struct __sk_buff *skb)
{
    return translate(skb, MASQD_FP_OUTBOUND);
}

SEC("tc")
int masqd_inbound(struct __sk_buff *skb)
{
    return translate(skb, MASQD_FP_INBOUND);
}

char LICENSE[] SEC("license") = "GPL";
