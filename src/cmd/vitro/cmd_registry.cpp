// pull, push, login, logout: the registry side of vitro (image/pull, image/registry).
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "cmd/vitro/cli.hpp"
#include "cmd/vitro/registry_flags.hpp"
#include "image/auth_file.hpp"
#include "image/digest.hpp"
#include "image/import.hpp"
#include "image/pull.hpp"
#include "image/store.hpp"
#include "util/error.hpp"
#include "util/file.hpp"

namespace vitro::cli {

namespace {

// "https://host:5000/v2/" -> "host:5000": login takes a registry, not a URL.
std::string registry_host(std::string s) {
    for (const char* scheme : {"docker://", "https://", "http://"})
        if (s.rfind(scheme, 0) == 0) s = s.substr(std::string_view(scheme).size());
    s = s.substr(0, s.find('/'));
    if (s.empty()) throw Error(EINVAL, "registry: empty host name");
    return s;
}

std::string prompt(const char* label, bool echo) {
    if (::isatty(STDIN_FILENO) != 1) throw Error(EINVAL, std::string(label) + ": stdin is not a terminal; use the flag");
    std::fprintf(stderr, "%s: ", label);
    std::fflush(stderr);
    termios old{};
    bool restore = !echo && ::tcgetattr(STDIN_FILENO, &old) == 0;
    if (restore) {
        termios quiet = old;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    std::string line;
    std::getline(std::cin, line);
    if (restore) {
        ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        std::fprintf(stderr, "\n");
    }
    return line;
}

void add_pull(CLI::App& app, Globals& g) {
    struct Opts {
        RegistryFlags reg;
        bool quiet = false;
        std::string ref;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("pull", "Pull an image from a registry (or oci:, oci-archive:, docker-archive:) into the store");
    cmd->add_flag("-q,--quiet", o->quiet, "print only the image ID, no progress");
    add_registry_flags(cmd, o->reg, true);
    cmd->add_option("REF", o->ref,
                    "image reference (busybox, HOST:PORT/repo:tag, repo@sha256:…), or oci:DIR[:TAG], "
                    "oci-archive:PATH[:TAG], docker-archive:PATH")
        ->required();
    cmd->callback([o, &g] {
        image::Store store(g.root);
        image::PullOptions po;
        po.registry = registry_options(o->reg);
        po.authfile = o->reg.authfile;
        po.progress = progress_for(o->quiet);
        image::ImportedImage img = image::pull(store, o->ref, po);
        image::StoredImage stored = image::load_image(store, img.name);
        std::printf("%s\n", image::digest_hex(stored.manifest.config.digest).c_str());
    });
}

void add_push(CLI::App& app, Globals& g) {
    struct Opts {
        RegistryFlags reg;
        bool quiet = false;
        std::string local, dest, digestfile;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("push", "Push an image from the store to a registry");
    cmd->add_flag("-q,--quiet", o->quiet, "no progress output");
    cmd->add_option("--digestfile", o->digestfile, "write the pushed manifest's digest to this file");
    add_registry_flags(cmd, o->reg, true);
    cmd->add_option("IMAGE", o->local, "the local image (name[:tag])")->required();
    cmd->add_option("DESTINATION", o->dest, "where to push it (HOST:PORT/repo[:tag]); default: IMAGE itself");
    cmd->callback([o, &g] {
        image::Store store(g.root);
        image::PushOptions po;
        po.registry = registry_options(o->reg);
        po.authfile = o->reg.authfile;
        po.progress = progress_for(o->quiet);
        image::PushResult res = image::push(store, o->local, o->dest, po);
        if (!o->digestfile.empty()) write_file_atomic(o->digestfile, res.digest);
    });
}

void add_login(CLI::App& app, Globals&) {
    struct Opts {
        RegistryFlags reg;
        std::string user, password, host;
        bool password_stdin = false;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("login", "Log in to a registry: check the credentials, then save them in the auth file");
    cmd->add_option("-u,--username", o->user, "user name (prompted for on a terminal)");
    auto* pw = cmd->add_option("-p,--password", o->password, "password (prompted for on a terminal)");
    cmd->add_flag("--password-stdin", o->password_stdin, "read the password from stdin")->excludes(pw);
    add_registry_flags(cmd, o->reg, false);
    cmd->add_option("REGISTRY", o->host, "the registry: HOST[:PORT]")->required();
    cmd->callback([o] {
        std::string host = registry_host(o->host);
        image::Credentials c{o->user, o->password};
        if (c.username.empty()) c.username = prompt("Username", true);
        if (o->password_stdin) {
            c.password = read_fd(STDIN_FILENO);
            while (!c.password.empty() && (c.password.back() == '\n' || c.password.back() == '\r'))
                c.password.pop_back();
        } else if (c.password.empty()) {
            c.password = prompt("Password", false);
        }
        if (c.username.empty()) throw Error(EINVAL, "logging in to " + host + ": a user name is required");
        if (c.password.empty()) throw Error(EINVAL, "logging in to " + host + ": a password is required");
        image::RegistryOptions ro = registry_options(o->reg);
        ro.credentials = c;
        image::RegistryClient(host, ro).check_login();
        image::AuthFile file(o->reg.authfile.empty() ? image::AuthFile::default_path() : o->reg.authfile);
        file.set(host, c);
        file.save();
        std::printf("Login Succeeded!\n");
    });
}

void add_logout(CLI::App& app, Globals&) {
    struct Opts {
        std::string authfile, host;
        bool all = false;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("logout", "Remove a registry's saved login from the auth file");
    cmd->add_flag("-a,--all", o->all, "remove the logins of every registry");
    cmd->add_option("--authfile", o->authfile, "auth.json with the registry logins ($REGISTRY_AUTH_FILE)");
    cmd->add_option("REGISTRY", o->host, "the registry: HOST[:PORT]");
    cmd->callback([o] {
        image::AuthFile file(o->authfile.empty() ? image::AuthFile::default_path() : o->authfile);
        if (o->all) {
            file.clear();
            file.save();
            std::printf("Removed login credentials for all registries\n");
            return;
        }
        if (o->host.empty()) throw Error(EINVAL, "logout: a registry is required (or --all)");
        std::string host = registry_host(o->host);
        if (!file.remove(host)) throw Error(ENOENT, "not logged into " + host);
        file.save();
        std::printf("Removed login credentials for %s\n", host.c_str());
    });
}

}  // namespace

void add_registry_commands(CLI::App& app, Globals& g) {
    add_pull(app, g);
    add_push(app, g);
    add_login(app, g);
    add_logout(app, g);
}

}  // namespace vitro::cli
