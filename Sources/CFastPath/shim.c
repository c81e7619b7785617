#include "CFastPath.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

struct cfastpath {
    struct bpf_object *object;
    int inbound_fd;
    int outbound_fd;
    int map_fd;
    uint32_t map_id;
    uint32_t capacity;
};

/* libbpf's messages of the load in progress (verifier output included), for the error. */
static char *load_log;
static size_t load_log_size;

/* Outside a load libbpf's messages are dropped: attach and map calls report by their return
   value (an existing clsact, a filter not there yet are not worth a warning line). */
static int quiet_print(enum libbpf_print_level level, const char *format, va_list args)
{
    (void)level; (void)format; (void)args;
    return 0;
}

static int capture_print(enum libbpf_print_level level, const char *format, va_list args)
{
    if (level == LIBBPF_DEBUG || !load_log || load_log_size == 0)
        return 0;
    size_t used = strlen(load_log);
    if (used + 1 < load_log_size)
        vsnprintf(load_log + used, load_log_size - used, format, args);
    return 0;
}

struct cfastpath *cfastpath_load(const char *path, uint32_t max_entries, char *error, size_t error_size)
{
    error[0] = 0;
    load_log = error;
    load_log_size = error_size;
    libbpf_set_print(capture_print);
    struct cfastpath *fast_path = calloc(1, sizeof(*fast_path));
    struct bpf_object *object = bpf_object__open_file(path, NULL);
    int rc = libbpf_get_error(object);
    if (rc) {
        object = NULL;
        if (!error[0]) snprintf(error, error_size, "cannot open %s: %s", path, strerror(-rc));
        goto fail;
    }
    struct bpf_map *map = bpf_object__find_map_by_name(object, "masqd_flows");
    struct bpf_program *inbound = bpf_object__find_program_by_name(object, "masqd_inbound");
    struct bpf_program *outbound = bpf_object__find_program_by_name(object, "masqd_outbound");
    if (!map || !inbound || !outbound) {
        snprintf(error, error_size, "%s is not masqd's fast path object (no masqd_flows, masqd_inbound, masqd_outbound)", path);
        goto fail;
    }
    /* An object from another masqd version (the map layout changed) would be misread. */
    if (bpf_map__key_size(map) != sizeof(struct masqd_fp_key) || bpf_map__value_size(map) != sizeof(struct masqd_fp_value)) {
        snprintf(error, error_size, "%s was built for another masqd (map entries of %u+%u bytes, this masqd's %zu+%zu): rebuild it with Deploy/build-bpf.sh",
                 path, bpf_map__key_size(map), bpf_map__value_size(map), sizeof(struct masqd_fp_key), sizeof(struct masqd_fp_value));
        goto fail;
    }
    if ((rc = bpf_map__set_max_entries(map, max_entries)) != 0) {
        snprintf(error, error_size, "cannot size the flow map: %s", strerror(-rc));
        goto fail;
    }
    if ((rc = bpf_object__load(object)) != 0) {
        size_t used = strlen(error);
        snprintf(error + used, error_size - used, "%sloading %s: %s", used ? "; " : "", path, strerror(-rc));
        goto fail;
    }
    fast_path->object = object;
    fast_path->inbound_fd = bpf_program__fd(inbound);
    fast_path->outbound_fd = bpf_program__fd(outbound);
    fast_path->map_fd = bpf_map__fd(map);
    fast_path->capacity = max_entries;
    struct bpf_map_info info;
    uint32_t info_size = sizeof(info);
    memset(&info, 0, sizeof(info));
    if (bpf_obj_get_info_by_fd(fast_path->map_fd, &info, &info_size) == 0) fast_path->map_id = info.id;
    libbpf_set_print(quiet_print);
    load_log = NULL;
    return fast_path;
fail:
    libbpf_set_print(quiet_print);
    load_log = NULL;
    /* The log's lines end in newlines: one line for the caller. */
    for (char *c = error; *c; c++) if (*c == '\n') *c = ' ';
    bpf_object__close(object);
    free(fast_path);
    return NULL;
}

void cfastpath_close(struct cfastpath *fast_path)
{
    if (!fast_path) return;
    bpf_object__close(fast_path->object);
    free(fast_path);
}

int cfastpath_attach(struct cfastpath *fast_path, int ifindex, int inbound)
{
    DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
    int rc = bpf_tc_hook_create(&hook);
    if (rc && rc != -EEXIST) return rc;
    DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = CFASTPATH_TC_HANDLE, .priority = CFASTPATH_TC_PRIORITY,
                        .prog_fd = inbound ? fast_path->inbound_fd : fast_path->outbound_fd, .flags = BPF_TC_F_REPLACE);
    return bpf_tc_attach(&hook, &opts);
}

int cfastpath_detach(int ifindex)
{
    DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
    DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = CFASTPATH_TC_HANDLE, .priority = CFASTPATH_TC_PRIORITY);
    int rc = bpf_tc_detach(&hook, &opts);
    /* No clsact at all: nothing of ours either. */
    return rc == -EINVAL || rc == -ENODEV ? -ENOENT : rc;
}

int cfastpath_attached(int ifindex)
{
    DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
    DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = CFASTPATH_TC_HANDLE, .priority = CFASTPATH_TC_PRIORITY);
    int rc = bpf_tc_query(&hook, &opts);
    if (rc == 0) return 1;
    return rc == -ENOENT || rc == -EINVAL ? 0 : rc;
}

static int result(int rc) { return rc < 0 ? -errno : rc; }

int cfastpath_add(struct cfastpath *fast_path, const struct masqd_fp_key *key, const struct masqd_fp_value *value)
{
    return result(bpf_map_update_elem(fast_path->map_fd, key, value, BPF_NOEXIST));
}

int cfastpath_delete(struct cfastpath *fast_path, const struct masqd_fp_key *key)
{
    return result(bpf_map_delete_elem(fast_path->map_fd, key));
}

int cfastpath_lookup(struct cfastpath *fast_path, const struct masqd_fp_key *key, struct masqd_fp_value *value)
{
    return result(bpf_map_lookup_elem(fast_path->map_fd, key, value));
}

uint32_t cfastpath_map_id(struct cfastpath *fast_path) { return fast_path->map_id; }
uint32_t cfastpath_map_capacity(struct cfastpath *fast_path) { return fast_path->capacity; }
