#include "image/pull.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <exception>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "image/digest.hpp"
#include "image/fsutil.hpp"
#include "image/layer_stream.hpp"
#include "image/reference.hpp"
#include "image/store.hpp"
#include "image/unpack.hpp"
#include "util/error.hpp"

namespace vitro::image {

namespace {

std::string short_hex(const std::string& digest) {
    return digest.size() > 7 ? digest.substr(7, 12) : digest;
}

void report(const ProgressFn& fn, ProgressEvent e) {
    if (fn) fn(e);
}
void message(const ProgressFn& fn, std::string text) { report(fn, {ProgressEvent::Kind::Message, std::move(text), {}, false}); }

// What a failed pull added: removed again unless commit() is called.
class Rollback {
public:
    explicit Rollback(const Store& s) : store_(s) {}
    Rollback(const Rollback&) = delete;
    Rollback& operator=(const Rollback&) = delete;
    ~Rollback() {
        if (committed_) return;
        for (auto& dir : layers_) {
            try {
                remove_tree(dir);
            } catch (...) {
                // A destructor must not throw: a layer that cannot be removed is left behind
            }
        }
        for (auto& d : blobs_) ::unlink(store_.blob_path(d).c_str());
    }
    void blob(const std::string& digest) {
        std::lock_guard lk(mu_);
        blobs_.push_back(digest);
    }
    void layer(const std::string& diff_id) {
        std::lock_guard lk(mu_);
        layers_.push_back(store_.layers_dir() + "/" + digest_hex(diff_id));
    }
    void commit() { committed_ = true; }

private:
    const Store& store_;
    std::mutex mu_;
    std::vector<std::string> blobs_, layers_;
    bool committed_ = false;
};

RegistryOptions with_credentials(RegistryOptions o, const std::string& registry, const std::string& authfile) {
    if (!o.credentials) o.credentials = find_credentials(registry, authfile);
    return o;
}

// "oci:/dir:tag" -> {"/dir", "tag"}: the tag is after the last ':' past the last '/'.
std::pair<std::string, std::string> split_path_tag(const std::string& s) {
    size_t slash = s.rfind('/');
    size_t colon = s.rfind(':');
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash))
        return {s.substr(0, colon), s.substr(colon + 1)};
    return {s, {}};
}

// The store name of an image from a layout: the tag when it is a full name,
// else localhost/<directory or file name>:<tag or latest>, as podman does.
std::string local_name_for(const std::string& path, const std::string& tag) {
    if (tag.find('/') != std::string::npos) return normalize_local_name(tag);
    std::string base = path;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    base = base.substr(base.rfind('/') == std::string::npos ? 0 : base.rfind('/') + 1);
    if (size_t dot = base.find('.'); dot != std::string::npos && dot > 0) base = base.substr(0, dot);
    std::string repo;
    for (char c : base)
        repo += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : '-';
    if (repo.empty()) repo = "image";
    return "localhost/" + repo + ":" + (tag.empty() ? "latest" : tag);
}

ImportedImage pull_transport(const Store& store, const std::string& ref) {
    if (ref.rfind("oci:", 0) == 0) {
        auto [dir, tag] = split_path_tag(ref.substr(4));
        return import_oci_layout(store, dir, tag, local_name_for(dir, tag));
    }
    if (ref.rfind("oci-archive:", 0) == 0) {
        auto [path, tag] = split_path_tag(ref.substr(12));
        return import_oci_archive(store, path, tag, local_name_for(path, tag));
    }
    std::string path = ref.substr(std::string_view("docker-archive:").size());
    auto images = import_docker_archive(store, path);
    if (images.empty()) throw Error(ENOENT, "docker-archive " + path + ": holds no image");
    if (images.front().name.empty()) {  // untagged: name it after the file
        ImportedImage img{local_name_for(path, {}), images.front().manifest};
        store.tag(img.name, img.manifest);
        return img;
    }
    return images.front();
}

// Fetches the manifest `ref` names, narrowed to linux/amd64 when it is an index.
FetchedManifest fetch_image_manifest(RegistryClient& client, const Reference& r) {
    FetchedManifest m = client.get_manifest(r.repository, r.tag_or_digest());
    if (is_index_media_type(m.media_type)) {
        Index idx = parse_index(m.body, "image index " + r.str());
        const Descriptor& d = select_platform(idx);
        m = client.get_manifest(r.repository, d.digest);
        if (!is_manifest_media_type(m.media_type))
            throw Error(EINVAL, "image index " + r.str() + ": entry " + d.digest + " is not an image manifest");
    }
    return m;
}

