// Image commands: load, save, images, rmi, tag.
#include <cstdio>

#include "cmd/vitro/common.hpp"
#include "image/export.hpp"
#include "image/import.hpp"
#include "image/reference.hpp"
#include "image/store.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace vitro::cli {

namespace {
using nlohmann::json;

std::string short_digest(const std::string& d) {
    auto colon = d.find(':');
    return d.substr(colon == std::string::npos ? 0 : colon + 1, 12);
}


// "name:tag" -> repository and tag columns.
std::pair<std::string, std::string> split_tag(const std::string& name) {
    auto slash = name.rfind('/');
    auto colon = name.rfind(':');
    if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) return {name, "<none>"};
    return {name.substr(0, colon), name.substr(colon + 1)};
}
}  // namespace

void add_image_commands(CLI::App& app, Globals& g) {
    struct LoadFlags {
        std::string input, name;
        bool quiet = false;
    };
    auto lf = std::make_shared<LoadFlags>();
    auto* load = app.add_subcommand("load", "import images from a docker-archive, oci-archive or OCI layout");
    load->add_option("-i,--input", lf->input, "tarball (docker save / oci-archive) or OCI layout directory")->required();
    load->add_option("--name", lf->name, "tag the image with this name instead of the archive's");
    load->add_flag("-q,--quiet", lf->quiet, "print nothing but errors");
    load->callback([&g, lf] {
        image::Store store(g.root);
        auto got = image::load_images(store, lf->input, lf->name);
        if (!lf->quiet)
            for (const auto& i : got) std::printf("Loaded image: %s\n", i.name.c_str());
    });

    struct ImagesFlags {
        bool quiet = false;
        std::string format = "table";
    };
    auto imf = std::make_shared<ImagesFlags>();
    auto* images = app.add_subcommand("images", "list images in local storage");
    images->add_flag("-q,--quiet", imf->quiet, "only image IDs");
    images->add_option("--format", imf->format, "table, json, or a {{.Field}} template");
    images->callback([&g, imf] {
        image::Store store(g.root);
        json rows = json::array();
        for (const auto& t : store.tags()) {
            int64_t size = t.manifest.size;
            std::string config_digest;
            std::string created;
            try {
                auto img = image::load_image(store, t.name);
                config_digest = img.manifest.config.digest;
                size += img.manifest.config.size;
                for (const auto& l : img.manifest.layers) size += l.size;
                created = img.config.raw.value("created", "");
            } catch (const Error&) {
            }
            auto [repo, tag] = split_tag(t.name);
            rows.push_back({{"Id", config_digest},
                            {"Names", json::array({t.name})},
                            {"Repository", repo},
                            {"Tag", tag},
                            {"Digest", t.manifest.digest},
                            {"Created", created},
                            {"Size", size}});
        }
        if (imf->quiet) {
            for (const auto& r : rows) std::printf("%s\n", short_digest(r["Id"].get<std::string>()).c_str());
        } else if (imf->format == "json") {
            std::printf("%s\n", rows.dump(4).c_str());
        } else if (imf->format == "table") {
            std::printf("%-40s  %-12s  %-12s  %-22s  %s\n", "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE");
            for (const auto& r : rows) {
                std::string created = r["Created"].get<std::string>();
                std::printf("%-40s  %-12s  %-12s  %-22s  %s\n", r["Repository"].get<std::string>().c_str(),
                            r["Tag"].get<std::string>().c_str(), short_digest(r["Id"].get<std::string>()).c_str(),
                            created.empty() ? "unknown" : (human_since(created) + " ago").c_str(),
                            human_size(r["Size"].get<uint64_t>()).c_str());
            }
        } else {
            for (const auto& r : rows) std::fputs(render_format(imf->format, r).c_str(), stdout);
        }
    });

    auto names = std::make_shared<std::vector<std::string>>();
    auto rmi_force = std::make_shared<bool>(false);
    auto* rmi = app.add_subcommand("rmi", "remove image tags from local storage");
    rmi->add_flag("-f,--force", *rmi_force, "remove even when containers use the image");
    rmi->add_option("images", *names, "image names")->required();
    rmi->callback([&g, names, rmi_force] {
        engine::Engine eng(engine_options(g));
        const auto& store = eng.images();
        for (const auto& n : *names) {
            // A name removes that tag; an ID the image, every tag of it (more
            // than one only with --force, as podman).
            std::vector<std::string> doomed;
            if (auto tagged = store.find_tag_by_name(n)) doomed.push_back(*tagged);
            else doomed = store.tags_by_id(n);
            if (doomed.empty()) throw Error(ENOENT, n + ": image not known");
            if (doomed.size() > 1 && !*rmi_force)
                throw Error(EBUSY, "image " + n + " has " + std::to_string(doomed.size()) + " tags (" +
                                       join(doomed, ", ") + "): remove them by name, or use --force");
            if (!*rmi_force)
                for (const auto& c : eng.state().list_containers())
                    for (const auto& name : doomed)
                        if (store.find_name(c.image) == name)
                            throw Error(EBUSY, "image " + n + " is in use by container " + c.name +
                                                   " (remove the container first, or use --force)");
            for (const auto& name : doomed) {
                store.untag(name);
                std::printf("Untagged: %s\n", name.c_str());
            }
        }
    });

    struct SaveFlags {
        std::string output, format = "docker-archive", image;
    };
    auto sf = std::make_shared<SaveFlags>();
    auto* save = app.add_subcommand("save", "write an image to a tarball (what `vitro load` and `docker load` read)");
    save->add_option("-o,--output", sf->output, "the tarball to write")->required();
    save->add_option("--format", sf->format, "docker-archive (default) or oci-archive");
    save->add_option("image", sf->image, "image name")->required();
    save->callback([&g, sf] {
        image::Store store(g.root);
        auto format = image::parse_archive_format(sf->format);
        auto tagged = store.find_name(sf->image);
        if (!tagged) throw Error(ENOENT, sf->image + ": image not known");
        image::save_image(store, *tagged, sf->output, format);
    });

    auto tag_args = std::make_shared<std::vector<std::string>>();
    auto* tag = app.add_subcommand("tag", "give an image another name: vitro tag IMAGE NEW_NAME...");
    tag->add_option("names", *tag_args, "the image, then the new names")->required()->expected(2, -1);
    tag->callback([&g, tag_args] {
        image::Store store(g.root);
        const std::string& src = (*tag_args)[0];
        auto tagged = store.find_name(src);
        if (!tagged) throw Error(ENOENT, src + ": image not known");
        auto d = store.resolve(*tagged);
        // Every new name checked before any is written; a bare name is local, as podman names it
        // ("bb2" -> "localhost/bb2:latest").
        std::vector<image::TagEntry> entries;
        for (size_t i = 1; i < tag_args->size(); ++i) entries.push_back({image::normalize_image_name((*tag_args)[i]), *d});
        store.tag(entries);
    });
}

}  // namespace vitro::cli
