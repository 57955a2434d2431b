// netlat's tracer: tracepoints on every packet of the machine, keeping
// only ICMP echoes with the prober's identifier. tp_btf gives the typed
// sk_buff, so the ICMP id/seq come from the packet itself and the interface
// and namespace from its device: events are matched to probes exactly, even
// with other traffic around. Events go to a ring buffer without wake-ups;
// user space drains it in batches between probes (a wake-up per event roughly
// doubles the perturbation of the RTTs being measured).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "netlat_event.h"

char LICENSE[] SEC("license") = "GPL";

// Set by user space before load (the verifier then folds them).
const volatile __u16 target_id = 0;     // ICMP identifier, network order
const volatile __u16 target_id_alt = 0; // a second one (e.g. after NAT), 0 = none
// The container's and the host's namespaces (inode numbers); 0 = any.
// Events elsewhere (the remote's own stack, say) cost a ring-buffer record
// and buy nothing.
const volatile __u32 ns_container = 0;
const volatile __u32 ns_host = 0;
// Only the events the overhead needs: the request where a device is handed
// it, the reply where a device hands it up (4 per echo on a bridge instead of
// 10). Off: every hop, for the path display.
const volatile __u8 edges_only = 0;

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 22);
} events SEC(".maps");

// Events the ring buffer had no room for: a probe missing events is then
// reported unmatched, never guessed.
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} dropped SEC(".maps");

#define ETH_P_IP_BE 0x0008 /* htons(0x0800) */

// A veth or netkit device: sending on it queues the packet on this kernel's
// receive backlog at its peer (netif_rx), where it waits for a NET_RX softirq.
static __always_inline bool local_peer(const struct net_device *dev)
{
    const struct rtnl_link_ops *ops = BPF_CORE_READ(dev, rtnl_link_ops);
    if (!ops)
        return false;
    char k[8] = {};
    if (bpf_probe_read_kernel_str(k, sizeof(k), BPF_CORE_READ(ops, kind)) < 0)
        return false;
    return (k[0] == 'v' && k[1] == 'e' && k[2] == 't' && k[3] == 'h' && k[4] == 0) ||
           (k[0] == 'n' && k[1] == 'e' && k[2] == 't' && k[3] == 'k' && k[4] == 'i' && k[5] == 't' && k[6] == 0);
}

static __always_inline void handle(const struct sk_buff *skb, __u8 hook, bool queued)
{
    if (skb->protocol != ETH_P_IP_BE)
        return;
    // Sending (net_dev_queue): the link-layer header may already be in front,
    // and the stack has set the network header offset. Receiving (the rx
    // entry points, after eth_type_trans): data is at the IP header, and the
    // network header offset is not set yet for packets from real NICs.
    unsigned char *l3 = hook == NETLAT_HOOK_XMIT ? skb->head + skb->network_header : skb->data;
    struct iphdr ip;
    if (bpf_probe_read_kernel(&ip, sizeof(ip), l3))
        return;
    if (ip.protocol != 1 /* ICMP */ || ip.version != 4)
        return;
    if (ip.frag_off & bpf_htons(0x1fff)) /* not the first fragment: no ICMP header */
        return;
    struct {
        __u8 type, code;
        __u16 csum, id, seq;
    } icmp;
    if (bpf_probe_read_kernel(&icmp, sizeof(icmp), l3 + ip.ihl * 4))
        return;
    if (icmp.type != 8 && icmp.type != 0)
        return;
    if (icmp.id != target_id && (target_id_alt == 0 || icmp.id != target_id_alt))
        return;
    bool request = icmp.type == 8;
    // Edges mode keeps the request where a device is handed it, the reply
    // where a device hands it up, and, for the request only, where the host
    // side of the container's link queues it and where the softirq takes it
    // up (its backlog wait, see matcher.hpp).
    if (edges_only && request != (hook != NETLAT_HOOK_RECV) && !(request && queued))
        return;

    __u64 ts = bpf_ktime_get_ns();
    const struct net_device *dev = skb->dev;
    __u32 netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
    if (ns_container && netns != ns_container && netns != ns_host)
        return;
    __u8 flags = queued ? NETLAT_F_QUEUED : 0;
    bool backlog = hook == NETLAT_HOOK_PROCESS || (edges_only && request && hook == NETLAT_HOOK_RECV);
    if (backlog && edges_only && ns_host && netns != ns_host)
        return;
    if ((backlog || queued || hook == NETLAT_HOOK_XMIT) && local_peer(dev))
        flags |= NETLAT_F_LOCAL_PEER;
    else if (backlog) // processing starts and queueing: at veths only
        return;
    struct netlat_event e = {};
    e.ts_ns = ts;
    e.netns = netns;
    e.ifindex = BPF_CORE_READ(dev, ifindex);
    BPF_CORE_READ_STR_INTO(&e.ifname, dev, name);
    e.icmp_id = bpf_ntohs(icmp.id);
    e.icmp_seq = bpf_ntohs(icmp.seq);
    e.icmp_type = icmp.type;
    e.hook = hook;
    e.flags = flags;
    if (bpf_ringbuf_output(&events, &e, sizeof(e), BPF_RB_NO_WAKEUP)) {
        __u32 zero = 0;
        __u64 *n = bpf_map_lookup_elem(&dropped, &zero);
        if (n)
            (*n)++;
    }
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(netlat_xmit, struct sk_buff *skb)
{
    handle(skb, NETLAT_HOOK_XMIT, false);
    return 0;
}

// Where a device hands a received packet to the stack; the kernel takes the
// socket's receive timestamp here too, so the ingress points of the host and
// the container line up with what the prober measures. Veth (and macvlan,
// ipvlan) go through netif_rx; NICs through GRO or netif_receive_skb; a
// bridge delivering up to its host through netif_receive_skb.
SEC("tp_btf/netif_rx")
int BPF_PROG(netlat_rx, struct sk_buff *skb)
{
    handle(skb, NETLAT_HOOK_RECV, true);
    return 0;
}

SEC("tp_btf/netif_receive_skb_entry")
int BPF_PROG(netlat_rx_entry, const struct sk_buff *skb)
{
    handle(skb, NETLAT_HOOK_RECV, false);
    return 0;
}

SEC("tp_btf/napi_gro_receive_entry")
int BPF_PROG(netlat_gro_entry, const struct sk_buff *skb)
{
    handle(skb, NETLAT_HOOK_RECV, false);
    return 0;
}

// Where the stack starts processing a packet (__netif_receive_skb_core): for
// one that netif_rx queued, when the NET_RX softirq has got round to it.
SEC("tp_btf/netif_receive_skb")
int BPF_PROG(netlat_process, struct sk_buff *skb)
{
    handle(skb, NETLAT_HOOK_PROCESS, false);
    return 0;
}
