/* C shim over libmnl + libnetfilter_queue (nfq_nlmsg_* API) for the NetfilterQueue Swift
   binding (rtnetlink and thread naming, which the daemon needs, are CLinux's).
   Only cnfq_-prefixed names are exported; the system netlink headers stay inside shim.c so
   this header imports cleanly into Swift. Constants the kernel defines are mirrored here as
   enums and checked against the real headers with static asserts in shim.c. */
#ifndef CNETFILTERQUEUE_H
#define CNETFILTERQUEUE_H

#include <stddef.h>
#include <stdint.h>

/* Verdicts (NF_DROP / NF_ACCEPT). */
enum { CNFQ_NF_DROP = 0, CNFQ_NF_ACCEPT = 1 };

/* NFQNL_CFG_CMD_* */
enum { CNFQ_CFG_CMD_BIND = 1, CNFQ_CFG_CMD_UNBIND = 2 };

/* NFQA_CFG_F_* flags. */
enum {
  CNFQ_CFG_F_FAIL_OPEN = 1 << 0,
  CNFQ_CFG_F_GSO = 1 << 2,
};

/* NFQA_SKB_INFO bits. */
enum { CNFQ_SKB_CSUMNOTREADY = 1 << 0, CNFQ_SKB_GSO = 1 << 1 };

/* Largest payload the kernel copies / accepts in one attribute (0xffff - NLA_HDRLEN). */
enum { CNFQ_MAX_COPY_RANGE = 65531 };

/* Room a config message needs (header + all attributes). */
enum { CNFQ_CONFIG_MESSAGE_SIZE = 256 };

/* What cnfq_message_next found. */
enum {
  CNFQ_MESSAGE_END = -1,     /* no further (complete) message in the datagram */
  CNFQ_MESSAGE_OTHER = 0,
  CNFQ_MESSAGE_PACKET = 1,   /* NFQNL_MSG_PACKET */
  CNFQ_MESSAGE_ERROR = 2,    /* NLMSG_ERROR (error or ack) */
};

/* The fields of one NFQNL_MSG_PACKET, flattened. Integers in host order. */
typedef struct cnfq_packet {
  void *payload;
  uint32_t payload_length;
  uint32_t id;
  uint32_t cap_length;      /* NFQA_CAP_LEN, valid when has_cap_length */
  uint32_t skb_info;        /* NFQA_SKB_INFO, 0 if absent */
  uint32_t mark;
  uint32_t input_interface;
  uint32_t output_interface;
  uint16_t hardware_protocol;
  uint8_t hook;
  uint8_t has_cap_length;
} cnfq_packet;

/* ---- socket ---- */

/* Opens a NETLINK_NETFILTER socket (libmnl), binds it with an automatic port id.
   Returns the fd (owned by the returned handle) or -errno. */
typedef struct cnfq_socket cnfq_socket;
cnfq_socket *cnfq_socket_open(int *error_out);
int cnfq_socket_fd(const cnfq_socket *socket);
void cnfq_socket_close(cnfq_socket *socket);

/* NETLINK_NO_ENOBUFS on. 0 or -errno. */
int cnfq_socket_set_no_enobufs(int fd);
/* Sets SO_RCVBUFFORCE (receive != 0) or SO_SNDBUFFORCE, falling back to SO_RCVBUF/SO_SNDBUF
   when not permitted; *actual_out gets the size the kernel reports afterwards. 0 or -errno. */
int cnfq_socket_set_buffer(int fd, int receive, int bytes, int *actual_out);

/* sendto() to the kernel (port id 0). Bytes sent or -errno. */
long cnfq_send(int fd, const void *buffer, size_t length);

/* ---- building messages ---- */

/* NFQNL_MSG_CONFIG with NFQA_CFG_CMD. buffer must hold CNFQ_CONFIG_MESSAGE_SIZE bytes.
   Returns the message length. */
size_t cnfq_build_config_command(void *buffer, uint16_t queue, uint8_t command,
                                 uint16_t family, uint32_t sequence, int want_ack);
/* NFQNL_MSG_CONFIG with copy mode PACKET + range, flags & mask, queue max length, NLM_F_ACK. */
size_t cnfq_build_config_parameters(void *buffer, uint16_t queue, uint32_t copy_range,
                                    uint32_t flags, uint32_t mask, uint32_t max_length,
                                    uint32_t sequence);

/* Bytes one NFQNL_MSG_VERDICT takes (payload_length 0 and no payload: none attached). */
size_t cnfq_verdict_message_size(uint32_t payload_length, int with_payload);
/* Appends NFQNL_MSG_VERDICT at buffer (room bytes available), nlmsg_seq = packet id,
   NFQA_PAYLOAD when payload != NULL. Returns bytes used, 0 if it does not fit. */
size_t cnfq_put_verdict(void *buffer, size_t room, uint16_t queue, uint32_t packet_id,
                        int verdict, const void *payload, uint32_t payload_length);

/* ---- receiving ---- */

/* A preallocated recvmmsg vector over count slots of slot_size bytes starting at base. */
typedef struct cnfq_receive_vector cnfq_receive_vector;
cnfq_receive_vector *cnfq_receive_vector_create(void *base, size_t slot_size, unsigned count);
void cnfq_receive_vector_destroy(cnfq_receive_vector *vector);
/* One recvmmsg for up to count datagrams. wait 0: MSG_DONTWAIT; wait 1: MSG_WAITFORONE (block
   for the first datagram, up to the socket's SO_RCVTIMEO, then take what else is there).
   Number received or -errno (-EAGAIN: nothing within the timeout). */
int cnfq_receive_batch(int fd, cnfq_receive_vector *vector, unsigned count, int wait);
/* SO_RCVTIMEO in milliseconds (0: block forever). 0 or -errno. */
int cnfq_set_receive_timeout(int fd, int milliseconds);
uint32_t cnfq_received_length(const cnfq_receive_vector *vector, unsigned index);
/* Nonzero when datagram index did not fit its slot (MSG_TRUNC). */
int cnfq_received_truncated(const cnfq_receive_vector *vector, unsigned index);

/* ---- parsing ---- */

/* Iterates the netlink messages of one datagram: *offset starts at 0 and is advanced past
   the message returned in *message. Returns CNFQ_MESSAGE_* (END when none is left). */
int cnfq_message_next(const void *datagram, size_t length, size_t *offset, void **message);
/* Parses an NFQNL_MSG_PACKET. 0 on success, -1 when malformed (no packet header). */
int cnfq_parse_packet(void *message, cnfq_packet *out);
/* For an NLMSG_ERROR: returns the positive errno (0 for an ack) and the nlmsg_seq of the
   original message it answers. */
int cnfq_parse_error(const void *message, uint32_t *original_sequence);

#endif
