#include "measure/target.hpp"

#include "util/error.hpp"

namespace vitro::measure {

NetnsHandle open_netns_of_container(engine::Engine& eng, const std::string& ref) {
    engine::ContainerRecord c = eng.get(ref);
    if (!engine::is_running(c)) throw Error(EINVAL, "container " + ref + " is not running: it has no network namespace to probe from");
    pid_t pid = engine::init_pid(c);
    if (pid <= 0) throw Error(EINVAL, "container " + ref + ": no init pid recorded");
    NetnsHandle h = open_netns_of_pid(pid);
    h.description = "container " + (c.name.empty() ? c.id.substr(0, 12) : c.name);
    return h;
}

void require_separate_netns(const NetnsHandle& source, const NetnsHandle& host) {
    if (source.inode == host.inode)
        throw Error(EINVAL, source.description +
                                " shares the host's network namespace (no network namespace of its own, e.g. --network host): "
                                "there are no virtual devices to measure; use plain ping");
}

}  // namespace vitro::measure
