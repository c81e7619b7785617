/* See include/CNetfilterQueue.h. Socket plumbing and message building/parsing only;
   loops and policy live in Swift. */
#define _GNU_SOURCE
#include "CNetfilterQueue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

_Static_assert(CNFQ_NF_DROP == NF_DROP, "NF_DROP");
_Static_assert(CNFQ_NF_ACCEPT == NF_ACCEPT, "NF_ACCEPT");
_Static_assert(CNFQ_CFG_CMD_BIND == NFQNL_CFG_CMD_BIND, "BIND");
_Static_assert(CNFQ_CFG_CMD_UNBIND == NFQNL_CFG_CMD_UNBIND, "UNBIND");
_Static_assert(CNFQ_CFG_F_FAIL_OPEN == NFQA_CFG_F_FAIL_OPEN, "FAIL_OPEN");
_Static_assert(CNFQ_CFG_F_GSO == NFQA_CFG_F_GSO, "GSO");
_Static_assert(CNFQ_SKB_CSUMNOTREADY == NFQA_SKB_CSUMNOTREADY, "CSUMNOTREADY");
_Static_assert(CNFQ_SKB_GSO == NFQA_SKB_GSO, "SKB_GSO");
_Static_assert(CNFQ_MAX_COPY_RANGE == 0xffff - NLA_HDRLEN, "copy range");

/* ---- socket ---- */

cnfq_socket *cnfq_socket_open(int *error_out) {
  struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
  if (!nl) { *error_out = errno; return NULL; }
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    *error_out = errno;
    mnl_socket_close(nl);
    return NULL;
  }
  *error_out = 0;
  return (cnfq_socket *)nl;
}

int cnfq_socket_fd(const cnfq_socket *socket) {
  return mnl_socket_get_fd((const struct mnl_socket *)socket);
}

void cnfq_socket_close(cnfq_socket *socket) { mnl_socket_close((struct mnl_socket *)socket); }

int cnfq_socket_set_no_enobufs(int fd) {
  int one = 1;
  return setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one) < 0 ? -errno : 0;
}

int cnfq_socket_set_buffer(int fd, int receive, int bytes, int *actual_out) {
  int force = receive ? SO_RCVBUFFORCE : SO_SNDBUFFORCE;
  int plain = receive ? SO_RCVBUF : SO_SNDBUF;
  if (setsockopt(fd, SOL_SOCKET, force, &bytes, sizeof bytes) < 0) {
    if (errno != EPERM) return -errno;
    if (setsockopt(fd, SOL_SOCKET, plain, &bytes, sizeof bytes) < 0) return -errno;
  }
  int actual = 0;
  socklen_t len = sizeof actual;
  if (getsockopt(fd, SOL_SOCKET, plain, &actual, &len) < 0) return -errno;
  *actual_out = actual;
  return 0;
}

long cnfq_send(int fd, const void *buffer, size_t length) {
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t r = sendto(fd, buffer, length, 0, (const struct sockaddr *)&kernel, sizeof kernel);
  return r < 0 ? -errno : (long)r;
}

/* ---- building ---- */

size_t cnfq_build_config_command(void *buffer, uint16_t queue, uint8_t command,
                                 uint16_t family, uint32_t sequence, int want_ack) {
  struct nlmsghdr *nlh = nfq_nlmsg_put(buffer, NFQNL_MSG_CONFIG, queue);
  if (want_ack) nlh->nlmsg_flags |= NLM_F_ACK;
  nlh->nlmsg_seq = sequence;
  nfq_nlmsg_cfg_put_cmd(nlh, family, command);
  return nlh->nlmsg_len;
}

size_t cnfq_build_config_parameters(void *buffer, uint16_t queue, uint32_t copy_range,
                                    uint32_t flags, uint32_t mask, uint32_t max_length,
                                    uint32_t sequence) {
  struct nlmsghdr *nlh = nfq_nlmsg_put(buffer, NFQNL_MSG_CONFIG, queue);
  nlh->nlmsg_flags |= NLM_F_ACK;
  nlh->nlmsg_seq = sequence;
  nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, (int)copy_range);
  mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
  mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(mask));
  nfq_nlmsg_cfg_put_qmaxlen(nlh, max_length);
  return nlh->nlmsg_len;
}

size_t cnfq_verdict_message_size(uint32_t payload_length, int with_payload) {
  size_t size = MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg)) +
                MNL_ATTR_HDRLEN + MNL_ALIGN(sizeof(struct nfqnl_msg_verdict_hdr));
  if (with_payload) size += MNL_ATTR_HDRLEN + MNL_ALIGN(payload_length);
  return size;
}

size_t cnfq_put_verdict(void *buffer, size_t room, uint16_t queue, uint32_t packet_id,
                        int verdict, const void *payload, uint32_t payload_length) {
  if (payload && payload_length > CNFQ_MAX_COPY_RANGE) return 0;
  size_t need = cnfq_verdict_message_size(payload_length, payload != NULL);
  if (need > room) return 0;
  struct nlmsghdr *nlh = nfq_nlmsg_put(buffer, NFQNL_MSG_VERDICT, queue);
  nlh->nlmsg_seq = packet_id;
  nfq_nlmsg_verdict_put(nlh, (int)packet_id, verdict);
  if (payload) nfq_nlmsg_verdict_put_pkt(nlh, payload, payload_length);
  return nlh->nlmsg_len;
}

