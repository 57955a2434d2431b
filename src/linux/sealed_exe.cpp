#include "linux/sealed_exe.hpp"

#include <fcntl.h>
#include <sys/mman.h>
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
    // Plain read/write, not sendfile: sendfile goes through a pipe whose
    // page references make F_SEAL_WRITE sleep until they drain (~10 ms).
    if (::ftruncate(mem.get(), st.st_size) < 0) throw_errno("size memfd");
    char buf[1 << 16];
    for (off_t off = 0; off < st.st_size;) {
        ssize_t n = ::pread(self.get(), buf, sizeof buf, off);
        if (n <= 0) throw_errno("read", "/proc/self/exe");
        if (::pwrite(mem.get(), buf, static_cast<size_t>(n), off) != n) throw_errno("copy runtime binary to memfd");
        off += n;
    }
    if (::fcntl(mem.get(), F_ADD_SEALS, kSeals) < 0) throw_errno("seal runtime memfd");
    ::fexecve(mem.get(), argv, environ);
    throw_errno("re-exec runtime from sealed memfd");
}

}  // namespace vitro::os
