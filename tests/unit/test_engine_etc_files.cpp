// engine/ /etc/hosts and /etc/resolv.conf of a container (write_etc_files):
// --add-host first, the container's own names, host.containers.internal,
// --dns/--dns-search/--dns-option replacing the host's lines.
#include <gtest/gtest.h>

#include "engine/container_network.hpp"
#include "image_testutil.hpp"
#include "util/error.hpp"
#include "util/file.hpp"

using namespace vitro;
using namespace vitro::engine;

TEST(EngineEtcFiles, HostsHaveAddHostsFirstThenOwnNamesAndTheHost) {
    image_test::ImageTempDir t;
    EtcFiles f;
    f.hostname = "abcdef012345";
    f.name = "web";
    f.ips = {"10.89.0.5/24"};
    f.host_gateway = "10.89.0.1";
    f.options.add_hosts = {"db:10.1.2.3", "six:[fd00::6]"};
    write_etc_files(t.path, f);
    EXPECT_EQ(read_file(t.path + "/hosts"),
              "10.1.2.3\tdb\nfd00::6\tsix\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
              "10.89.0.5\tabcdef012345 web\n10.89.0.1\thost.containers.internal\n");
    EXPECT_EQ(read_file(t.path + "/hostname"), "abcdef012345\n");

    // An --add-host of host.containers.internal wins; no network: no gateway line.
    f.options.add_hosts = {"host.containers.internal:192.0.2.1"};
    write_etc_files(t.path, f);
    EXPECT_EQ(read_file(t.path + "/hosts").find("10.89.0.1"), std::string::npos);
    f.ips.clear();
    f.host_gateway.clear();
    f.options.add_hosts.clear();
    write_etc_files(t.path, f);
    EXPECT_NE(read_file(t.path + "/hosts").find("127.0.1.1\tabcdef012345 web\n"), std::string::npos);
}

TEST(EngineEtcFiles, DnsFlagsReplaceTheHostsLines) {
    image_test::ImageTempDir t;
    EtcFiles f;
    f.hostname = "h";
    f.options.dns_servers = {"192.0.2.53", "2001:db8::53"};
    f.options.dns_search = {"a.test", "b.test"};
    f.options.dns_options = {"ndots:2", "timeout:1"};
    write_etc_files(t.path, f);
    std::string rc = read_file(t.path + "/resolv.conf");
    EXPECT_NE(rc.find("nameserver 192.0.2.53\nnameserver 2001:db8::53\n"), std::string::npos) << rc;
    EXPECT_NE(rc.find("search a.test b.test\n"), std::string::npos) << rc;
    EXPECT_NE(rc.find("options ndots:2 timeout:1\n"), std::string::npos) << rc;
    size_t count = 0;
    for (size_t i = rc.find("nameserver"); i != std::string::npos; i = rc.find("nameserver", i + 1)) ++count;
    EXPECT_EQ(count, 2u) << rc;

    // --dns none: the image's own file; none written.
    image_test::ImageTempDir t2;
    f.options = {};
    f.options.dns_servers = {"none"};
    write_etc_files(t2.path, f);
    EXPECT_FALSE(path_exists(t2.path + "/resolv.conf"));
}

TEST(EngineEtcFiles, BadAddHostAndDnsValuesAreNamed) {
    EXPECT_EQ(parse_add_host("h:::1"), (std::pair<std::string, std::string>{"h", "::1"}));
    for (const char* bad : {"nocolon", ":10.0.0.1", "h:", "h:10.0.0.256", "h:[10.0.0.1", "a b:10.0.0.1"}) try {
        parse_add_host(bad);
        ADD_FAILURE() << bad;
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
    EXPECT_NO_THROW(check_dns_server("1.1.1.1"));
    EXPECT_NO_THROW(check_dns_server("none"));
    EXPECT_THROW(check_dns_server("dns.example"), Error);
}