/* ---- receiving ---- */

struct cnfq_receive_vector {
  unsigned count;
  struct mmsghdr *messages;
  struct iovec *vectors;
};

cnfq_receive_vector *cnfq_receive_vector_create(void *base, size_t slot_size, unsigned count) {
  cnfq_receive_vector *v = calloc(1, sizeof *v);
  if (!v) return NULL;
  v->count = count;
  v->messages = calloc(count, sizeof *v->messages);
  v->vectors = calloc(count, sizeof *v->vectors);
  if (!v->messages || !v->vectors) { cnfq_receive_vector_destroy(v); return NULL; }
  for (unsigned i = 0; i < count; i++) {
    v->vectors[i].iov_base = (char *)base + (size_t)i * slot_size;
    v->vectors[i].iov_len = slot_size;
    v->messages[i].msg_hdr.msg_iov = &v->vectors[i];
    v->messages[i].msg_hdr.msg_iovlen = 1;
  }
  return v;
}

void cnfq_receive_vector_destroy(cnfq_receive_vector *v) {
  if (!v) return;
  free(v->messages);
  free(v->vectors);
  free(v);
}

int cnfq_receive_batch(int fd, cnfq_receive_vector *v, unsigned count, int wait) {
  if (count > v->count) count = v->count;
  for (unsigned i = 0; i < count; i++) {
    v->messages[i].msg_hdr.msg_flags = 0;
    v->messages[i].msg_len = 0;
  }
  /* Not recvmmsg's own timeout argument: it is only checked after a datagram arrives. */
  int r = recvmmsg(fd, v->messages, count, wait ? MSG_WAITFORONE : MSG_DONTWAIT, NULL);
  return r < 0 ? -errno : r;
}

int cnfq_set_receive_timeout(int fd, int milliseconds) {
  struct timeval tv = { .tv_sec = milliseconds / 1000, .tv_usec = (milliseconds % 1000) * 1000 };
  return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ? -errno : 0;
}

uint32_t cnfq_received_length(const cnfq_receive_vector *v, unsigned index) {
  return v->messages[index].msg_len;
}

int cnfq_received_truncated(const cnfq_receive_vector *v, unsigned index) {
  return (v->messages[index].msg_hdr.msg_flags & MSG_TRUNC) != 0;
}

/* ---- parsing ---- */

int cnfq_message_next(const void *datagram, size_t length, size_t *offset, void **message) {
  if (*offset >= length) return CNFQ_MESSAGE_END;
  struct nlmsghdr *nlh = (struct nlmsghdr *)((char *)datagram + *offset);
  int remaining = (int)(length - *offset);
  if (!mnl_nlmsg_ok(nlh, remaining)) return CNFQ_MESSAGE_END;
  *offset += MNL_ALIGN(nlh->nlmsg_len);
  *message = nlh;
  if (nlh->nlmsg_type == NLMSG_ERROR) return CNFQ_MESSAGE_ERROR;
  if (nlh->nlmsg_type == ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)) return CNFQ_MESSAGE_PACKET;
  return CNFQ_MESSAGE_OTHER;
}

int cnfq_parse_packet(void *message, cnfq_packet *out) {
  struct nlattr *attr[NFQA_MAX + 1];
  memset(attr, 0, sizeof attr);
  if (nfq_nlmsg_parse(message, attr) < 0) return -1;
  if (!attr[NFQA_PACKET_HDR] ||
      mnl_attr_get_payload_len(attr[NFQA_PACKET_HDR]) < sizeof(struct nfqnl_msg_packet_hdr))
    return -1;
  struct nfqnl_msg_packet_hdr ph;
  memcpy(&ph, mnl_attr_get_payload(attr[NFQA_PACKET_HDR]), sizeof ph);
  out->id = ntohl(ph.packet_id);
  out->hardware_protocol = ntohs(ph.hw_protocol);
  out->hook = ph.hook;
  if (attr[NFQA_PAYLOAD]) {
    out->payload = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
    out->payload_length = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
  } else {
    out->payload = NULL;
    out->payload_length = 0;
  }
  out->mark = attr[NFQA_MARK] ? ntohl(mnl_attr_get_u32(attr[NFQA_MARK])) : 0;
  out->input_interface =
      attr[NFQA_IFINDEX_INDEV] ? ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_INDEV])) : 0;
  out->output_interface =
      attr[NFQA_IFINDEX_OUTDEV] ? ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_OUTDEV])) : 0;
  out->skb_info = attr[NFQA_SKB_INFO] ? ntohl(mnl_attr_get_u32(attr[NFQA_SKB_INFO])) : 0;
  out->has_cap_length = attr[NFQA_CAP_LEN] != NULL;
  out->cap_length = attr[NFQA_CAP_LEN] ? ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) : 0;
  return 0;
}

int cnfq_parse_error(const void *message, uint32_t *original_sequence) {
  const struct nlmsghdr *nlh = message;
  *original_sequence = 0;
  if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(int)) return EBADMSG;
  const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
  if (nlh->nlmsg_len >= MNL_NLMSG_HDRLEN + sizeof(struct nlmsgerr))
    *original_sequence = err->msg.nlmsg_seq;
  return -err->error;
}
