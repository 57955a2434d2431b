#include "linux/sealed_exe.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "util/error.hpp"
#include "util/fd.hpp"

extern char** environ;

namespace vitro::os {

namespace {
constexpr int kSeals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
}

bool running_sealed() {
    UniqueFd self(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
    if (!self) return false;
    int seals = ::fcntl(self.get(), F_GET_SEALS);
    return seals >= 0 && (seals & kSeals) == kSeals;
}

void ensure_sealed_exe(int /*argc*/, char** argv) {
    const char* off = std::getenv("VITRO_NO_SEALED_EXE");
    if (off && off[0] == '1') return;
    if (running_sealed()) return;

    UniqueFd self(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
    if (!self) throw_errno("open", "/proc/self/exe");
    struct stat st;
    if (::fstat(self.get(), &st) < 0) throw_errno("stat", "/proc/self/exe");
    UniqueFd mem(::memfd_create("vitro-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!mem) throw_errno("memfd_create");
    off_t left = st.st_size;
    while (left > 0) {
        ssize_t n = ::sendfile(mem.get(), self.get(), nullptr, static_cast<size_t>(left));
        if (n <= 0) throw_errno("copy runtime binary to memfd");
        left -= n;
    }
    if (::fcntl(mem.get(), F_ADD_SEALS, kSeals) < 0) throw_errno("seal runtime memfd");
    ::fexecve(mem.get(), argv, environ);
    throw_errno("re-exec runtime from sealed memfd");
}

}  // namespace vitro::os