// A layer download that unpacks as the bytes arrive.
class UnpackingConsumer : public BlobConsumer {
public:
    explicit UnpackingConsumer(LayerStream& stream) : stream_(stream) {}
    void begin() override { stream_.restart(); }
    void consume(const char* data, size_t len) override { stream_.write(data, len); }
    void finish() override { stream_.finish(); }

private:
    LayerStream& stream_;
};

struct LayerJob {
    Descriptor blob;
    std::string diff_id;
};

// One layer: downloaded and unpacked in one pass when both are needed, else
// whichever is (a blob already stored, as a pull that was stopped leaves
// them, is unpacked from the store). Returns false when the blob was there.
bool fetch_layer(const Store& store, RegistryClient& client, const std::string& repo, const LayerJob& job,
                 bool unpack, Rollback& rollback) {
    const bool have_blob = store.has_blob(job.blob.digest);
    const bool need_layer = unpack && !layer_ready(store, job.diff_id);
    if (!have_blob && need_layer) {
        LayerStream stream(store, job.blob.digest, job.diff_id);
        UnpackingConsumer consumer(stream);
        if (client.fetch_blob(store, repo, job.blob, &consumer)) rollback.blob(job.blob.digest);
        stream.publish();
        rollback.layer(job.diff_id);
        return true;
    }
    if (!have_blob && client.fetch_blob(store, repo, job.blob)) rollback.blob(job.blob.digest);
    if (need_layer) {
        ensure_layer(store, job.blob.digest, job.diff_id);
        rollback.layer(job.diff_id);
    }
    return !have_blob;
}

// Downloads (and unpacks) the layers with `jobs` workers, one connection each.
void fetch_layers(const Store& store, RegistryClient& client, const Reference& r, const Manifest& m,
                  const ImageConfig& cfg, const PullOptions& opts, Rollback& rollback) {
    std::vector<LayerJob> jobs;
    std::set<std::string> seen;
    for (size_t i = 0; i < m.layers.size(); ++i)
        if (seen.insert(m.layers[i].digest).second) jobs.push_back({m.layers[i], cfg.diff_ids[i]});

    std::atomic<size_t> next{0};
    std::atomic<bool> cancel{false};
    std::mutex err_mu;
    std::exception_ptr first_error;
    auto work = [&](RegistryClient c) {
        c.set_cancel_flag(&cancel);
        try {
            for (size_t i; !cancel && (i = next++) < jobs.size();) {
                const LayerJob& j = jobs[i];
                bool skipped = !fetch_layer(store, c, r.repository, j, opts.unpack, rollback);
                report(opts.progress, {ProgressEvent::Kind::Blob, {}, j.blob.digest, skipped});
            }
        } catch (...) {
            std::lock_guard lk(err_mu);
            if (!first_error) first_error = std::current_exception();
            cancel = true;
        }
    };
    size_t n = std::min<size_t>(jobs.size(), static_cast<size_t>(std::max(1, opts.jobs)));
    {
        std::vector<std::jthread> workers;
        for (size_t i = 1; i < n; ++i) workers.emplace_back(work, client.fork());
        if (n > 0) work(client.fork());
    }  // joined
    if (first_error) std::rethrow_exception(first_error);
}

ImportedImage pull_registry(const Store& store, const std::string& text, const PullOptions& opts) {
    Reference r = parse_reference(text);
    try {
        RegistryClient client(r.registry, with_credentials(opts.registry, r.registry, opts.authfile));
        message(opts.progress, "Trying to pull " + r.str() + "...");
        FetchedManifest fm = fetch_image_manifest(client, r);
        Manifest m = parse_manifest(fm.body, "image manifest " + fm.digest);
        for (auto& l : m.layers) {
            if (l.media_type == media::kDockerLayerForeign)
                throw Error(ENOTSUP, "layer " + l.digest + ": foreign (non-distributable) layers are not supported");
            if (!is_layer_media_type(l.media_type))
                throw Error(EINVAL, "layer " + l.digest + ": unsupported media type \"" + l.media_type + "\"");
        }
        message(opts.progress, "Getting image source signatures");

        Rollback rollback(store);
        bool config_skipped = store.has_blob(m.config.digest);
        if (!config_skipped && client.fetch_blob(store, r.repository, m.config)) rollback.blob(m.config.digest);
        ImageConfig cfg = parse_config(store.read_blob(m.config.digest), "image config " + m.config.digest);
        if (cfg.diff_ids.size() != m.layers.size())
            throw Error(EINVAL, "image config " + m.config.digest + ": " + std::to_string(cfg.diff_ids.size()) +
                                    " diff_ids for " + std::to_string(m.layers.size()) + " layers");
        fetch_layers(store, client, r, m, cfg, opts, rollback);
        report(opts.progress, {ProgressEvent::Kind::Config, {}, m.config.digest, config_skipped});

        BlobWriter w = store.begin_blob();
        w.write(fm.body);
        bool added = false;
        w.commit(fm.digest, static_cast<int64_t>(fm.body.size()), &added);
        if (added) rollback.blob(fm.digest);
        report(opts.progress, {ProgressEvent::Kind::Manifest, {}, fm.digest, false});

        Descriptor desc{fm.media_type, fm.digest, static_cast<int64_t>(fm.body.size()), {}, {}};
        store.tag(r.str(), desc);
        rollback.commit();
        return {r.str(), desc};
    } catch (const Error& e) {
        throw e.wrap("pulling " + r.str());
    }
}

