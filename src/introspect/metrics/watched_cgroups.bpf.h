// The exporter's BPF walks (cgroup_usage.bpf.c, process_usage.bpf.c): the
// cgroups user space asks about, each walk's own map of them (set through
// bpf::mirror_set).
#ifndef VITRO_INTROSPECT_WATCHED_CGROUPS_BPF_H
#define VITRO_INTROSPECT_WATCHED_CGROUPS_BPF_H

// The cgroups asked for, by kernfs id (the value is unused).
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, __u64);
    __type(value, __u8);
    __uint(max_entries, 65536);
} watched SEC(".maps");

static int is_watched(__u64 id) { return id && bpf_map_lookup_elem(&watched, &id); }

#endif
