/* See include/CLinux.h. Socket plumbing and message parsing only; policy lives in Swift. */
#define _GNU_SOURCE
#include "CLinux.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>

/* ---- rtnetlink ---- */

int clinux_rtnl_open_monitor(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -errno;
  struct sockaddr_nl addr = {.nl_family = AF_NETLINK,
                             .nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_LINK};
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

struct link_match { uint32_t ifindex; const char *name; int matched; };

static int link_attr_cb(const struct nlattr *attr, void *data) {
  struct link_match *m = data;
  if (mnl_attr_get_type(attr) == IFLA_IFNAME && m->name &&
      mnl_attr_validate(attr, MNL_TYPE_STRING) >= 0 &&
      strcmp(mnl_attr_get_str(attr), m->name) == 0)
    m->matched = 1;
  return MNL_CB_OK;
}

int clinux_rtnl_event_affects(const void *datagram, size_t length, uint32_t ifindex,
                            const char *name) {
  const struct nlmsghdr *nlh = datagram;
  int remaining = (int)length;
  for (; mnl_nlmsg_ok(nlh, remaining); nlh = mnl_nlmsg_next(nlh, &remaining)) {
    switch (nlh->nlmsg_type) {
    case RTM_NEWADDR:
    case RTM_DELADDR: {
      if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(struct ifaddrmsg)) break;
      const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
      if (ifa->ifa_family == AF_INET && ifindex != 0 && ifa->ifa_index == ifindex) return 1;
      break;
    }
    case RTM_NEWLINK:
    case RTM_DELLINK: {
      if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(struct ifinfomsg)) break;
      const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
      if (ifindex != 0 && (uint32_t)ifi->ifi_index == ifindex) return 1;
      struct link_match m = {ifindex, name, 0};
      mnl_attr_parse(nlh, sizeof(struct ifinfomsg), link_attr_cb, &m);
      if (m.matched) return 1;
      break;
    }
    default:
      break;
    }
  }
  return 0;
}

struct addr_search { uint32_t ifindex; uint32_t address; int found; };

static int addr_attr_cb(const struct nlattr *attr, void *data) {
  const struct nlattr **tb = data;
  int type = mnl_attr_get_type(attr);
  if ((type == IFA_LOCAL || type == IFA_ADDRESS) && mnl_attr_get_payload_len(attr) >= 4)
    tb[type] = attr;
  return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data) {
  struct addr_search *s = data;
  if (s->found || nlh->nlmsg_type != RTM_NEWADDR) return MNL_CB_OK;
  if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(struct ifaddrmsg)) return MNL_CB_OK;
  const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
  if (ifa->ifa_family != AF_INET || ifa->ifa_index != s->ifindex) return MNL_CB_OK;
  if (ifa->ifa_flags & IFA_F_SECONDARY) return MNL_CB_OK;
  const struct nlattr *tb[IFA_MAX + 1] = {0};
  mnl_attr_parse(nlh, sizeof(struct ifaddrmsg), addr_attr_cb, tb);
  const struct nlattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
  if (!a) return MNL_CB_OK;
  uint32_t be;
  memcpy(&be, mnl_attr_get_payload(a), 4);
  s->address = ntohl(be);
  s->found = 1;
  return MNL_CB_OK;
}

/* A dump request's header in `buf`: its type, NLM_F_DUMP, a sequence number. */
static struct nlmsghdr *dump_request(char *buf, uint16_t type) {
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = (uint32_t)time(NULL);
  return nlh;
}

/* Sends the dump request built in `buf` on a fresh socket of netlink family `bus` and runs
   `cb` on every answer until NLMSG_DONE (the answers reuse `buf`). 0 or -errno. */
static int netlink_dump(int bus, char *buf, size_t size, mnl_cb_t cb, void *data) {
  struct mnl_socket *nl = mnl_socket_open2(bus, SOCK_CLOEXEC);
  if (!nl) return -errno;
  struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
  uint32_t seq = nlh->nlmsg_seq;
  int result = 0;
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 || mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
    result = -errno;
  } else {
    unsigned portid = mnl_socket_get_portid(nl);
    for (;;) {
      ssize_t n = mnl_socket_recvfrom(nl, buf, size);
      if (n < 0) { result = -errno; break; }
      int r = mnl_cb_run(buf, (size_t)n, seq, portid, cb, data);
      if (r < 0) { result = -errno; break; }
      if (r == MNL_CB_STOP) break; /* NLMSG_DONE */
    }
  }
  mnl_socket_close(nl);
  return result;
}

int clinux_rtnl_primary_ipv4(uint32_t ifindex, uint32_t *address_out) {
  char buf[32768];
  struct nlmsghdr *nlh = dump_request(buf, RTM_GETADDR);
  struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
  ifa->ifa_family = AF_INET;
  struct addr_search s = {ifindex, 0, 0};
  int result = netlink_dump(NETLINK_ROUTE, buf, sizeof buf, addr_cb, &s);
  if (s.found) { *address_out = s.address; return 1; }
  return result;
}

/* ---- sock_diag ---- */

struct listener_dump {
  clinux_listener *out;
  int capacity;
  int count;
};

static int listener_cb(const struct nlmsghdr *nlh, void *data) {
  struct listener_dump *d = data;
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct inet_diag_msg)) return MNL_CB_OK;
  const struct inet_diag_msg *m = mnl_nlmsg_get_payload(nlh);
  if (d->count < d->capacity) {
    clinux_listener *l = &d->out[d->count];
    memset(l, 0, sizeof *l);
    l->is_ipv6 = m->idiag_family == AF_INET6;
    memcpy(l->address, m->id.idiag_src, l->is_ipv6 ? 16 : 4);
    l->port = ntohs(m->id.idiag_sport);
  }
  d->count++;
  return MNL_CB_OK;
}

int clinux_tcp_listeners(int family, clinux_listener *out, int capacity) {
  char buf[32768];
  struct nlmsghdr *nlh = dump_request(buf, SOCK_DIAG_BY_FAMILY);
  struct inet_diag_req_v2 *req = mnl_nlmsg_put_extra_header(nlh, sizeof *req);
  req->sdiag_family = (uint8_t)family;
  req->sdiag_protocol = IPPROTO_TCP;
  req->idiag_states = 1u << 10; /* TCP_LISTEN only: no walk of the established hash */
  struct listener_dump d = {out, capacity, 0};
  int result = netlink_dump(NETLINK_SOCK_DIAG, buf, sizeof buf, listener_cb, &d);
  return result < 0 ? result : d.count;
}

/* pthread_setname_np needs _GNU_SOURCE, which Swift's Glibc module does not define. */
int clinux_name_current_thread(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}

int clinux_pin_thread(unsigned long thread, int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np((pthread_t)thread, sizeof set, &set);
}
