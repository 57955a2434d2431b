/* What cgroup_usage.bpf.c writes for each watched cgroup it walks; shared by
 * the BPF side (C) and cgroup_activity.cpp. Fixed-width fields only. The
 * includer provides __u64/__u32 (vmlinux.h or <linux/types.h>). */
#ifndef VITRO_INTROSPECT_CGROUP_USAGE_RECORD_H
#define VITRO_INTROSPECT_CGROUP_USAGE_RECORD_H

enum cgroup_usage_flags {
    CGROUP_USAGE_CPU = 1,    /* the cgroup has its own cpu controller state: run_ns is set */
    CGROUP_USAGE_MEMORY = 2, /* ... its own memory controller state: memory_*pages are set */
};

struct cgroup_usage_record {
    __u64 id;           /* the cgroup's kernfs id: its directory's inode number */
    __u64 run_ns;       /* CPU time its CFS group entities ran, summed over CPUs */
    __u64 memory_pages; /* its memory page counter: memory.usage_in_bytes / memory.current in pages */
    __u64 memory_peak_pages; /* the counter's high watermark: memory.max_usage_in_bytes / memory.peak */
    __u32 flags;        /* enum cgroup_usage_flags */
    __u32 pad;
};

#endif
