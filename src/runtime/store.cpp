#include "runtime/store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "cgroups/cgroup.hpp"
#include "linux/procfs.hpp"
#include "util/error.hpp"
#include "util/file.hpp"

namespace vitro::runtime {

std::string container_dir(const Context& ctx, const std::string& id) { return ctx.root + "/" + id; }
std::string seccomp_cache_dir(const Context& ctx) { return ctx.root + "/.seccomp-cache"; }
std::string exec_fifo_path(const Context& ctx, const std::string& id) {
    return container_dir(ctx, id) + "/exec.fifo";
}

ContainerLock::ContainerLock(const Context& ctx, const std::string& id) {
    std::string dir = container_dir(ctx, id);
    fd_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd_) {
        if (errno == ENOENT) throw Error(ENOENT, "container " + id + " does not exist");
        throw_errno("open state directory", dir);
    }
    if (::flock(fd_.get(), LOCK_EX) < 0) throw_errno("lock", dir);
}

bool container_exists(const Context& ctx, const std::string& id) {
    return path_exists(container_dir(ctx, id) + "/state.json");
}

oci::State load_state(const Context& ctx, const std::string& id) {
    validate_id(id);
    std::string path = container_dir(ctx, id) + "/state.json";
    std::string text;
    try {
        text = read_file(path);
    } catch (const Error& e) {
        if (e.code() == ENOENT) throw Error(ENOENT, "container " + id + " does not exist");
        throw;
    }
    try {
        return oci::State::from_disk_json(nlohmann::json::parse(text));
    } catch (const nlohmann::json::exception& e) {
        throw Error(path + ": corrupt state: " + e.what());
    }
}

void save_state(const Context& ctx, const oci::State& st) {
    write_file_atomic(container_dir(ctx, st.id) + "/state.json", st.to_disk_json().dump(), 0600);
}

void refresh_status(const Context& ctx, oci::State& st) {
    if (st.status == oci::Status::Creating) {
        // A create that died half-way leaves "creating"; it is stopped unless its init lives.
        if (!os::process_alive(st.pid, st.init_start_time)) st.status = oci::Status::Stopped;
        return;
    }
    if (!os::process_alive(st.pid, st.init_start_time)) {
        st.status = oci::Status::Stopped;
        return;
    }
    if (path_exists(exec_fifo_path(ctx, st.id))) {
        st.status = oci::Status::Created;
        return;
    }
    st.status = oci::Status::Running;
    if (!st.cgroup.is_null()) {
        try {
            if (cgroups::load_manager(st.cgroup)->is_frozen()) st.status = oci::Status::Paused;
        } catch (const Error&) {
            // The freezer state is unreadable: reported as running
        }
    }
}

std::vector<std::string> list_ids(const Context& ctx) {
    std::vector<std::string> ids;
    DIR* d = ::opendir(ctx.root.c_str());
    if (!d) return ids;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        if (path_exists(ctx.root + "/" + name + "/state.json")) ids.push_back(name);
    }
    ::closedir(d);
    std::sort(ids.begin(), ids.end());
    return ids;
}

}  // namespace vitro::runtime
