// The exporter's cgroup walk (CgroupActivity): a cgroup iterator that writes,
// for each cgroup in the map `watched`, how long its tasks have run and the
// memory it is charged, read from the kernel's own structures. One read of
// the iterator replaces two file reads per container per scrape.
//
// The CPU time is the sum over CPUs of the cgroup's CFS group scheduling
// entities' run time (task_group.se[cpu]->sum_exec_runtime): it moves
// whenever a task in the cgroup or below it runs, which is what the
// collector asks. (cpuacct's per-CPU counters would be the exact usage, but
// per-CPU memory cannot be read here: the kernel's BTF carries no percpu
// tags and its kallsyms no per-CPU offsets.) The memory is the page counter
// memory.usage_in_bytes (v1) and memory.current (v2) print, and its high
// watermark, which memory.max_usage_in_bytes (v1) and memory.peak (v2) print.
//
// Everything is read with bpf_probe_read_kernel (BPF_CORE_READ): the
// pointers walked here are not ones the verifier trusts.
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "cgroup_usage_record.h"

char LICENSE[] SEC("license") = "GPL";

// The cgroups asked for, by kernfs id (the value is unused).
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, __u64);
    __type(value, __u8);
    __uint(max_entries, 65536);
} watched SEC(".maps");

// [0]: the number of possible CPU ids (the length of task_group.se).
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u32);
    __uint(max_entries, 1);
} cpu_ids SEC(".maps");

// One CPU's group entity: its run time added to the sum.
struct cpu_sum {
    struct sched_entity **se;
    __u64 run_ns;
};

static long add_cpu(__u32 cpu, struct cpu_sum *s) {
    struct sched_entity *e = 0;
    bpf_probe_read_kernel(&e, sizeof e, s->se + cpu);
    if (e) s->run_ns += BPF_CORE_READ(e, sum_exec_runtime);
    return 0;
}

SEC("iter/cgroup")
int cgroup_usage(struct bpf_iter__cgroup *ctx) {
    struct cgroup *cg = ctx->cgroup;
    if (!cg) return 0;  // the end of the walk
    __u64 id = BPF_CORE_READ(cg, kn, id);
    if (!bpf_map_lookup_elem(&watched, &id)) return 0;
    struct cgroup_usage_record r = {.id = id};

    __u32 zero = 0;
    __u32 *ncpus = bpf_map_lookup_elem(&cpu_ids, &zero);
    struct cgroup_subsys_state *css = 0;
    bpf_probe_read_kernel(&css, sizeof css, &cg->subsys[bpf_core_enum_value(enum cgroup_subsys_id, cpu_cgrp_id)]);
    if (css && ncpus && *ncpus) {
        struct task_group *tg = (void *)css - bpf_core_field_offset(struct task_group, css);
        struct cpu_sum sum = {.se = BPF_CORE_READ(tg, se)};
        if (sum.se) {  // the root's has none
            bpf_loop(*ncpus, add_cpu, &sum, 0);
            r.run_ns = sum.run_ns;
            r.flags |= CGROUP_USAGE_CPU;
        }
    }

    css = 0;
    bpf_probe_read_kernel(&css, sizeof css, &cg->subsys[bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id)]);
    if (css) {
        struct mem_cgroup *m = (void *)css - bpf_core_field_offset(struct mem_cgroup, css);
        r.memory_pages = BPF_CORE_READ(m, memory.usage.counter);
        r.memory_peak_pages = BPF_CORE_READ(m, memory.watermark);
        r.flags |= CGROUP_USAGE_MEMORY;
    }
    bpf_seq_write(ctx->meta->seq, &r, sizeof r);
    return 0;
}
