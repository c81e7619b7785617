/* C shim over libbpf for masqd's kernel fast path (bpf/masqd_fastpath.bpf.c): load the
   object, attach its two programs to tc clsact ingress, detach them, and read and write the
   flow map. Only cfastpath_-prefixed names; libbpf's headers stay inside shim.c. Functions
   return 0 or a negative errno. */
#ifndef CFASTPATH_H
#define CFASTPATH_H

#include <stddef.h>
#include <stdint.h>
#include "masqd_fastpath_map.h"

/* The tc filter masqd owns on an interface's clsact ingress: found and replaced or removed
   by these, whatever run of masqd (a crashed one) attached it. */
#define CFASTPATH_TC_HANDLE 0x6d71
#define CFASTPATH_TC_PRIORITY 0x6d71

struct cfastpath;

/* Opens and loads the object at path with masqd_flows sized max_entries. NULL on failure,
   with libbpf's reason in error. */
struct cfastpath *cfastpath_load(const char *path, uint32_t max_entries, char *error, size_t error_size);
void cfastpath_close(struct cfastpath *fast_path);

/* Creates clsact on ifindex if missing and attaches masqd_inbound (inbound != 0, the WAN)
   or masqd_outbound (a LAN interface), replacing a filter of masqd's already there. */
int cfastpath_attach(struct cfastpath *fast_path, int ifindex, int inbound);
/* Removes masqd's filter from ifindex's ingress; -ENOENT when there is none. clsact stays
   (other filters may use it). */
int cfastpath_detach(int ifindex);
/* 1 if masqd's filter is on ifindex's ingress, 0 if not, or -errno. */
int cfastpath_attached(int ifindex);

/* The flow map: add (fails with -EEXIST if present, -E2BIG when full), delete (-ENOENT
   when absent), look up (-ENOENT when absent). */
int cfastpath_add(struct cfastpath *fast_path, const struct masqd_fp_key *key, const struct masqd_fp_value *value);
int cfastpath_delete(struct cfastpath *fast_path, const struct masqd_fp_key *key);
int cfastpath_lookup(struct cfastpath *fast_path, const struct masqd_fp_key *key, struct masqd_fp_value *value);
/* The map's id (for bpftool map show id N) and capacity. */
uint32_t cfastpath_map_id(struct cfastpath *fast_path);
uint32_t cfastpath_map_capacity(struct cfastpath *fast_path);

#endif