// The stored image a push names: as given, with ":latest", or normalized.
StoredImage find_local(const Store& store, const std::string& name) {
    std::vector<std::string> candidates{name, normalize_local_name(name)};
    try {
        candidates.push_back(parse_reference(name).str());
    } catch (const Error&) {
        // Not a valid reference: only the names above are tried
    }
    for (auto& c : candidates)
        if (store.resolve(c)) return load_image(store, c);
    throw Error(ENOENT, "image " + name + ": not in the store");
}

}  // namespace

ProgressFn progress_printer(FILE* out) {
    auto mu = std::make_shared<std::mutex>();
    return [out, mu](const ProgressEvent& e) {
        std::lock_guard lk(*mu);
        switch (e.kind) {
            case ProgressEvent::Kind::Message:
                std::fprintf(out, "%s\n", e.text.c_str());
                break;
            case ProgressEvent::Kind::Blob:
                std::fprintf(out, "Copying blob %s %s\n", short_hex(e.digest).c_str(),
                             e.skipped ? "skipped: already exists" : "done");
                break;
            case ProgressEvent::Kind::Config:
                std::fprintf(out, "Copying config %s done\n", short_hex(e.digest).c_str());
                break;
            case ProgressEvent::Kind::Manifest:
                std::fprintf(out, "Writing manifest to image destination\n");
                break;
        }
        std::fflush(out);
    };
}

ImportedImage pull(const Store& store, const std::string& ref, const PullOptions& opts) {
    store.remove_orphan_temps();  // what an earlier, killed pull or load left
    for (const char* t : {"oci:", "oci-archive:", "docker-archive:"})
        if (ref.rfind(t, 0) == 0) return pull_transport(store, ref);
    std::string r = ref.rfind("docker://", 0) == 0 ? ref.substr(9) : ref;
    return pull_registry(store, r, opts);
}

PushResult push(const Store& store, const std::string& local_name, const std::string& dest_ref,
                const PushOptions& opts) {
    std::string dest_text = dest_ref.empty() ? local_name : dest_ref;
    if (dest_text.rfind("docker://", 0) == 0) dest_text = dest_text.substr(9);
    Reference dst = parse_reference(dest_text);
    try {
        StoredImage img = find_local(store, local_name);
        RegistryClient client(dst.registry, with_credentials(opts.registry, dst.registry, opts.authfile));
        message(opts.progress, "Getting image source signatures");
        std::set<std::string> seen;
        for (auto& l : img.manifest.layers) {
            if (!seen.insert(l.digest).second) continue;
            bool uploaded = client.push_blob(store, dst.repository, l);
            report(opts.progress, {ProgressEvent::Kind::Blob, {}, l.digest, !uploaded});
        }
        client.push_blob(store, dst.repository, img.manifest.config);
        report(opts.progress, {ProgressEvent::Kind::Config, {}, img.manifest.config.digest, false});
        std::string body = store.read_blob(img.descriptor.digest);
        std::string mt = !img.descriptor.media_type.empty() ? img.descriptor.media_type
                         : !img.manifest.media_type.empty() ? img.manifest.media_type
                                                             : std::string(media::kOciManifest);
        report(opts.progress, {ProgressEvent::Kind::Manifest, {}, img.descriptor.digest, false});
        std::string digest = client.put_manifest(dst.repository, dst.tag_or_digest(), mt, body);
        return {dst.str(), digest};
    } catch (const Error& e) {
        throw e.wrap("pushing " + local_name + " to " + dst.str());
    }
}

}  // namespace vitro::image
