#include "image/export.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <memory>

#include <nlohmann/json.hpp>

#include "image/import.hpp"
#include "image/store.hpp"
#include "util/error.hpp"

namespace vitro::image {

namespace {

using nlohmann::json;

struct WriterFree {
    void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
};

std::string hex_of(const std::string& digest) { return digest.substr(digest.find(':') + 1); }

class TarWriter {
public:
    explicit TarWriter(const std::string& path) : path_(path), a_(archive_write_new()) {
        if (!a_) throw Error(ENOMEM, "archive_write_new");
        archive_write_set_format_pax_restricted(a_.get());
        if (archive_write_open_filename(a_.get(), path.c_str()) != ARCHIVE_OK) fail("open");
    }
    void add_bytes(const std::string& name, const std::string& data) {
        header(name, static_cast<int64_t>(data.size()), AE_IFREG);
        if (!data.empty() && archive_write_data(a_.get(), data.data(), data.size()) < 0) fail("write " + name);
    }
    void add_dir(const std::string& name) { header(name, 0, AE_IFDIR); }
    // Copies a stored blob into the archive.
    void add_blob(const Store& store, const std::string& name, const Descriptor& d) {
        UniqueFd fd = store.open_blob(d.digest);
        header(name, d.size, AE_IFREG);
        char buf[1 << 16];
        int64_t left = d.size;
        while (left > 0) {
            ssize_t n = ::read(fd.get(), buf, static_cast<size_t>(std::min<int64_t>(left, sizeof buf)));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw Error(EIO, "blob " + d.digest + " is shorter than its descriptor's size");
            if (archive_write_data(a_.get(), buf, static_cast<size_t>(n)) < 0) fail("write " + name);
            left -= n;
        }
    }
    void close() {
        if (archive_write_close(a_.get()) != ARCHIVE_OK) fail("close");
    }

private:
    void header(const std::string& name, int64_t size, unsigned type) {
        std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
        archive_entry_set_pathname(e.get(), name.c_str());
        archive_entry_set_filetype(e.get(), type);
        archive_entry_set_perm(e.get(), type == AE_IFDIR ? 0755 : 0644);
        archive_entry_set_size(e.get(), size);
        archive_entry_set_mtime(e.get(), 0, 0);
        if (archive_write_header(a_.get(), e.get()) != ARCHIVE_OK) fail("write header of " + name);
    }
    [[noreturn]] void fail(const std::string& what) {
        const char* msg = archive_error_string(a_.get());
        throw Error("save to " + path_ + ": " + what + ": " + (msg ? msg : "libarchive error"));
    }
    std::string path_;
    std::unique_ptr<archive, WriterFree> a_;
};

void write_oci(const Store& store, const StoredImage& img, const std::string& name, TarWriter& tar) {
    tar.add_bytes("oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    Descriptor m = img.descriptor;
    m.annotations["org.opencontainers.image.ref.name"] = name;
    json index = {{"schemaVersion", 2},
                  {"mediaType", "application/vnd.oci.image.index.v1+json"},
                  {"manifests", json::array({to_json(m)})}};
    tar.add_bytes("index.json", index.dump());
    tar.add_dir("blobs/");
    tar.add_dir("blobs/sha256/");
    tar.add_blob(store, "blobs/sha256/" + hex_of(img.descriptor.digest), img.descriptor);
    tar.add_blob(store, "blobs/sha256/" + hex_of(img.manifest.config.digest), img.manifest.config);
    for (const auto& l : img.manifest.layers) tar.add_blob(store, "blobs/sha256/" + hex_of(l.digest), l);
}

void write_docker(const Store& store, const StoredImage& img, const std::string& name, TarWriter& tar) {
    const std::string config = hex_of(img.manifest.config.digest) + ".json";
    tar.add_blob(store, config, img.manifest.config);
    json layers = json::array();
    for (const auto& l : img.manifest.layers) {
        // As stored (gzip or plain): docker load and vitro load detect which.
        std::string file = hex_of(l.digest) + "/layer.tar";
        tar.add_dir(hex_of(l.digest) + "/");
        tar.add_blob(store, file, l);
        layers.push_back(file);
    }
    json manifest = json::array({{{"Config", config}, {"RepoTags", json::array({name})}, {"Layers", layers}}});
    tar.add_bytes("manifest.json", manifest.dump());
}

}  // namespace

ArchiveFormat parse_archive_format(const std::string& name) {
    if (name == "oci-archive") return ArchiveFormat::OciArchive;
    if (name == "docker-archive") return ArchiveFormat::DockerArchive;
    throw Error(EINVAL, "--format \"" + name + "\": use oci-archive or docker-archive");
}

void save_image(const Store& store, const std::string& name, const std::string& path, ArchiveFormat format) {
    StoredImage img = load_image(store, name);
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    try {
        TarWriter tar(tmp);
        if (format == ArchiveFormat::OciArchive) write_oci(store, img, name, tar);
        else write_docker(store, img, name, tar);
        tar.close();
        if (::rename(tmp.c_str(), path.c_str()) < 0) throw_errno("rename", path);
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
}

}  // namespace vitro::image
