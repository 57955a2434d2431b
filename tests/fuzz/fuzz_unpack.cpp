// libFuzzer target: unpacking arbitrary bytes as a layer must never crash,
// hang or leak, must surface bad input as vitro::Error only, and must never
// create anything outside the target directory (checked after every input:
// the scratch dir around the target must be empty again).
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "image/fsutil.hpp"
#include "image/unpack.hpp"
#include "util/error.hpp"

namespace {
char g_scratch[64];

std::string scratch() {
    static const bool ready = [] {
        // Decompression bombs: writes past 64 MiB fail with EFBIG, not a full disk.
        ::signal(SIGXFSZ, SIG_IGN);
        rlimit r{64 << 20, 64 << 20};
        ::setrlimit(RLIMIT_FSIZE, &r);
        std::snprintf(g_scratch, sizeof g_scratch, "/tmp/vitro-fuzz-unpack-XXXXXX");
        if (!::mkdtemp(g_scratch)) ::abort();
        ::atexit([] {
            try {
                vitro::image::remove_tree(g_scratch);
            } catch (...) {
            }
        });
        return true;
    }();
    (void)ready;
    return g_scratch;
}

bool empty_dir(const std::string& path) {
    DIR* d = ::opendir(path.c_str());
    if (!d) return false;
    int n = 0;
    while (dirent* e = ::readdir(d))
        if (std::string_view(e->d_name) != "." && std::string_view(e->d_name) != "..") ++n;
    ::closedir(d);
    return n == 0;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string base = scratch();
    const std::string dest = base + "/layer";
    try {
        vitro::image::unpack_layer_bytes(std::string_view(reinterpret_cast<const char*>(data), size), dest);
    } catch (const vitro::Error&) {
    }
    vitro::image::remove_tree(dest);
    if (!empty_dir(base)) {
        std::fprintf(stderr, "fuzz_unpack: an entry escaped the layer directory into %s\n", base.c_str());
        ::abort();
    }
    return 0;
}
