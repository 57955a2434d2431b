#include "runtime/hooks.hpp"

#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

namespace vitro::runtime {

void run_hooks(const std::vector<oci::Hook>& hooks, const std::string& phase, const std::string& state_json,
               bool warn_only) {
    for (const auto& h : hooks) {
        RunResult r = run_program(h.path, h.args, h.env, state_json, h.timeout);
        bool ok = !r.timed_out && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0;
        if (ok) continue;
        std::string msg = phase + " hook " + h.path + " " + describe_status(r, h.timeout);
        std::string tail = trim(r.stderr_tail);
        if (!tail.empty()) msg += ": " + tail;
        if (warn_only) {
            log::warn(msg);
            continue;
        }
        throw Error(msg);
    }
}

}  // namespace vitro::runtime
