// vitro-pause: the process of a pod's infra container. It holds the pod's
// namespaces (net, ipc, uts, pid when shared) and does nothing else: waits for
// signals, reaps children adopted as PID 1, and exits 0 on SIGTERM, SIGINT or
// SIGHUP. Static, no allocations: it is copied alone into the infra rootfs.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <initializer_list>

int main() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&set, sig);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGCHLD) {
            while (waitpid(-1, nullptr, WNOHANG) > 0) {
            }
            continue;
        }
        return 0;
    }
}
