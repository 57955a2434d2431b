// main() of the net/ integration tests: every test runs inside a private
// network + mount namespace, which plays the host, so the machine's real
// bridges, iptables rules, sysctls and /run stay untouched, and every address
// used lives inside it.
#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "net_test_util.hpp"

int main(int argc, char** argv) {
    using vitro::nettest::g_setup_error;
    ::testing::InitGoogleTest(&argc, argv);
    if (::geteuid() == 0) {
        if (::unshare(CLONE_NEWNET | CLONE_NEWNS) < 0) {
            g_setup_error = std::string("unshare(CLONE_NEWNET|CLONE_NEWNS): ") + strerror(errno);
        } else if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) {
            g_setup_error = std::string("make / private: ") + strerror(errno);
        } else {
            // sysfs shows the namespace of whoever mounted it: remount it for ours
            // (cgroups under it vanish, which these tests do not need).
            ::umount2("/sys", MNT_DETACH);
            ::mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
            int s = ::socket(AF_INET, SOCK_DGRAM, 0);
            ifreq ifr{};
            std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
            if (s >= 0 && ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
                ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
                ::ioctl(s, SIOCSIFFLAGS, &ifr);
            }
            if (s >= 0) ::close(s);
        }
    }
    return RUN_ALL_TESTS();
}
