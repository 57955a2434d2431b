// start, state, list, kill, delete, pause/resume, ps, update, stats.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <filesystem>

#include "cgroups/cgroup.hpp"
#include "linux/procfs.hpp"
#include "runtime/hooks.hpp"
#include "runtime/runtime.hpp"
#include "runtime/store.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace vitro::runtime {

namespace {

// The remains of a create that died before it wrote the state: the config
// it copied first names the cgroup it may have made, with an init in it.
void clear_dead_create(const std::string& id, const std::string& dir) {
    try {
        oci::Spec spec = oci::parse_spec(read_file(dir + "/config.json"));
        auto cg = cgroups::make_manager(spec.linux ? spec.linux->cgroups_path : "", id);
        if (!cg->pids().empty()) cg->kill_all(SIGKILL);
        cg->destroy();
    } catch (const Error& e) {
        if (e.code() != ENOENT) log::warn("container " + id + ": clearing what a dead create left: " + e.what());
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (ec) throw Error(ec.value(), "remove " + dir + ": " + ec.message());
}

oci::State live_state(const Context& ctx, const std::string& id) {
    oci::State st = load_state(ctx, id);
    refresh_status(ctx, st);
    return st;
}

std::unique_ptr<cgroups::Manager> cgroup_of(const oci::State& st) {
    if (st.cgroup.is_null()) throw Error("container " + st.id + " has no cgroup recorded");
    return cgroups::load_manager(st.cgroup);
}

std::optional<oci::Spec> saved_spec(const Context& ctx, const std::string& id) {
    try {
        return oci::parse_spec(read_file(container_dir(ctx, id) + "/config.json"));
    } catch (const Error& e) {
        log::warn("container " + id + ": saved config unreadable: " + e.what());
        return std::nullopt;
    }
}

void signal_all(const oci::State& st, int sig) {
    std::vector<pid_t> pids;
    try {
        pids = cgroup_of(st)->pids();
    } catch (const Error&) {
        // The cgroup is gone: only the init process is signalled
    }
    if (st.pid > 0 && os::process_alive(st.pid, st.init_start_time)) ::kill(st.pid, sig);
    for (pid_t p : pids) ::kill(p, sig);
}

bool wait_gone(const oci::State& st, int timeout_ms) {
    for (int waited = 0; waited <= timeout_ms; waited += 5) {
        if (!os::process_alive(st.pid, st.init_start_time)) return true;
        ::usleep(5000);
    }
    return false;
}

// Kills (with force), removes the cgroup and state, then runs poststop hooks.
// The caller holds the container's lock.
void destroy_locked(const Context& ctx, oci::State& st, bool force) {
    const std::string& id = st.id;
    if (st.status != oci::Status::Stopped) {
        if (!force)
            throw Error("cannot delete container " + id + " that is not stopped: " + oci::status_name(st.status) +
                        " (use --force)");
        if (st.pid > 0 && os::process_alive(st.pid, st.init_start_time)) ::kill(st.pid, SIGKILL);
        try {
            cgroup_of(st)->kill_all(SIGKILL);
        } catch (const Error& e) {
            log::warn("container " + id + ": kill: " + e.what());
        }
        if (!wait_gone(st, 10000)) throw Error("container " + id + ": init did not die after SIGKILL");
    }
    if (!st.cgroup.is_null()) {
        try {
            auto cg = cgroup_of(st);
            // Without a pid namespace, processes can outlive the init: they die too.
            if (!cg->pids().empty()) cg->kill_all(SIGKILL);
            cg->destroy();
        } catch (const Error& e) {
            log::warn("container " + id + ": remove cgroup: " + e.what());
        }
    }
    auto spec = saved_spec(ctx, id);
    st.status = oci::Status::Stopped;
    std::string dir = container_dir(ctx, id);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (ec) throw Error(ec.value(), "remove " + dir + ": " + ec.message());
    if (spec && spec->hooks) run_hooks(spec->hooks->poststop, "poststop", st.to_spec_json().dump(), true);
}

// "Executed" for poststart: past execve and no longer on its first run burst —
// asleep, stopped or gone — or 100 ms, whichever comes first. A process that
// computes from its first instruction costs `start` those 100 ms at most.
void wait_process_settled(const oci::State& st) {
    for (int i = 0; i < 500; ++i) {
        auto ps = os::read_proc_stat(st.pid);
        if (!ps || ps->start_time != st.init_start_time || ps->state != 'R') return;
        ::usleep(200);
    }
}

}  // namespace

void validate_id(const std::string& id) {
    bool ok = !id.empty() && id.size() <= 1024 && std::isalnum(static_cast<unsigned char>(id[0]));
    for (char c : id)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' && c != '+') ok = false;
    if (!ok) throw Error(EINVAL, "invalid container id '" + id + "': use letters, digits and _ . + - (not first)");
}

int parse_signal(const std::string& s_in) {
    std::string s = s_in;
    uint64_t n = 0;
    if (parse_u64(s, n)) {
        if (n == 0 || n > 64) throw Error(EINVAL, "invalid signal number " + s);
        return static_cast<int>(n);
    }
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (s.rfind("SIG", 0) == 0) s = s.substr(3);
    for (int sig = 1; sig < NSIG; ++sig) {
        const char* abbrev = sigabbrev_np(sig);
        if (abbrev && s == abbrev) return sig;
    }
    if (s.rfind("RTMIN+", 0) == 0 && parse_u64(s.substr(6), n)) return SIGRTMIN + static_cast<int>(n);
    throw Error(EINVAL, "unknown signal '" + s_in + "'");
}

void start(const Context& ctx, const std::string& id) {
    validate_id(id);
    ContainerLock lock(ctx, id);
    oci::State st = live_state(ctx, id);
    if (st.status != oci::Status::Created)
        throw Error("cannot start container " + id + ": it is " + oci::status_name(st.status) + ", not created");
    auto spec = saved_spec(ctx, id);
    // runtime-spec 1.0: prestart hooks run when start is called, before the process.
    if (spec && spec->hooks) {
        try {
            run_hooks(spec->hooks->prestart, "prestart", st.to_spec_json().dump());
        } catch (const Error& e) {
            // The spec: stop the container and continue the lifecycle at delete.
            try {
                destroy_locked(ctx, st, true);
            } catch (const Error& e2) {
                log::warn(e2.what());
            }
            throw;
        }
    }
    std::string fifo = exec_fifo_path(ctx, id);
    UniqueFd fd(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fd) throw_errno("open", fifo);
    // One byte: the init saw us. EOF: it exec'd the process (or died).
    bool released = false;
    for (;;) {
        pollfd p{fd.get(), POLLIN, 0};
        int rc = ::poll(&p, 1, 50);
        if (rc < 0 && errno != EINTR) throw_errno("poll", fifo);
        if (rc > 0) {
            char c;
            ssize_t n = ::read(fd.get(), &c, 1);
            if (n == 1) {
                released = true;
                if (!path_exists(fifo)) continue;
                ::unlink(fifo.c_str());
                st.status = oci::Status::Running;
                save_state(ctx, st);
                continue;
            }
            if (n == 0 && released) break;
            if (n < 0 && errno == EAGAIN) continue;
        }
        if (!os::process_alive(st.pid, st.init_start_time)) {
            if (released) break;
            throw Error("cannot start container " + id + ": its init process exited");
        }
    }
    if (spec && spec->hooks && !spec->hooks->poststart.empty()) {
        wait_process_settled(st);
        run_hooks(spec->hooks->poststart, "poststart", st.to_spec_json().dump(), true);
    }
}

oci::State state(const Context& ctx, const std::string& id) { return live_state(ctx, id); }

std::vector<oci::State> list(const Context& ctx) {
    std::vector<oci::State> out;
    for (const auto& id : list_ids(ctx)) {
        try {
            out.push_back(live_state(ctx, id));
        } catch (const Error& e) {
            log::warn(e.what());
        }
    }
    return out;
}

void kill(const Context& ctx, const std::string& id, int signal, bool all) {
    oci::State st = live_state(ctx, id);
    if (st.status == oci::Status::Stopped) throw Error("cannot kill container " + id + ": it is not running");
    if (all) {
        signal_all(st, signal);
        return;
    }
    if (::kill(st.pid, signal) < 0) throw_errno("kill container " + id + " init", std::to_string(st.pid));
}

void remove(const Context& ctx, const std::string& id, bool force) {
    validate_id(id);
    std::string dir = container_dir(ctx, id);
    if (!container_exists(ctx, id) && !force) throw Error(ENOENT, "container " + id + " does not exist");
    if (!path_exists(dir)) return;  // --force of a missing container is not an error (as runc)
    // A create in progress holds this lock until its state is written.
    ContainerLock lock(ctx, id);
    if (!container_exists(ctx, id)) {
        // A directory without state is the remains of a create that died:
        // podman and the containerd shim delete --force after a failed create.
        clear_dead_create(id, dir);
        return;
    }
    oci::State st = live_state(ctx, id);
    destroy_locked(ctx, st, force);
}

void pause(const Context& ctx, const std::string& id) {
    ContainerLock lock(ctx, id);
    oci::State st = live_state(ctx, id);
    if (st.status != oci::Status::Running && st.status != oci::Status::Created)
        throw Error("cannot pause container " + id + ": it is " + oci::status_name(st.status));
    cgroup_of(st)->freeze(true);
}

void resume(const Context& ctx, const std::string& id) {
    ContainerLock lock(ctx, id);
    oci::State st = live_state(ctx, id);
    if (st.status != oci::Status::Paused) throw Error("cannot resume container " + id + ": it is not paused");
    cgroup_of(st)->freeze(false);
}

std::vector<pid_t> pids(const Context& ctx, const std::string& id) {
    oci::State st = live_state(ctx, id);
    if (st.status == oci::Status::Stopped) return {};
    return cgroup_of(st)->pids();
}

void update(const Context& ctx, const std::string& id, const oci::Resources& resources) {
    ContainerLock lock(ctx, id);
    oci::State st = live_state(ctx, id);
    if (st.status == oci::Status::Stopped) throw Error("cannot update container " + id + ": it is stopped");
    cgroup_of(st)->update(resources);
}

nlohmann::json stats(const Context& ctx, const std::string& id) {
    oci::State st = live_state(ctx, id);
    if (st.status == oci::Status::Stopped) throw Error("container " + id + " is stopped");
    return cgroup_of(st)->stats().to_json();
}

}  // namespace vitro::runtime
