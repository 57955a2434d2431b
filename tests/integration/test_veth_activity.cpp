// introspect::VethActivity on the real kernel, inside the private "host"
// namespace of these tests (net_test_main.cpp): which container namespaces
// had a veth move, seen from this side, as the exporter uses it to skip
// reading the /proc/<pid>/net/dev of containers whose network did not move.
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cstring>

#include "introspect/common/proc_stats.hpp"
#include "introspect/metrics/veth_activity.hpp"
#include "linux/netdev.hpp"
#include "net_test_util.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace vitro::nettest {
namespace {

// net.ipv6.conf.DEV.disable_ipv6 in the namespace at `netns` ("" for ours):
// no router solicitations or DAD to move the counters on their own.
void no_ipv6(const std::string& netns, const std::string& dev) {
    std::string enter = netns.empty() ? "" : "nsenter --net=" + netns + " ";
    ASSERT_EQ(sh(enter + "sh -c 'echo 1 > /proc/sys/net/ipv6/conf/" + dev + "/disable_ipv6'"), 0) << dev;
}

void up(os::Rtnl& nl, const std::string& dev) {
    auto link = os::find_link(nl, dev);
    ASSERT_TRUE(link) << dev;
    os::set_link_flags(nl, link->index, IFF_UP, IFF_UP, dev);
}

// One Ethernet frame out of `dev` (a local experimental EtherType, to nobody).
void send_frame(const std::string& dev) {
    UniqueFd s(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(s) << std::strerror(errno);
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = static_cast<int>(::if_nametoindex(dev.c_str()));
    to.sll_halen = ETH_ALEN;
    std::memset(to.sll_addr, 0xff, ETH_ALEN);
    unsigned char frame[60] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5};
    ASSERT_EQ(::sendto(s.get(), frame, sizeof frame, 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
              static_cast<ssize_t>(sizeof frame))
        << std::strerror(errno);
}

TEST(VethActivity, TellsWhichNamespacesVethsMoved) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!g_setup_error.empty()) GTEST_SKIP() << g_setup_error;
    fs::path dir = fs::path(::testing::TempDir()) / ("veth-activity-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    auto ns = net::NetNs::create(dir, "c1");
    UniqueFd nsfd(::open(ns.path().c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(nsfd);
    os::Rtnl host, inside(nsfd.get());
    introspect::VethActivity va;
    va.sample();
    EXPECT_FALSE(va.nsid_of(nsfd.get())) << "no veth peers into it yet: no id";

    os::create_veth(host, {"va-h0", 0, false, 0}, {"eth0", 0, false, 0}, nsfd.get());
    no_ipv6("", "va-h0");
    no_ipv6(ns.path(), "eth0");
    up(host, "va-h0");
    up(inside, "eth0");
    // The kernel's link watch attaches the queueing discipline when it sees
    // the carrier (operstate up): a frame sent before that is dropped.
    std::string state;
    for (int i = 0; i < 200 && trim(state) != "up"; ++i) {
        ::usleep(25 * 1000);
        state = read_file("/sys/class/net/va-h0/operstate");
    }
    ASSERT_EQ(trim(state), "up");
    auto nsid = va.nsid_of(nsfd.get());
    ASSERT_TRUE(nsid) << "a veth peers into it: it has an id here";
    va.sample();
    EXPECT_EQ(va.peers_in(*nsid), 1u);
    EXPECT_TRUE(va.moved(*nsid)) << "a new veth counts as moved";
    va.sample();
    EXPECT_FALSE(va.moved(*nsid)) << "nothing sent or received";
    EXPECT_EQ(va.peers_in(*nsid + 1), 0u);

    send_frame("va-h0");
    va.sample();
    EXPECT_TRUE(va.moved(*nsid)) << "a frame from this side to the namespace";
    va.sample();
    EXPECT_FALSE(va.moved(*nsid));
    std::string net_dev;
    sh("nsenter --net=" + ns.path().string() + " cat /proc/net/dev", &net_dev);
    auto counters = introspect::parse_net_dev(net_dev);
    ASSERT_EQ(counters.size(), 1u) << net_dev;
    EXPECT_EQ(counters[0].rx_packets, 1u) << "the namespace's end received it";

    os::create_veth(host, {"va-h1", 0, false, 0}, {"eth1", 0, false, 0}, nsfd.get());
    va.sample();
    EXPECT_EQ(va.peers_in(*nsid), 2u);
    EXPECT_TRUE(va.moved(*nsid)) << "a second veth into it";
    os::delete_link(host, os::find_link(host, "va-h1")->index, "va-h1");
    va.sample();
    EXPECT_EQ(va.peers_in(*nsid), 1u);
    EXPECT_TRUE(va.moved(*nsid)) << "a veth gone";

    os::delete_link(host, os::find_link(host, "va-h0")->index, "va-h0");
    va.sample();
    EXPECT_EQ(va.peers_in(*nsid), 0u);
    ns.remove();
    fs::remove_all(dir);
}

}  // namespace
}  // namespace vitro::nettest
