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
// Fields are loaded directly, through the kernel's BTF: the JIT makes each
// a plain load that a fault cannot crash, where bpf_probe_read_kernel is a
// helper call (copy_from_kernel_nofault, ~12% of the exporter's CPU when
// everything here went through it). bpf_rdonly_cast gives the containers of
// the controllers' states (task_group, mem_cgroup) their types. Only
// task_group.se, an array of pointers with no BTF type to load through, is
// read with the helper.
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "cgroup_usage_record.h"
#include "watched_cgroups.bpf.h"

char LICENSE[] SEC("license") = "GPL";

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

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
    if (e) {
        struct sched_entity *se = bpf_rdonly_cast(e, bpf_core_type_id_kernel(struct sched_entity));
        s->run_ns += se->sum_exec_runtime;
    }
    return 0;
}

SEC("iter/cgroup")
int cgroup_usage(struct bpf_iter__cgroup *ctx) {
    struct cgroup *cg = ctx->cgroup;
    if (!cg) return 0;  // the end of the walk
    __u64 id = cg->kn->id;
    if (!is_watched(id)) return 0;
    struct cgroup_usage_record r = {.id = id};

    __u32 zero = 0;
    __u32 *ncpus = bpf_map_lookup_elem(&cpu_ids, &zero);
    struct cgroup_subsys_state *css = cg->subsys[bpf_core_enum_value(enum cgroup_subsys_id, cpu_cgrp_id)];
    if (css && ncpus && *ncpus) {
        struct task_group *tg = bpf_rdonly_cast((void *)css - bpf_core_field_offset(struct task_group, css),
                                                bpf_core_type_id_kernel(struct task_group));
        struct cpu_sum sum = {.se = tg->se};
        if (sum.se) {  // the root's has none
            bpf_loop(*ncpus, add_cpu, &sum, 0);
            r.run_ns = sum.run_ns;
            r.flags |= CGROUP_USAGE_CPU;
        }
    }

    css = cg->subsys[bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id)];
    if (css) {
        struct mem_cgroup *m = bpf_rdonly_cast((void *)css - bpf_core_field_offset(struct mem_cgroup, css),
                                               bpf_core_type_id_kernel(struct mem_cgroup));
        r.memory_pages = m->memory.usage.counter;
        r.memory_peak_pages = m->memory.watermark;
        r.flags |= CGROUP_USAGE_MEMORY;
    }
    bpf_seq_write(ctx->meta->seq, &r, sizeof r);
    return 0;
}
