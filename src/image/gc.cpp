#include "image/gc.hpp"

#include <filesystem>
#include <system_error>

#include "image/fsutil.hpp"
#include "image/import.hpp"
#include "image/store.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

namespace vitro::image {

namespace fs = std::filesystem;

namespace {
bool young(const fs::path& p, std::chrono::seconds grace) {
    std::error_code ec;
    auto t = fs::last_write_time(p, ec);
    return !ec && fs::file_time_type::clock::now() - t < grace;
}

std::string hex(const std::string& digest) { return digest.substr(digest.find(':') + 1); }
}  // namespace

GcReport collect_garbage(const Store& store, const std::set<std::string>& layers_in_use, std::chrono::seconds grace) {
    GcReport r;
    TempSweep swept = store.remove_orphan_temps();  // whatever the rest finds
    r.temps = swept.entries;
    r.bytes = swept.bytes;
    std::set<std::string> blobs, layers;  // hex names to keep
    for (const auto& t : store.tags()) {
        blobs.insert(hex(t.manifest.digest));
        try {
            StoredImage img = load_image(store, t.name);
            blobs.insert(hex(img.manifest.config.digest));
            for (const auto& l : img.manifest.layers) blobs.insert(hex(l.digest));
            for (const auto& d : img.config.diff_ids) layers.insert(hex(d));
        } catch (const Error& e) {
            // A broken image keeps what it has: nothing is taken on a guess.
            log::warn("prune: image " + t.name + ": " + e.what() + " (its blobs are kept)");
            return r;
        }
    }
    for (const auto& p : layers_in_use) {
        // <root>/layers/<hex>/rootfs
        fs::path dir = fs::path(p).parent_path();
        if (dir.parent_path() == fs::path(store.layers_dir())) layers.insert(dir.filename().string());
    }
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(store.root() + "/blobs/sha256", ec)) {
        if (blobs.count(e.path().filename().string()) || young(e.path(), grace)) continue;
        uint64_t size = e.file_size(ec);
        if (fs::remove(e.path(), ec)) ++r.blobs, r.bytes += size;
    }
    for (const auto& e : fs::directory_iterator(store.layers_dir(), ec)) {
        std::string name = e.path().filename().string();
        if (layers.count(name) || young(e.path(), grace)) continue;  // .tmp-* of an unpack in flight are young
        uint64_t size = disk_usage(e.path().string());
        if (fs::remove_all(e.path(), ec) != static_cast<std::uintmax_t>(-1) && !ec) ++r.layers, r.bytes += size;
    }
    return r;
}

}  // namespace vitro::image
