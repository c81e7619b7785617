/* C shim for the daemon's Linux plumbing that Swift's Glibc module cannot reach cleanly:
   rtnetlink (the WAN interface's address and its changes, over libmnl), thread naming and
   CPU pinning (pthread_setname_np and CPU_SET need _GNU_SOURCE). Only clinux_-prefixed names are exported; the
   netlink headers stay inside shim.c so this header imports cleanly into Swift. */
#ifndef CLINUX_H
#define CLINUX_H

#include <stddef.h>
#include <stdint.h>

/* ---- rtnetlink (interface address monitor) ---- */

/* NETLINK_ROUTE socket, nonblocking + cloexec, subscribed to RTMGRP_IPV4_IFADDR|RTMGRP_LINK.
   fd or -errno. */
int clinux_rtnl_open_monitor(void);
/* 1 if a datagram of rtnetlink messages concerns the interface (IPv4 address change on
   ifindex, or a link message for ifindex or named name), else 0. */
int clinux_rtnl_event_affects(const void *datagram, size_t length, uint32_t ifindex,
                            const char *name);
/* First primary (non-secondary) IPv4 address of ifindex by an RTM_GETADDR dump, in host
   byte order. 1 found, 0 none, -errno on failure. */
int clinux_rtnl_primary_ipv4(uint32_t ifindex, uint32_t *address_out);

/* ---- sock_diag (the router's own TCP listeners) ---- */

/* A listening TCP socket: its local address as the kernel keeps it (IPv4: 4 bytes in network
   order; IPv6: 16 bytes) and its port (host order). */
typedef struct {
  uint8_t address[16];
  uint8_t is_ipv6;
  uint16_t port;
} clinux_listener;

/* The TCP sockets in LISTEN of this network namespace, of family AF_INET or AF_INET6, by an
   inet_diag dump that asks for that state only: the kernel then walks its listening hash and
   not the established one, which /proc/net/tcp walks bucket by bucket (262144 buckets here:
   ~9 ms of CPU per read, without a reschedule point). Stores up to `capacity` in `out`;
   returns how many there are (more than `capacity` when cut) or -errno. */
int clinux_tcp_listeners(int family, clinux_listener *out, int capacity);

/* ---- threads ---- */

/* Names the calling thread (at most 15 bytes show), for top -H and /proc. 0 or an errno. */
int clinux_name_current_thread(const char *name);

/* Lets `thread` run on `cpu` alone (pthread_setaffinity_np; CPU_SET needs _GNU_SOURCE
   macros Swift cannot call). 0 or an errno value (EINVAL: no such CPU online). */
int clinux_pin_thread(unsigned long thread, int cpu);

#endif
