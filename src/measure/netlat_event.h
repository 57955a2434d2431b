/* The record the BPF tracer (netlat.bpf.c) writes to its ring buffer for each
 * ICMP echo of ours it sees at a device; shared by the BPF side (C) and
 * trace_bpf.cpp. Fixed-width fields only: both sides must agree on the layout.
 * The includer provides __u64/__u32/__u16/__u8 (vmlinux.h or <linux/types.h>). */
#ifndef VITRO_MEASURE_NETLAT_EVENT_H
#define VITRO_MEASURE_NETLAT_EVENT_H

/* Where on the path: a device is handed the packet to send (net_dev_queue);
 * a device hands a received packet to the stack (netif_rx, which queues it on
 * the CPU's backlog, or netif_receive_skb / GRO entry); the stack starts
 * processing a packet (netif_receive_skb: for a queued one, once the NET_RX
 * softirq has got round to it). */
enum netlat_hook { NETLAT_HOOK_XMIT = 1, NETLAT_HOOK_RECV = 2, NETLAT_HOOK_PROCESS = 3 };

/* flags */
/* The device is a veth (or netkit): sending on it queues the packet on this
 * kernel's receive backlog at its peer, to be processed by a NET_RX softirq. */
#define NETLAT_F_LOCAL_PEER 1
/* A Recv event from netif_rx: the packet was queued, not processed yet. */
#define NETLAT_F_QUEUED 2

struct netlat_event {
    __u64 ts_ns;     /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
    __u32 netns;     /* inode number of the device's network namespace */
    __u32 ifindex;
    __u16 icmp_id;   /* network order undone: host order */
    __u16 icmp_seq;  /* host order */
    __u8 icmp_type;  /* 8 echo request, 0 echo reply */
    __u8 hook;       /* enum netlat_hook */
    __u8 flags;      /* NETLAT_F_* */
    __u8 pad;
    char ifname[16];
};

#endif
