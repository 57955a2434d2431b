// image/ import: an OCI layout and a docker-save archive built in-test (and
// one written by skopeo when it is installed), then their layers unpacked.
// A corrupt input is rejected with the store unchanged.
#include <gtest/gtest.h>

#include <cstdlib>

#include "image/digest.hpp"
#include "image/import.hpp"
#include "image/store.hpp"
#include "image/unpack.hpp"
#include "image_testutil.hpp"
#include "util/file.hpp"

using namespace vitro;
using namespace vitro::image;
using namespace image_test;
using nlohmann::json;

namespace {

struct Layer {
    std::string blob, diff_id;
};

Layer make_layer(const std::vector<Entry>& entries, Compression c) {
    return {make_tar(entries, c), sha256_digest(make_tar(entries))};
}

json config_for(const std::vector<Layer>& layers) {
    json ids = json::array();
    for (auto& l : layers) ids.push_back(l.diff_id);
    return {{"architecture", "amd64"},
            {"os", "linux"},
            {"config", {{"Cmd", {"/bin/sh"}}, {"Env", {"PATH=/bin"}}}},
            {"rootfs", {{"type", "layers"}, {"diff_ids", ids}}}};
}

// Writes an OCI layout at dir with one image tagged `ref`; returns the manifest digest.
std::string write_oci_layout(const std::string& dir, const std::string& ref, const std::vector<Layer>& layers,
                             bool wrap_in_index = false) {
    fs::create_directories(dir + "/blobs/sha256");
    auto put = [&](const std::string& data) {
        std::string d = sha256_digest(data);
        put_file(dir + "/blobs/sha256/" + d.substr(7), data);
        return d;
    };
    std::string cfg = config_for(layers).dump();
    json m = {{"schemaVersion", 2},
              {"mediaType", media::kOciManifest},
              {"config", {{"mediaType", media::kOciConfig}, {"digest", put(cfg)}, {"size", cfg.size()}}},
              {"layers", json::array()}};
    for (auto& l : layers)
        m["layers"].push_back({{"mediaType", l.blob.substr(0, 2) == "\x1f\x8b" ? media::kOciLayerGzip : media::kOciLayer},
                               {"digest", put(l.blob)},
                               {"size", l.blob.size()}});
    std::string mtext = m.dump();
    std::string mdigest = put(mtext);
    json top = {{"mediaType", media::kOciManifest}, {"digest", mdigest}, {"size", mtext.size()}};
    if (wrap_in_index) {
        json other = top;
        other["digest"] = sha256_digest("not-there");  // arm64: must never be fetched
        other["platform"] = {{"os", "linux"}, {"architecture", "arm64"}};
        top["platform"] = {{"os", "linux"}, {"architecture", "amd64"}};
        std::string itext = json{{"schemaVersion", 2}, {"mediaType", media::kOciIndex}, {"manifests", {other, top}}}.dump();
        top = {{"mediaType", media::kOciIndex}, {"digest", put(itext)}, {"size", itext.size()}};
    }
    top["annotations"] = {{"org.opencontainers.image.ref.name", ref}};
    put_file(dir + "/index.json", json{{"schemaVersion", 2}, {"manifests", {top}}}.dump());
    put_file(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    return mdigest;
}

std::vector<Layer> sample_layers() {
    return {make_layer({{.path = "bin/", .type = AE_IFDIR, .mode = 0755},
                        {.path = "bin/sh", .data = "#!fake", .mode = 0755},
                        {.path = "etc/passwd", .data = "root:x:0:0::/:/bin/sh\n"},
                        {.path = "opt/old", .data = "o"}},
                       Compression::gzip),
            make_layer({{.path = "etc/.wh.passwd", .data = ""}, {.path = "opt/.wh..wh..opq", .data = ""}},
                       Compression::none)};
}

// Unpacks every layer of a stored image; returns the rootfs paths in order.
std::vector<std::string> unpack_image(const Store& s, const std::string& name) {
    StoredImage img = load_image(s, name);
    EXPECT_EQ(img.config.cmd, std::vector<std::string>{"/bin/sh"});
    std::vector<std::string> out;
    for (size_t i = 0; i < img.manifest.layers.size(); ++i)
        out.push_back(ensure_layer(s, img.manifest.layers[i].digest, img.config.diff_ids[i]));
    return out;
}

void expect_sample_unpacked(const std::vector<std::string>& roots) {
    ASSERT_EQ(roots.size(), 2u);
    EXPECT_EQ(slurp(roots[0] + "/bin/sh"), "#!fake");
    struct stat st;
    ASSERT_EQ(::lstat((roots[1] + "/etc/passwd").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
}

}  // namespace

TEST(ImageImport, OciLayout) {
    ImageTempDir t;
    auto layers = sample_layers();
    std::string mdigest = write_oci_layout(t.path + "/src", "v1", layers);
    Store s(t.path + "/store");
    ImportedImage img = import_oci_layout(s, t.path + "/src", "v1", "localhost/sample:v1");
    EXPECT_EQ(img.manifest.digest, mdigest);
    EXPECT_EQ(s.resolve("localhost/sample:v1")->digest, mdigest);
    for (auto& l : layers) EXPECT_TRUE(s.has_blob(sha256_digest(l.blob)));
    expect_sample_unpacked(unpack_image(s, "localhost/sample:v1"));
    EXPECT_NE(error_of([&] { import_oci_layout(s, t.path + "/src", "v2"); }).find("no image tagged \"v2\""),
              std::string::npos);
}

TEST(ImageImport, OciLayoutIndexPicksAmd64) {
    ImageTempDir t;
    std::string mdigest = write_oci_layout(t.path + "/src", "latest", sample_layers(), true);
    Store s(t.path + "/store");
    ImportedImage img = import_oci_layout(s, t.path + "/src", "", "multi:latest");
    EXPECT_EQ(img.manifest.digest, mdigest);
    expect_sample_unpacked(unpack_image(s, "multi:latest"));
}

TEST(ImageImport, OciLayoutCorruptBlobLeavesStoreUnchanged) {
    ImageTempDir t;
    auto layers = sample_layers();
    write_oci_layout(t.path + "/src", "v1", layers);
    // Flip a byte of the second layer's blob.
    std::string p = t.path + "/src/blobs/sha256/" + sha256_digest(layers[1].blob).substr(7);
    std::string data = slurp(p);
    data[100] ^= 1;
    put_file(p, data);
    Store s(t.path + "/store");
    auto before = list_tree(t.path + "/store");
    std::string err = error_of([&] { import_oci_layout(s, t.path + "/src", "v1"); });
    EXPECT_NE(err.find("digest mismatch"), std::string::npos) << err;
    EXPECT_EQ(list_tree(t.path + "/store"), before);
    EXPECT_TRUE(s.tags().empty());
}

namespace {
// A docker-save tarball: manifest.json, <hex>.json config, layers as
// <hex>/layer.tar, plus a symlinked duplicate as newer docker writes them.
std::string make_docker_archive(const std::vector<Layer>& layers, const std::vector<std::string>& tags,
                                std::string config = {}) {
    if (config.empty()) config = config_for(layers).dump();
    std::string chex = sha256_digest(config).substr(7);
    std::vector<Entry> entries = {{.path = chex + ".json", .data = config}};
    json m = {{"Config", chex + ".json"}, {"RepoTags", tags}, {"Layers", json::array()}};
    for (size_t i = 0; i < layers.size(); ++i) {
        std::string dir = "layer" + std::to_string(i);
        entries.push_back({.path = dir + "/", .type = AE_IFDIR, .mode = 0755});
        if (i == 1) {  // stored elsewhere, reached through a symlink
            entries.push_back({.path = "blobs/sha256/l1", .data = layers[i].blob});
            entries.push_back({.path = dir + "/layer.tar", .type = AE_IFLNK, .link = "../blobs/sha256/l1"});
        } else {
            entries.push_back({.path = dir + "/layer.tar", .data = layers[i].blob});
        }
        m["Layers"].push_back(dir + "/layer.tar");
    }
    entries.push_back({.path = "manifest.json", .data = json::array({m}).dump()});
    return make_tar(entries);
}
}  // namespace

TEST(ImageImport, DockerArchive) {
    ImageTempDir t;
    auto layers = sample_layers();
    put_file(t.path + "/image.tar", make_docker_archive(layers, {"busybox:latest", "busybox:1.35"}));
    Store s(t.path + "/store");
    auto imgs = import_docker_archive(s, t.path + "/image.tar");
    ASSERT_EQ(imgs.size(), 1u);
    EXPECT_EQ(imgs[0].name, "busybox:latest");
    EXPECT_EQ(s.resolve("busybox:1.35")->digest, imgs[0].manifest.digest);
    Manifest m = parse_manifest(s.read_blob(imgs[0].manifest.digest));
    EXPECT_EQ(m.media_type, media::kOciManifest);
    ASSERT_EQ(m.layers.size(), 2u);
    EXPECT_EQ(m.layers[0].media_type, media::kOciLayerGzip);
    EXPECT_EQ(m.layers[1].media_type, media::kOciLayer);
    expect_sample_unpacked(unpack_image(s, "busybox:latest"));
}

TEST(ImageImport, DockerArchiveDiffIdMismatchLeavesStoreUnchanged) {
    ImageTempDir t;
    auto layers = sample_layers();
    json cfg = config_for(layers);
    cfg["rootfs"]["diff_ids"][0] = sha256_digest("something else");
    put_file(t.path + "/bad.tar", make_docker_archive(layers, {"bad:1"}, cfg.dump()));
    Store s(t.path + "/store");
    auto before = list_tree(t.path + "/store");
    std::string err = error_of([&] { import_docker_archive(s, t.path + "/bad.tar"); });
    EXPECT_NE(err.find("the image config says"), std::string::npos) << err;
    EXPECT_EQ(list_tree(t.path + "/store"), before);
    EXPECT_TRUE(s.tags().empty());

    put_file(t.path + "/none.tar", make_tar({{.path = "x", .data = "y"}}));
    EXPECT_NE(error_of([&] { import_docker_archive(s, t.path + "/none.tar"); }).find("no manifest.json"),
              std::string::npos);
    put_file(t.path + "/badjson.tar", make_tar({{.path = "manifest.json", .data = R"([{"Config": 3}])"}}));
    EXPECT_NE(error_of([&] { import_docker_archive(s, t.path + "/badjson.tar"); }).find("field [0].Config"),
              std::string::npos);
}

// Its tags are all or nothing: one that cannot be recorded, and the tags
// before it are not left pointing at blobs the failed import removed.
TEST(ImageImport, DockerArchiveBadTagLeavesStoreUnchanged) {
    ImageTempDir t;
    put_file(t.path + "/image.tar", make_docker_archive(sample_layers(), {"busybox:1", ""}));
    Store s(t.path + "/store");
    auto before = list_tree(t.path + "/store");
    std::string err = error_of([&] { import_docker_archive(s, t.path + "/image.tar"); });
    EXPECT_NE(err.find("empty image name"), std::string::npos) << err;
    EXPECT_TRUE(s.tags().empty());
    EXPECT_EQ(list_tree(t.path + "/store"), before);
}

TEST(ImageImport, DockerArchiveFromSkopeo) {
    if (std::system("command -v skopeo >/dev/null 2>&1") != 0) GTEST_SKIP() << "skopeo not installed";
    ImageTempDir t;
    std::string mdigest = write_oci_layout(t.path + "/src", "v1", sample_layers());
    std::string cmd = "skopeo --insecure-policy copy -q oci:" + t.path + "/src:v1 docker-archive:" + t.path +
                      "/out.tar:example/img:v1 >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    Store s(t.path + "/store");
    auto imgs = import_docker_archive(s, t.path + "/out.tar");
    ASSERT_EQ(imgs.size(), 1u);
    EXPECT_TRUE(s.resolve("example/img:v1") || s.resolve("docker.io/example/img:v1"));
    expect_sample_unpacked(unpack_image(s, imgs[0].name));
}

TEST(ImageImport, OciArchive) {
    ImageTempDir t;
    std::string mdigest = write_oci_layout(t.path + "/src", "v1", sample_layers());
    // Tar the layout up (gzip, as `podman save --format oci-archive | gzip` would).
    std::vector<Entry> entries;
    for (auto& p : list_tree(t.path + "/src"))
        if (fs::is_regular_file(t.path + "/src/" + p)) entries.push_back({.path = p, .data = slurp(t.path + "/src/" + p)});
    put_file(t.path + "/img.tar.gz", make_tar(entries, Compression::gzip));
    Store s(t.path + "/store");
    ImportedImage img = import_oci_archive(s, t.path + "/img.tar.gz", "v1", "arch:v1");
    EXPECT_EQ(img.manifest.digest, mdigest);
    expect_sample_unpacked(unpack_image(s, "arch:v1"));
    EXPECT_TRUE(list_tree(s.tmp_dir()).empty());
    // A hostile archive fails cleanly.
    put_file(t.path + "/evil.tar", make_tar({{.path = "../../evil", .data = "x"}}));
    EXPECT_NE(error_of([&] { import_oci_archive(s, t.path + "/evil.tar", "v1"); }).find("\"..\""), std::string::npos);
    EXPECT_TRUE(list_tree(s.tmp_dir()).empty());
    EXPECT_NE(error_of([&] { load_image(s, "nope:1"); }).find("not in the store"), std::string::npos);
}

// Names from an index entry, as podman and containerd read them.
TEST(ImageImport, OciIndexName) {
    const std::string ref(kRefNameAnnotation), ctrd(kContainerdImageNameAnnotation);
    // ctr images export / BuildKit: the containerd annotation wins over the bare tag.
    EXPECT_EQ(oci_index_name({{ref, "1"}, {ctrd, "localhost/team/app:1"}}), "localhost/team/app:1");
    EXPECT_EQ(oci_index_name({{ref, "1.36"}, {ctrd, "docker.io/library/busybox:1.36"}}), "docker.io/library/busybox:1.36");
    // skopeo / podman save: a full reference in ref.name.
    EXPECT_EQ(oci_index_name({{ref, "localhost/team/app:1"}}), "localhost/team/app:1");
    EXPECT_EQ(oci_index_name({{ref, "team/app"}}), "localhost/team/app:latest");
    EXPECT_EQ(oci_index_name({{ref, "quay.io/x/y:2"}}), "quay.io/x/y:2");
    // A bare tag: a repository name to podman.
    EXPECT_EQ(oci_index_name({{ref, "1"}}), "localhost/1:latest");
    EXPECT_EQ(oci_index_name({}), "");
    EXPECT_EQ(oci_index_name({{"org.example", "x"}}), "");
    std::string err = error_of([&] { oci_index_name({{ref, "Not A Name"}}); });
    EXPECT_NE(err.find(ref), std::string::npos) << err;
    EXPECT_NE(err.find("--name"), std::string::npos) << err;
}

namespace {
// Rewrites a layout's index.json: its one entry repeated once per annotation set.
void set_index_entries(const std::string& dir, const std::vector<json>& annotations) {
    json idx = json::parse(slurp(dir + "/index.json"));
    json entry = idx["manifests"][0];
    idx["manifests"] = json::array();
    for (const auto& a : annotations) {
        entry["annotations"] = a;
        if (a.empty()) entry.erase("annotations");
        idx["manifests"].push_back(entry);
    }
    put_file(dir + "/index.json", idx.dump());
}
}  // namespace

// `vitro load` of a layout: every named entry (ctr exports several images in
// one archive), all or nothing.
TEST(ImageImport, LoadOciLayoutNamesEveryEntry) {
    ImageTempDir t;
    const std::string dir = t.path + "/src";
    std::string mdigest = write_oci_layout(dir, "x", sample_layers());
    set_index_entries(dir, {{{"io.containerd.image.name", "localhost/team/app:1"}, {"org.opencontainers.image.ref.name", "1"}},
                            {{"io.containerd.image.name", "docker.io/library/busybox:1.36"},
                             {"org.opencontainers.image.ref.name", "1.36"}},
                            json::object()});
    Store s(t.path + "/store");
    auto got = load_oci_layout(s, dir);
    ASSERT_EQ(got.size(), 2u);  // the unnamed third entry is skipped
    EXPECT_EQ(got[0].name, "localhost/team/app:1");
    EXPECT_EQ(got[1].name, "docker.io/library/busybox:1.36");
    EXPECT_EQ(s.resolve("localhost/team/app:1")->digest, mdigest);
    EXPECT_EQ(s.resolve("docker.io/library/busybox:1.36")->digest, mdigest);
    EXPECT_EQ(s.tags().size(), 2u);
    // --name needs a single image.
    Store s2(t.path + "/store2");
    EXPECT_NE(error_of([&] { load_oci_layout(s2, dir, "mine:1"); }).find("3 images"), std::string::npos);
    // Nothing named: an error pointing at --name, and nothing stored.
    set_index_entries(dir, {json::object()});
    std::string err = error_of([&] { load_oci_layout(s2, dir); });
    EXPECT_NE(err.find("--name"), std::string::npos) << err;
    EXPECT_TRUE(s2.tags().empty());
    EXPECT_EQ(load_oci_layout(s2, dir, "mine:1").at(0).name, "mine:1");
    // One bad name fails the whole load: no tag, no blob of it.
    Store s3(t.path + "/store3");
    auto before = list_tree(t.path + "/store3");
    set_index_entries(dir, {{{"org.opencontainers.image.ref.name", "localhost/ok:1"}},
                            {{"org.opencontainers.image.ref.name", "Bad Name"}}});
    EXPECT_NE(error_of([&] { load_oci_layout(s3, dir); }).find("Bad Name"), std::string::npos);
    EXPECT_EQ(list_tree(t.path + "/store3"), before);
}

namespace {
// The regular files of the layout at dir as tar entries, `replace` put in
// place of (or after) the entry of the same path.
std::vector<Entry> layout_entries(const std::string& dir, const Entry& replace) {
    std::vector<Entry> out;
    for (auto& p : list_tree(dir))
        if (fs::is_regular_file(dir + "/" + p))
            out.push_back(p == replace.path ? replace : Entry{.path = p, .data = slurp(dir + "/" + p)});
    return out;
}
}  // namespace

// An oci-archive is hostile: the symlinks and FIFOs its extraction makes are
// never followed out of the layout nor read, and the load fails naming the
// entry, with nothing stored.
TEST(ImageImport, LoadOciArchiveRefusesLinksAndFifos) {
    ImageTempDir t;
    auto layers = sample_layers();
    const std::string dir = t.path + "/src";
    write_oci_layout(dir, "localhost/evil:1", layers);
    Store s(t.path + "/store");
    auto before = list_tree(t.path + "/store");
    auto expect_refused = [&](const std::vector<Entry>& entries, const std::string& needle) {
        put_file(t.path + "/evil.tar", make_tar(entries));
        std::string err = error_of([&] { load_images(s, t.path + "/evil.tar"); });
        EXPECT_NE(err.find(needle), std::string::npos) << err;
        EXPECT_EQ(list_tree(t.path + "/store"), before);
        EXPECT_TRUE(s.tags().empty());
    };
    // A blob that links to a host file holding the very bytes its digest names.
    const std::string layer = "blobs/sha256/" + sha256_digest(layers[0].blob).substr(7);
    put_file(t.path + "/host-file", layers[0].blob);
    expect_refused(layout_entries(dir, {.path = layer, .type = AE_IFLNK, .link = t.path + "/host-file"}),
                   layer + ": a symbolic link, not a regular file");
    // blobs/ a link to a host directory of the same blobs: resolved inside the layout, where it is not.
    std::vector<Entry> linked_dir = {{.path = "blobs", .type = AE_IFLNK, .link = dir + "/blobs"}};
    for (auto& e : layout_entries(dir, {}))
        if (e.path.rfind("blobs/", 0) != 0) linked_dir.push_back(e);
    expect_refused(linked_dir, "open blobs/sha256/");
    // index.json a FIFO (after a regular one, which the extraction replaces): no hang.
    auto fifo = layout_entries(dir, {});
    fifo.push_back({.path = "index.json", .type = AE_IFIFO});
    expect_refused(fifo, "index.json: a FIFO, not a regular file");
}
