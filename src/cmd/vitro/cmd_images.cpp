// Image commands: load, save, images, image inspect, history, rmi, tag.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <set>

#include "cmd/vitro/common.hpp"
#include "cmd/vitro/image_views.hpp"
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

// "2024-01-01T00:00:00Z": RFC 3339 in UTC to the second, as podman prints times.
std::string rfc3339_seconds(long long secs) {
    time_t t = static_cast<time_t>(secs);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
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
        bool all = false, quiet = false, digests = false, no_trunc = false;
        std::string format = "table", ref;
        std::vector<std::string> filters;
    };
    auto imf = std::make_shared<ImagesFlags>();
    auto* images = app.add_subcommand("images", "list images in local storage: vitro images [REFERENCE]");
    images->add_flag("-a,--all", imf->all, "all images (vitro keeps no intermediate images: the same list)");
    images->add_option("-f,--filter", imf->filters,
                       "only images that match (all must): reference=PATTERN, before=IMAGE, since=IMAGE, "
                       "label=KEY or label=KEY=VALUE, dangling=true|false; repeatable")
        ->allow_extra_args(false);
    images->add_flag("--digests", imf->digests, "show the manifest digests");
    images->add_flag("--no-trunc", imf->no_trunc, "full image IDs");
    images->add_flag("-q,--quiet", imf->quiet, "only image IDs (each once)");
    images->add_option("--format", imf->format, "table, json, or a {{.Field}} template");
    images->add_option("reference", imf->ref,
                       "only images whose name matches: a repository (busybox), a name:tag, or a pattern (localhost/*)");
    images->callback([&g, imf] {
        image::Store store(g.root);
        auto all = local_images(store);
        std::vector<ImageFilter> filters;
        for (const auto& f : imf->filters) filters.push_back(parse_image_filter(store, all, f));
        if (!imf->ref.empty()) filters.push_back(parse_image_filter(store, all, "reference=" + imf->ref));
        json rows = json::array();
        for (const auto& i : all) {
            if (!std::all_of(filters.begin(), filters.end(), [&](const ImageFilter& f) { return f(i); })) continue;
            auto [repo, tag] = split_tag(i.name);
            const json& cfg = i.img.config.raw;
            json labels = cfg.contains("config") && cfg["config"].is_object() ? cfg["config"].value("Labels", json())
                                                                               : json();
            rows.push_back({{"Id", i.id},
                            {"Names", json::array({i.name})},
                            {"Repository", repo},
                            {"Tag", tag},
                            {"Digest", i.img.descriptor.digest},
                            {"Created", cfg.value("created", "")},
                            {"Size", image_size(i.img)},
                            {"Labels", labels}});
        }
        auto shown_id = [&](const json& r) {
            std::string id = r["Id"].get<std::string>();
            return imf->no_trunc ? id : short_digest(id);
        };
        if (imf->quiet) {
            std::set<std::string> seen;
            for (const auto& r : rows)
                if (seen.insert(r["Id"].get<std::string>()).second) std::printf("%s\n", shown_id(r).c_str());
        } else if (imf->format == "json") {
            std::printf("%s\n", rows.dump(4).c_str());
        } else if (imf->format == "table") {
            std::vector<std::vector<std::string>> table;
            auto row = [&](std::vector<std::string> cells, const std::string& digest) {
                if (imf->digests) cells.insert(cells.begin() + 2, digest);
                table.push_back(std::move(cells));
            };
            row({"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"}, "DIGEST");
            for (const auto& r : rows) {
                std::string created = r["Created"].get<std::string>();
                row({r["Repository"].get<std::string>(), r["Tag"].get<std::string>(), shown_id(r),
                     created.empty() ? "unknown" : human_since(created) + " ago",
                     podman_size(r["Size"].get<uint64_t>())},
                    r["Digest"].get<std::string>());
            }
            std::fputs(tab_table(table).c_str(), stdout);
        } else {
            for (const auto& r : rows) std::fputs(render_format(imf->format, r).c_str(), stdout);
        }
    });

    // `image inspect`, under `image` as podman has it.
    auto* image_group = app.add_subcommand("image", "manage images: vitro image inspect");
    image_group->require_subcommand(1);
    auto inspect_refs = std::make_shared<std::vector<std::string>>();
    auto inspect_format = std::make_shared<std::string>("json");
    auto* iinspect = image_group->add_subcommand("inspect", "show images' details as JSON (podman's fields)");
    iinspect->add_option("-f,--format", *inspect_format,
                         "json, or a {{.Field}} template (e.g. {{.Id}}, {{.Config.Cmd}}, {{json .RepoTags}})");
    iinspect->add_option("images", *inspect_refs, "image names or IDs")->required();
    iinspect->callback([&g, inspect_refs, inspect_format] {
        image::Store store(g.root);
        auto all = local_images(store);
        json found = json::array();
        std::vector<std::string> errors;
        for (const auto& r : *inspect_refs) {
            if (const LocalImage* i = find_local_image(store, all, r)) found.push_back(image_inspect_json(all, *i));
            else errors.push_back(r + ": image not known");
        }
        print_inspect(found, *inspect_format, errors);
    });

    struct HistoryFlags {
        bool human = true, no_trunc = false, quiet = false;
        std::string format, image;
    };
    auto hf = std::make_shared<HistoryFlags>();
    auto* history = app.add_subcommand("history", "show an image's history: the step that made each layer, newest first");
    history->add_flag("-H,--human{true}", hf->human,
                      "times as \"3 days ago\" (default); --human=false: RFC 3339 times");
    history->add_flag("--no-trunc", hf->no_trunc, "full IDs and commands");
    history->add_flag("-q,--quiet", hf->quiet, "only the IDs");
    history->add_option("--format", hf->format,
                        "json, or a {{.Field}} template per entry: .ID .Created .CreatedAt .CreatedBy .Size .Comment");
    history->add_option("image", hf->image, "image name or ID")->required();
    history->callback([&g, hf] {
        image::Store store(g.root);
        auto all = local_images(store);
        const LocalImage* img = find_local_image(store, all, hf->image);
        if (!img) throw Error(ENOENT, hf->image + ": image not known");
        json entries = image_history_json(all, *img);
        if (hf->format == "json") {
            std::printf("%s\n", entries.dump(4).c_str());
            return;
        }
        // The shown values, by podman's field names.
        json rows = json::array();
        for (const auto& e : entries) {
            std::string id = e["id"].get<std::string>(), by = e["CreatedBy"].get<std::string>();
            std::string created = e["created"].get<std::string>();
            if (!hf->no_trunc && id.size() > 12) id.resize(12);
            if (!hf->no_trunc && by.size() > 45) by = by.substr(0, 42) + "...";
            auto secs = parse_rfc3339_ns(created);
            std::string at = secs ? rfc3339_seconds(*secs / 1000000000LL) : "";
            rows.push_back({{"ID", id},
                            {"Created", !secs ? "" : hf->human ? human_since(at) + " ago" : at},
                            {"CreatedAt", at},
                            {"CreatedBy", by},
                            {"Size", podman_size(e["size"].get<uint64_t>())},
                            {"Comment", e.value("comment", "")}});
        }
        if (hf->quiet) {
            for (const auto& r : rows) std::printf("%s\n", r["ID"].get<std::string>().c_str());
        } else if (!hf->format.empty() && hf->format != "table") {
            for (const auto& r : rows) std::fputs(render_format(hf->format, r).c_str(), stdout);
        } else {
            std::vector<std::vector<std::string>> table{{"ID", "CREATED", "CREATED BY", "SIZE", "COMMENT"}};
            for (const auto& r : rows)
                table.push_back({r["ID"].get<std::string>(), r["Created"].get<std::string>(),
                                 r["CreatedBy"].get<std::string>(), r["Size"].get<std::string>(),
                                 r["Comment"].get<std::string>()});
            std::fputs(tab_table(table).c_str(), stdout);
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
