// cp (and, below, export / import): files between containers and the host,
// podman's rules and flags; the work is in engine/copy.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cmd/vitro/common.hpp"
#include "engine/copy.hpp"
#include "image/digest.hpp"
#include "image/import.hpp"
#include "image/reference.hpp"
#include "image/store.hpp"
#include "image/tree_tar.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace vitro::cli {

void add_copy_commands(CLI::App& app, Globals& g) {
    struct CpFlags {
        std::string src, dst;
        bool archive = true;
    };
    auto f = std::make_shared<CpFlags>();
    auto* cp = app.add_subcommand(
        "cp",
        "copy files/folders between a container and the host (or two containers): [CONTAINER:]SRC "
        "[CONTAINER:]DEST; SRC ending in /. copies a directory's contents; \"-\" as SRC extracts a tar "
        "stream from stdin into the directory DEST, as DEST writes a tar of SRC to stdout. The container "
        "may be running or stopped; its paths resolve inside its root file system only");
    cp->add_flag("-a,--archive", f->archive,
                 "files copied into a container belong to its user (default true); --archive=false keeps "
                 "the owners of the source");
    cp->add_option("src", f->src, "[CONTAINER:]SRC_PATH, or - for a tar stream on stdin")->required();
    cp->add_option("dest", f->dst, "[CONTAINER:]DEST_PATH, or - for a tar stream on stdout")->required();
    cp->callback([&g, f] {
        engine::Engine eng(engine_options(g));
        engine::copy(eng, engine::parse_copy_endpoint(f->src), engine::parse_copy_endpoint(f->dst),
                     {.chown_to_container_user = f->archive});
    });

    auto ef = std::make_shared<std::pair<std::string, std::string>>();  // container, -o
    auto* exp = app.add_subcommand("export", "write a container's file system (running or stopped) as a tar archive");
    exp->add_option("-o,--output", ef->second, "write to this file instead of stdout (made whole or not at all)");
    exp->add_option("container", ef->first, "container name or ID")->required();
    exp->callback([&g, ef] {
        const std::string& out = ef->second;
        if (out.empty() && stdout_is_tty())
            throw Error(EINVAL, "refusing to export to a terminal: use -o FILE or redirect stdout");
        engine::Engine eng(engine_options(g));
        engine::ContainerRootfs root = eng.open_rootfs(ef->first);
        if (out.empty()) {
            image::write_tree_tar(root.fd(), STDOUT_FILENO, {});
            return;
        }
        std::string tmp = out + ".tmp-XXXXXX";
        UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
        if (!fd) throw_errno("create", tmp);
        try {
            image::write_tree_tar(root.fd(), fd.get(), {});
            if (::fsync(fd.get()) < 0) throw_errno("sync", tmp);
            if (::rename(tmp.c_str(), out.c_str()) < 0) throw_errno("rename " + tmp + " to", out);
        } catch (...) {
            ::unlink(tmp.c_str());
            throw;
        }
    });

    struct ImportFlags {
        std::string input, ref, message;
        std::vector<std::string> changes;
        bool quiet = false;
    };
    auto imf = std::make_shared<ImportFlags>();
    auto* imp = app.add_subcommand("import", "make a one-layer image from a tarball of a file system (vitro export's)");
    imp->add_option("-c,--change", imf->changes,
                    "apply a Dockerfile instruction to the image's config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, "
                    "STOPSIGNAL, USER, VOLUME, WORKDIR), as \"CMD /bin/sh\" or \"CMD=/bin/sh\"; repeatable");
    imp->add_option("-m,--message", imf->message, "the comment of the image's history entry");
    imp->add_flag("-q,--quiet", imf->quiet, "print nothing but errors");
    imp->add_option("file", imf->input, "the tarball (plain or compressed), or - for stdin")->required();
    imp->add_option("reference", imf->ref, "the image's name, e.g. myimage:1 (localhost/myimage:1)")->required();
    imp->callback([&g, imf] {
        std::string name = image::normalize_image_name(imf->ref);
        UniqueFd in;
        if (imf->input != "-") {
            in.reset(::open(imf->input.c_str(), O_RDONLY | O_CLOEXEC));
            if (!in) throw_errno("open", imf->input);
        }
        image::Store store(g.root);
        std::string id = image::import_rootfs_tarball(store, in ? in.get() : STDIN_FILENO, name, imf->changes,
                                                      imf->message);
        if (!imf->quiet) std::printf("%s\n", image::digest_hex(id).c_str());
    });
}

}  // namespace vitro::cli
