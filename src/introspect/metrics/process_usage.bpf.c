// The exporter's process walk (ProcessActivity): a task iterator that
// writes, for each thread in a cgroup of the map `watched`, its cgroup and
// run time, and for each process's leader what /proc/<pid>/stat would say
// of the process (comm, start, threads, RSS) plus its fd count and its
// executable's identity. One read of the iterator replaces the collector's
// cgroup.procs read and the /proc/<pid>/stat, fd-directory and exe stats of
// each process of each container that ran.
//
// The iterator walks every task under RCU (the pid table), without the
// css_set lock a cgroup's task iterator takes with interrupts off. Fields
// are loaded directly through the kernel's BTF (see cgroup_usage.bpf.c);
// only the fd table's bitmap and file pointers, which have no struct type,
// with the helper.
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "process_usage_record.h"
#include "watched_cgroups.bpf.h"

char LICENSE[] SEC("license") = "GPL";

// The id of the cgroup that holds the task's state for controller `ss`.
static __u64 cgroup_of(struct css_set *cset, int ss) {
    struct cgroup_subsys_state *css = cset->subsys[ss];
    return css ? css->cgroup->kn->id : 0;
}

// Open fds: those whose bit is set in the file table's open_fds bitmap and
// whose file is installed. A bit is set from the fd's reservation on: a
// server blocked in accept() holds one with no file yet, which
// /proc/<pid>/fd does not list (and cAdvisor, which reads it, does not count).
struct fd_count {
    unsigned long *words;
    struct file **fd;
    __u64 fds;
};

// One bitmap word, a byte of it at a time: its eight file pointers in one
// read (the fd array is as long as the bitmap: no read past its end), up to
// its last set bit. Counted without a branch per fd: inside a bpf_loop body
// the verifier prunes few paths, and two branches per fd multiplied them past
// its million-instruction limit (E2BIG after seconds, on 6.18; 3,700
// instructions, 25 ms, now). barrier_var keeps clang from turning "is this
// pointer set" back into a branch.
static long count_word(__u32 i, struct fd_count *c) {
    unsigned long w = 0;
    bpf_probe_read_kernel(&w, sizeof w, c->words + i);
    __u64 n = 0;
    for (int k = 0; k < 8 && w; k++, w >>= 8) {
        struct file *f[8] = {};
        bpf_probe_read_kernel(f, sizeof f, c->fd + (__u64)i * 64 + 8 * k);
        for (int b = 0; b < 8; b++) {
            __u64 set = (__u64)f[b] | -(__u64)f[b];  // top bit: f[b] != 0
            barrier_var(set);
            n += (set >> 63) & (w >> b);
        }
    }
    c->fds += n;
    return 0;
}

static void read_process(struct task_struct *t, struct process_usage_record *r) {
    r->flags |= PROCESS_USAGE_LEADER;
    struct signal_struct *sig = t->signal;
    r->run_ns += sig->sum_sched_runtime;
    r->threads = sig->nr_threads;
    r->start_ns = t->start_boottime;
    __builtin_memcpy(r->comm, t->comm, sizeof r->comm);

    struct mm_struct *mm = t->mm;  // null once the leader exited
    if (mm) {
        // get_mm_rss(): each counter's shared count, clamped at 0 (MM_SWAPENTS, [2], is not resident).
        __s64 file = mm->rss_stat[0].count, anon = mm->rss_stat[1].count, shmem = mm->rss_stat[3].count;
        r->rss_pages = (file > 0 ? file : 0) + (anon > 0 ? anon : 0) + (shmem > 0 ? shmem : 0);
        struct file *exe = mm->exe_file;
        struct inode *ino = exe ? exe->f_inode : 0;
        if (ino) {
            r->exe_dev = ino->i_sb->s_dev;
            r->exe_ino = ino->i_ino;
            r->exe_size = ino->i_size;
            r->exe_mtime_ns = ino->i_mtime_sec * 1000000000ULL + ino->i_mtime_nsec;
            r->flags |= PROCESS_USAGE_EXE;
        }
    }
    struct files_struct *files = t->files;
    struct fdtable *fdt = files ? files->fdt : 0;
    if (fdt) {
        struct fd_count c = {.words = fdt->open_fds, .fd = fdt->fd};
        __u32 words = fdt->max_fds / (8 * sizeof(unsigned long));
        if (c.words && c.fd) {
            bpf_loop(words < (1u << 16) ? words : (1u << 16), count_word, &c, 0);
            r->fds = c.fds;
            r->flags |= PROCESS_USAGE_FDS;
        }
    }
}

SEC("iter/task")
int process_usage(struct bpf_iter__task *ctx) {
    struct task_struct *t = ctx->task;
    if (!t) return 0;  // the end of the walk
    // Its cgroup: the cpu controller's, else the memory controller's, else
    // (v2 without those controllers below the root) its own; the first
    // that is watched.
    struct css_set *cset = t->cgroups;
    if (!cset) return 0;
    __u64 id = cgroup_of(cset, bpf_core_enum_value(enum cgroup_subsys_id, cpu_cgrp_id));
    if (!is_watched(id)) id = cgroup_of(cset, bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id));
    if (!is_watched(id)) id = cset->dfl_cgrp->kn->id;
    if (!is_watched(id)) return 0;

    struct process_usage_record r = {.cgroup = id};
    r.pid = t->tgid;
    r.tid = t->pid;
    r.run_ns = t->se.sum_exec_runtime;
    if (t->exit_state) r.flags |= PROCESS_USAGE_EXITED;
    if (r.pid == r.tid) read_process(t, &r);
    bpf_seq_write(ctx->meta->seq, &r, sizeof r);
    return 0;
}
