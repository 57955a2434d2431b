/* What process_usage.bpf.c writes for each thread of a watched cgroup;
 * shared by the BPF side (C) and process_activity.cpp. Fixed-width fields
 * only. The includer provides __u64/__u32 (vmlinux.h or <linux/types.h>). */
#ifndef VITRO_INTROSPECT_PROCESS_USAGE_RECORD_H
#define VITRO_INTROSPECT_PROCESS_USAGE_RECORD_H

enum process_usage_flags {
    PROCESS_USAGE_LEADER = 1, /* the thread group's leader: the process fields below are set */
    PROCESS_USAGE_EXITED = 2, /* the thread has exited (a zombie, or reaped but not yet released) */
    PROCESS_USAGE_EXE = 4,    /* the process has an executable: exe_* are set */
    PROCESS_USAGE_FDS = 8,    /* the process has a file table: fds is set */
};

struct process_usage_record {
    __u64 cgroup;       /* the watched cgroup the thread is in, by kernfs id */
    __u64 run_ns;       /* its CPU time; the leader's adds what the group's exited threads ran */
    /* The process (the leader's record only): */
    __u64 start_ns;     /* start, in ns since boot (/proc/<pid>/stat field 22, in ns) */
    __u64 rss_pages;    /* resident pages: file + anon + shmem, as /proc/<pid>/stat counts them */
    __u64 exe_dev;      /* its executable: the kernel's dev_t of its file system, */
    __u64 exe_ino;      /* inode number, */
    __u64 exe_size;     /* size, */
    __u64 exe_mtime_ns; /* and modification time (ns since the epoch) */
    __u64 fds;          /* open file descriptors */
    __u32 pid;          /* the thread group id */
    __u32 tid;          /* the thread's id */
    __u32 threads;      /* the group's thread count */
    __u32 flags;        /* enum process_usage_flags */
    char comm[16];
};

#endif
