// vitro pull / push / login / logout against a real docker-registry
// (distribution 2.8, Debian's docker-registry), started by each test on
// 127.0.0.1:<free port> under a temp dir: plain HTTP, htpasswd Basic auth,
// TLS with a CA of the test's own, and Bearer tokens from a small token
// server (python3 + python3-jwt) whose signing certificate the registry trusts.
// A cutting proxy (a thread here) plays the network that drops a download.
// The image is built with umoci from /bin/busybox (two layers), imported with
// `vitro pull oci:…` and pushed with `vitro push`; skopeo checks the digests.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The vitro binary: $VITRO_BIN, else the one this build made.
std::string vitro_bin() {
    const char* e = std::getenv("VITRO_BIN");
    return e && *e ? e : VITRO_PATH;
}

struct Result {
    int rc;
    std::string out;  // stdout + stderr
};

Result sh(const std::string& cmd) {
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return {-1, "popen failed"};
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int st = ::pclose(p);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), out};
}

bool have(const char* prog) { return sh(std::string("command -v ") + prog).rc == 0; }

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void write_text(const std::string& path, const std::string& data) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << data;
}

int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

int connect_to(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
    ::close(fd);
    return -1;
}

bool wait_port(int port, int seconds = 15) {
    for (int i = 0; i < seconds * 20; ++i) {
        int fd = connect_to(port);
        if (fd >= 0) {
            ::close(fd);
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

// A child process (registry, token server), stopped by PID when done.
class Process {
public:
    Process(const std::vector<std::string>& argv, const std::string& log) {
        pid_ = ::fork();
        if (pid_ == 0) {
            FILE* f = std::freopen(log.c_str(), "w", stdout);
            if (f) ::dup2(STDOUT_FILENO, STDERR_FILENO);
            ::unsetenv("REGISTRY_AUTH_FILE");  // docker-registry would read it as its config's auth.file
            std::vector<char*> args;
            for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execvp(args[0], args.data());
            ::_exit(127);
        }
    }
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    ~Process() { stop(); }
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 40; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

private:
    pid_t pid_ = -1;
};

// docker-registry serving <dir>/data on 127.0.0.1:<port>; `extra` is YAML
// appended to the config (auth, http.tls).
class Registry {
public:
    Registry(const std::string& dir, const std::string& http_extra = {}, const std::string& extra = {})
        : dir_(dir), port_(free_port()) {
        fs::create_directories(dir);
        write_text(dir + "/config.yml", "version: 0.1\n"
                                        "log:\n  level: warn\n"
                                        "storage:\n  filesystem:\n    rootdirectory: " + dir + "/data\n"
                                        "http:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n" + http_extra + extra);
        proc_ = std::make_unique<Process>(std::vector<std::string>{"docker-registry", "serve", dir + "/config.yml"},
                                          dir + "/registry.log");
        ready_ = wait_port(port_);
    }
    bool ready() const { return ready_; }
    void stop() { proc_->stop(); }
    int port() const { return port_; }
    std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
    std::string blob_file(const std::string& digest) const {
        std::string hex = digest.substr(7);
        return dir_ + "/data/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + "/data";
    }
    std::string log() const { return read_text(dir_ + "/registry.log"); }

private:
    std::string dir_;
    int port_;
    std::unique_ptr<Process> proc_;
    bool ready_ = false;
};

// A proxy to 127.0.0.1:<upstream> that can cut blob downloads halfway: one
// request per connection (Connection: close both ways).
class CutProxy {
public:
    explicit CutProxy(int upstream) : upstream_(upstream) {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::listen(listen_fd_, 16);
        socklen_t len = sizeof a;
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { loop(); });
    }
    ~CutProxy() {
        stop_ = true;
        thread_.join();
        ::close(listen_fd_);
    }
    int port() const { return port_; }
    std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
    std::atomic<int> cuts_left{0};  // blob downloads still to cut; < 0: all
    std::atomic<int> cut{0};        // how many were cut

private:
    static std::string read_until_close(int fd) {
        std::string s;
        char buf[65536];
        ssize_t n;
        while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
        return s;
    }
    static void write_all(int fd, const char* p, size_t n) {
        while (n > 0) {
            ssize_t w = ::write(fd, p, n);
            if (w <= 0) return;
            p += w;
            n -= static_cast<size_t>(w);
        }
    }
    void serve(int client) {
        std::string req;
        char buf[8192];
        while (req.find("\r\n\r\n") == std::string::npos) {
            ssize_t n = ::read(client, buf, sizeof buf);
            if (n <= 0) return;
            req.append(buf, static_cast<size_t>(n));
            if (!std::isupper(static_cast<unsigned char>(req[0]))) return;  // a TLS hello: plain HTTP only here
        }
        size_t end = req.find("\r\n\r\n");
        std::string head = req.substr(0, end);
        std::string out;
        std::istringstream lines(head);
        std::string line;
        while (std::getline(lines, line)) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.rfind("Connection:", 0) == 0) continue;
            out += line + "\r\n";
        }
        out += "Connection: close\r\n\r\n" + req.substr(end + 4);
        int up = connect_to(upstream_);
        if (up < 0) return;
        write_all(up, out.data(), out.size());
        std::string resp = read_until_close(up);
        ::close(up);
        bool blob_get = head.rfind("GET ", 0) == 0 && head.find("/blobs/sha256:") != std::string::npos;
        size_t body = resp.find("\r\n\r\n");
        if (blob_get && body != std::string::npos && resp.rfind("HTTP/1.1 200", 0) == 0 && cuts_left != 0) {
            if (cuts_left > 0) --cuts_left;
            ++cut;
            size_t body_len = resp.size() - body - 4;
            resp.resize(body + 4 + body_len / 2);
        }
        write_all(client, resp.data(), resp.size());
    }
    void loop() {
        while (!stop_) {
            pollfd p{listen_fd_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) continue;
            serve(c);
            ::close(c);
        }
    }
    int upstream_;
    int listen_fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// Debian's python (python3-jwt, python3-cryptography), whatever else is on PATH.
const char* kPython = "/usr/bin/python3";

const char* kTokenServer = R"PY(
import base64, http.server, json, sys, time, uuid
from urllib.parse import urlparse, parse_qs
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

port, cert_path, key_path, user, password, service, issuer, log = sys.argv[1:9]
cert = x509.load_pem_x509_certificate(open(cert_path, 'rb').read())
x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
key = open(key_path, 'rb').read()
want = 'Basic ' + base64.b64encode(f'{user}:{password}'.encode()).decode()

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(log, 'a') as f:
            f.write(self.path + '\n')
        if self.headers.get('Authorization', '') != want:
            self.send_response(401)
            self.send_header('Content-Type', 'application/json')
            self.end_headers()
            self.wfile.write(b'{"details":"invalid username or password"}')
            return
        access = []
        for scope in parse_qs(urlparse(self.path).query).get('scope', []):
            kind, name, actions = scope.split(':')
            access.append({'type': kind, 'name': name, 'actions': actions.split(',')})
        now = int(time.time())
        claims = {'iss': issuer, 'sub': user, 'aud': service, 'exp': now + 300, 'nbf': now - 10,
                  'iat': now, 'jti': uuid.uuid4().hex, 'access': access}
        token = jwt.encode(claims, key, algorithm='RS256', headers={'x5c': [x5c]})
        body = json.dumps({'token': token, 'expires_in': 300}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.HTTPServer(('127.0.0.1', int(port)), Handler).serve_forever()
)PY";

class RegistryTest : public ::testing::Test {
protected:
    static inline std::string suite_dir, setup_error, image_digest;

    static void SetUpTestSuite() {
        for (const char* p : {"docker-registry", "umoci", "skopeo", "htpasswd", "openssl", kPython})
            if (!have(p)) {
                setup_error = std::string(p) + " is missing (scripts/setup.sh test installs it)";
                return;
            }
        if (sh(std::string(kPython) + " -c 'import jwt, cryptography'").rc != 0) {
            setup_error = "python3-jwt / python3-cryptography are missing (scripts/setup.sh test)";
            return;
        }
        char tmpl[] = "/tmp/vitro-registry-it-XXXXXX";
        suite_dir = ::mkdtemp(tmpl);
        // Credentials only from files of the test's own.
        ::setenv("REGISTRY_AUTH_FILE", (suite_dir + "/default-auth.json").c_str(), 1);
        ::setenv("DOCKER_CONFIG", (suite_dir + "/docker").c_str(), 1);
        // The test image: busybox in one layer, /etc files in a second.
        std::string d = suite_dir;
        Result r = sh("set -e; cd " + d + "; umoci init --layout img; umoci new --image img:t;"
                   "umoci unpack --rootless --image img:t b >/dev/null; mkdir -p b/rootfs/bin b/rootfs/etc;"
                   "cp /bin/busybox b/rootfs/bin/; ln -s busybox b/rootfs/bin/sh; umoci repack --image img:t b;"
                   "umoci unpack --rootless --image img:t c >/dev/null;"
                   "echo 'root:x:0:0:root:/root:/bin/sh' > c/rootfs/etc/passwd; echo hello > c/rootfs/etc/hello;"
                   "umoci repack --image img:t c; umoci config --image img:t --config.cmd /bin/sh");
        if (r.rc != 0) {
            setup_error = "building the test image with umoci: " + r.out;
            return;
        }
        r = sh(vitro_bin() + " --root " + d + "/src pull -q oci:" + d + "/img:t");
        if (r.rc != 0) setup_error = "vitro pull oci:… of the test image: " + r.out;
    }
    static void TearDownTestSuite() {
        if (!suite_dir.empty()) sh("rm -rf " + suite_dir);
    }

    void SetUp() override {
        if (!setup_error.empty()) GTEST_SKIP() << setup_error;
        dir = suite_dir + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
        fs::create_directories(dir);
    }

    std::string vitro(const std::string& root) const { return vitro_bin() + " --root " + dir + "/" + root; }
    Result push(const std::string& dest, const std::string& flags = "--tls-verify=false") const {
        return sh(vitro_bin() + " --root " + suite_dir + "/src push " + flags + " --digestfile " + dir +
                  "/digest localhost/img:t " + dest);
    }
    std::string pushed_digest() const { return read_text(dir + "/digest"); }

    // The store under dir/<root>: its tags, and what is in blobs/, layers/, tmp/.
    json store_index(const std::string& root) const { return json::parse(read_text(dir + "/" + root + "/index.json")); }
    static size_t count_entries(const std::string& path) {
        if (!fs::exists(path)) return 0;
        return static_cast<size_t>(std::distance(fs::directory_iterator(path), fs::directory_iterator()));
    }
    void expect_store_empty(const std::string& root) const {
        std::string r = dir + "/" + root;
        EXPECT_TRUE(store_index(root)["manifests"].empty()) << store_index(root).dump();
        EXPECT_EQ(count_entries(r + "/blobs/sha256"), 0u);
        EXPECT_EQ(count_entries(r + "/layers"), 0u);
        EXPECT_EQ(count_entries(r + "/tmp"), 0u);
    }
    // The layers of the image tagged `name`, each unpacked.
    void expect_unpacked(const std::string& root, const std::string& name) const {
        std::string r = dir + "/" + root;
        json idx = store_index(root);
        ASSERT_EQ(idx["manifests"].size(), 1u) << idx.dump();
        EXPECT_EQ(idx["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], name);
        std::string mdigest = idx["manifests"][0]["digest"];
        json m = json::parse(read_text(r + "/blobs/sha256/" + mdigest.substr(7)));
        ASSERT_EQ(m["layers"].size(), 2u);
        for (auto& l : m["layers"]) EXPECT_TRUE(fs::exists(r + "/blobs/sha256/" + l["digest"].get<std::string>().substr(7)));
        json cfg = json::parse(read_text(r + "/blobs/sha256/" + m["config"]["digest"].get<std::string>().substr(7)));
        std::string l0 = cfg["rootfs"]["diff_ids"][0], l1 = cfg["rootfs"]["diff_ids"][1];
        EXPECT_TRUE(fs::is_regular_file(r + "/layers/" + l0.substr(7) + "/rootfs/bin/busybox"));
        EXPECT_TRUE(fs::is_symlink(r + "/layers/" + l0.substr(7) + "/rootfs/bin/sh"));
        EXPECT_EQ(read_text(r + "/layers/" + l1.substr(7) + "/rootfs/etc/hello"), "hello\n");
    }
    std::string tagged_digest(const std::string& root) const {
        json idx = store_index(root);
        return idx["manifests"].empty() ? "" : idx["manifests"][0]["digest"].get<std::string>();
    }

    std::string dir;
};

TEST_F(RegistryTest, PlainHttpPushThenPullSameDigest) {
    Registry reg(dir + "/reg");
    ASSERT_TRUE(reg.ready()) << reg.log();
    std::string ref = reg.host() + "/test/bb:v1";
    Result r = push(ref);
    ASSERT_EQ(r.rc, 0) << r.out;
    std::string digest = pushed_digest();
    ASSERT_EQ(digest.rfind("sha256:", 0), 0u) << digest;

    // skopeo, a peer, sees the same manifest.
    Result sk = sh("skopeo inspect --tls-verify=false --format '{{.Digest}}' docker://" + ref);
    ASSERT_EQ(sk.rc, 0) << sk.out;
    EXPECT_EQ(sk.out, digest + "\n");

    r = sh(vitro("root") + " pull -q --tls-verify=false " + ref);
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(r.out.size(), 65u) << r.out;  // the image ID only
    EXPECT_EQ(tagged_digest("root"), digest);
    expect_unpacked("root", ref);

    // Again: nothing to download, same result; by digest too.
    r = sh(vitro("root") + " pull --tls-verify=false " + ref);
    ASSERT_EQ(r.rc, 0) << r.out;
    r = sh(vitro("root2") + " pull -q --tls-verify=false " + reg.host() + "/test/bb@" + digest);
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(tagged_digest("root2"), digest);

    // Pushing again uploads nothing new and keeps the digest.
    r = push(reg.host() + "/test/bb:v2");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(pushed_digest(), digest);
}

// vitro run/create --pull (podman's policy): missing pulls an image the store
// lacks, then runs it; never does not; a failed pull leaves no container and
// nothing in the store.
TEST_F(RegistryTest, RunPullsAMissingImage) {
    Registry reg(dir + "/reg");
    ASSERT_TRUE(reg.ready()) << reg.log();
    std::string ref = reg.host() + "/test/bb:v1";
    Result r = push(ref);
    ASSERT_EQ(r.rc, 0) << r.out;
    std::string run = vitro("root") + " --runroot " + dir + "/run run --rm --network none --tls-verify=false ";

    r = sh(run + "--pull never " + ref + " /bin/sh -c 'echo never'");
    EXPECT_EQ(r.rc, 125);
    EXPECT_NE(r.out.find(ref + ": image not known"), std::string::npos) << r.out;
    expect_store_empty("root");

    r = sh(run + ref + " /bin/sh -c 'cat /etc/hello'");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("hello\n"), std::string::npos) << r.out;
    EXPECT_EQ(tagged_digest("root"), pushed_digest());
    expect_unpacked("root", ref);

    // Present now: missing does not ask the registry again (it is stopped
    // here to show it), always does.
    reg.stop();
    r = sh(run + ref + " /bin/sh -c 'echo again'");
    ASSERT_EQ(r.rc, 0) << r.out;
    r = sh(run + "--pull always " + ref + " /bin/sh -c 'echo always'");
    EXPECT_EQ(r.rc, 125) << r.out;
    EXPECT_NE(r.out.find("pinging registry " + reg.host()), std::string::npos) << r.out;
    EXPECT_EQ(tagged_digest("root"), pushed_digest());  // the local image stays as it was

    // Neither here nor reachable: one line naming the image, exit 125, no container made.
    r = sh(run + reg.host() + "/test/nope:v1 true");
    EXPECT_EQ(r.rc, 125);
    EXPECT_EQ(r.out.rfind("Error: " + reg.host() + "/test/nope:v1: image not known locally, and pulling ", 0), 0u) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    r = sh(vitro("root") + " --runroot " + dir + "/run ps -aq");
    EXPECT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(r.out, "");
}

TEST_F(RegistryTest, UnknownImageAndUnreachableRegistry) {
    Registry reg(dir + "/reg");
    ASSERT_TRUE(reg.ready()) << reg.log();
    Result r = sh(vitro("root") + " pull --tls-verify=false " + reg.host() + "/test/nope:v1");
    EXPECT_EQ(r.rc, 125);
    EXPECT_NE(r.out.find("Error: pulling " + reg.host() + "/test/nope:v1: reading manifest v1 in " + reg.host() +
                         "/test/nope: manifest unknown"),
              std::string::npos)
        << r.out;
    expect_store_empty("root");

    int closed = free_port();
    r = sh(vitro("root") + " pull --tls-verify=false 127.0.0.1:" + std::to_string(closed) + "/x");
    EXPECT_EQ(r.rc, 125);
    EXPECT_NE(r.out.find("pinging registry 127.0.0.1:" + std::to_string(closed)), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Couldn't connect to server"), std::string::npos) << r.out;

    // https (the default) against a plain HTTP registry says what to do.
    r = sh(vitro("root") + " pull " + reg.host() + "/test/nope");
    EXPECT_EQ(r.rc, 125);
    EXPECT_NE(r.out.find("--tls-verify=false"), std::string::npos) << r.out;

    r = sh(vitro("root") + " pull 'Foo::x'");
    EXPECT_EQ(r.rc, 125);
    EXPECT_NE(r.out.find("Error: invalid reference format: \"Foo::x\""), std::string::npos) << r.out;
    expect_store_empty("root");
}

TEST_F(RegistryTest, BasicAuthLoginLogout) {
    ASSERT_EQ(sh("htpasswd -Bbc " + dir + "/htpasswd alice s3cret").rc, 0);
    Registry reg(dir + "/reg", "", "auth:\n  htpasswd:\n    realm: vitro-test\n    path: " + dir + "/htpasswd\n");
    ASSERT_TRUE(reg.ready()) << reg.log();
    std::string auth = dir + "/auth.json";
    std::string flags = " --tls-verify=false --authfile " + auth + " ";

    Result r = sh(vitro("root") + " login" + flags + "-u alice -p wrong " + reg.host());
    EXPECT_EQ(r.rc, 125);
    EXPECT_EQ(r.out, "Error: logging in to " + reg.host() + ": invalid username/password\n");
    EXPECT_FALSE(fs::exists(auth) && read_text(auth).find(reg.host()) != std::string::npos);

    r = push(reg.host() + "/test/bb:v1");
    EXPECT_EQ(r.rc, 125);
    EXPECT_NE(r.out.find("authentication required"), std::string::npos) << r.out;

    r = sh("echo s3cret | " + vitro("root") + " login" + flags + "-u alice --password-stdin " + reg.host());
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(r.out, "Login Succeeded!\n");
    json a = json::parse(read_text(auth));
    EXPECT_EQ(a["auths"][reg.host()]["auth"], "YWxpY2U6czNjcmV0");  // alice:s3cret
    EXPECT_EQ(fs::status(auth).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);

    r = push(reg.host() + "/test/bb:v1", flags);
    ASSERT_EQ(r.rc, 0) << r.out;
    r = sh(vitro("root") + " pull -q" + flags + reg.host() + "/test/bb:v1");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(tagged_digest("root"), pushed_digest());
    expect_unpacked("root", reg.host() + "/test/bb:v1");

    // --creds instead of the saved login; wrong ones fail clearly.
    r = sh(vitro("root2") + " pull -q --tls-verify=false --creds alice:nope " + reg.host() + "/test/bb:v1");
    EXPECT_EQ(r.rc, 125);
    EXPECT_NE(r.out.find("invalid username/password"), std::string::npos) << r.out;
    expect_store_empty("root2");
    r = sh(vitro("root2") + " pull -q --tls-verify=false --creds alice:s3cret " + reg.host() + "/test/bb:v1");
    EXPECT_EQ(r.rc, 0) << r.out;

    r = sh(vitro("root") + " logout --authfile " + auth + " " + reg.host());
    EXPECT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(r.out, "Removed login credentials for " + reg.host() + "\n");
    EXPECT_FALSE(json::parse(read_text(auth))["auths"].contains(reg.host()));
    r = sh(vitro("root") + " logout --authfile " + auth + " " + reg.host());
    EXPECT_EQ(r.rc, 125);
    EXPECT_EQ(r.out, "Error: not logged into " + reg.host() + "\n");
}

TEST_F(RegistryTest, TlsWithCertDir) {
    std::string t = dir + "/tls";
    fs::create_directories(t);
    Result r = sh("set -e; cd " + t + "; "
               "exec 2>/dev/null; openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=vitro-test-ca; "
               "openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1; "
               "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf; "
               "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 2 -extfile ext.cnf");
    ASSERT_EQ(r.rc, 0) << r.out;
    Registry reg(dir + "/reg", "  tls:\n    certificate: " + t + "/srv.crt\n    key: " + t + "/srv.key\n");
    ASSERT_TRUE(reg.ready()) << reg.log();
    std::string certs = dir + "/certs.d";
    fs::create_directories(certs + "/" + reg.host());
    fs::copy_file(t + "/ca.crt", certs + "/" + reg.host() + "/ca.crt");
    std::string ref = reg.host() + "/test/bb:v1";

    // Unknown CA: refused. With the certs dir (the certs.d root or the host's own dir): trusted.
    r = push(ref, "");
    EXPECT_EQ(r.rc, 125);
    EXPECT_NE(r.out.find("certificate"), std::string::npos) << r.out;
    r = push(ref, "--cert-dir " + certs);
    ASSERT_EQ(r.rc, 0) << r.out;
    r = sh(vitro("root") + " pull -q --cert-dir " + certs + "/" + reg.host() + " " + ref);
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(tagged_digest("root"), pushed_digest());
    expect_unpacked("root", ref);
    // --tls-verify=false: https without verification.
    r = sh(vitro("root2") + " pull -q --tls-verify=false " + ref);
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(tagged_digest("root2"), pushed_digest());
}

TEST_F(RegistryTest, BearerTokenFlow) {
    std::string t = dir + "/token";
    fs::create_directories(t);
    Result r = sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + t + "/tok.key -out " + t +
               "/tok.crt -days 2 -subj /CN=vitro-token-signer 2>/dev/null");
    ASSERT_EQ(r.rc, 0) << r.out;
    write_text(t + "/server.py", kTokenServer);
    int tport = free_port();
    Process tokens({kPython, t + "/server.py", std::to_string(tport), t + "/tok.crt", t + "/tok.key", "bob", "hunter2",
                    "vitro-registry", "vitro-issuer", t + "/requests.log"},
                   t + "/server.log");
    ASSERT_TRUE(wait_port(tport)) << read_text(t + "/server.log");
    Registry reg(dir + "/reg", "",
                 "auth:\n  token:\n    realm: http://127.0.0.1:" + std::to_string(tport) +
                     "/token\n    service: vitro-registry\n    issuer: vitro-issuer\n    rootcertbundle: " + t +
                     "/tok.crt\n");
    ASSERT_TRUE(reg.ready()) << reg.log();
    std::string auth = dir + "/auth.json";
    std::string flags = " --tls-verify=false --authfile " + auth + " ";

    r = sh(vitro("root") + " login" + flags + "-u bob -p wrong " + reg.host());
    EXPECT_EQ(r.rc, 125);
    EXPECT_EQ(r.out, "Error: logging in to " + reg.host() + ": invalid username/password\n");
    EXPECT_FALSE(fs::exists(auth));

    r = sh(vitro("root") + " pull" + flags + reg.host() + "/test/bb:v1");
    EXPECT_EQ(r.rc, 125);
    EXPECT_NE(r.out.find("authentication required"), std::string::npos) << r.out;
    expect_store_empty("root");

    r = sh(vitro("root") + " login" + flags + "-u bob -p hunter2 " + reg.host());
    ASSERT_EQ(r.rc, 0) << r.out;
    r = push(reg.host() + "/test/bb:v1", flags);
    ASSERT_EQ(r.rc, 0) << r.out << reg.log();
    r = sh(vitro("root") + " pull -q" + flags + reg.host() + "/test/bb:v1");
    ASSERT_EQ(r.rc, 0) << r.out << reg.log();
    EXPECT_EQ(tagged_digest("root"), pushed_digest());
    expect_unpacked("root", reg.host() + "/test/bb:v1");

    // The token server saw the scopes; tokens are cached (not one per request).
    std::string reqs = read_text(t + "/requests.log");
    EXPECT_NE(reqs.find("scope=repository%3Atest%2Fbb%3Apull%2Cpush"), std::string::npos) << reqs;
    EXPECT_NE(reqs.find("scope=repository%3Atest%2Fbb%3Apull&"), std::string::npos) << reqs;
    EXPECT_LT(std::count(reqs.begin(), reqs.end(), '\n'), 20) << reqs;
}

TEST_F(RegistryTest, CorruptedBlobIsRejectedStoreUnchanged) {
    Registry reg(dir + "/reg");
    ASSERT_TRUE(reg.ready()) << reg.log();
    ASSERT_EQ(push(reg.host() + "/test/bb:v1").rc, 0);
    // Flip one byte of the big (busybox) layer in the registry's own storage.
    json m = json::parse(read_text(reg.blob_file(pushed_digest())));
    std::string layer = m["layers"][0]["digest"];
    std::string file = reg.blob_file(layer);
    std::string data = read_text(file);
    ASSERT_GT(data.size(), 1000u);
    data[data.size() / 2] ^= 0x55;
    write_text(file, data);

    Result r = sh(vitro("root") + " pull --tls-verify=false " + reg.host() + "/test/bb:v1");
    EXPECT_EQ(r.rc, 125);
    EXPECT_NE(r.out.find("fetching blob " + layer), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("digest mismatch"), std::string::npos) << r.out;
    expect_store_empty("root");
}

// An image whose config gives a wrong diffID for its first layer: every blob
// verifies, but the layer unpacked while it downloads does not hash to what
// the config says. Neither the blob nor the layer may land.
const char* kLyingConfig = R"PY(
import hashlib, json, sys, urllib.request
base, repo, src, dst = sys.argv[1:5]
def req(method, url, body=None, headers={}):
    r = urllib.request.Request(url, data=body, method=method, headers=headers)
    with urllib.request.urlopen(r) as resp:
        return resp.read(), resp.headers
mt = 'application/vnd.oci.image.manifest.v1+json'
m, _ = req('GET', f'{base}/v2/{repo}/manifests/{src}', headers={'Accept': mt})
m = json.loads(m)
cfg, _ = req('GET', f'{base}/v2/{repo}/blobs/{m["config"]["digest"]}')
cfg = json.loads(cfg)
cfg['rootfs']['diff_ids'][0] = 'sha256:' + hashlib.sha256(b'not this layer').hexdigest()
body = json.dumps(cfg).encode()
digest = 'sha256:' + hashlib.sha256(body).hexdigest()
_, h = req('POST', f'{base}/v2/{repo}/blobs/uploads/')
loc = h['Location']
loc = (loc if loc.startswith('http') else base + loc) + ('&' if '?' in loc else '?') + 'digest=' + digest
req('PUT', loc, body, {'Content-Type': 'application/octet-stream'})
m['config']['digest'], m['config']['size'] = digest, len(body)
req('PUT', f'{base}/v2/{repo}/manifests/{dst}', json.dumps(m).encode(), {'Content-Type': mt})
)PY";

TEST_F(RegistryTest, LayerNotMatchingConfigDiffIdLeavesNothing) {
    Registry reg(dir + "/reg");
    ASSERT_TRUE(reg.ready()) << reg.log();
    ASSERT_EQ(push(reg.host() + "/test/bb:v1").rc, 0);
    write_text(dir + "/liar.py", kLyingConfig);
    Result r = sh(std::string(kPython) + " " + dir + "/liar.py http://" + reg.host() + " test/bb v1 liar");
    ASSERT_EQ(r.rc, 0) << r.out;

    r = sh(vitro("root") + " pull --tls-verify=false " + reg.host() + "/test/bb:liar");
    EXPECT_EQ(r.rc, 125);
    EXPECT_NE(r.out.find("the image config says"), std::string::npos) << r.out;
    expect_store_empty("root");
}

TEST_F(RegistryTest, PullResumedFromStoredBlobsUnpacksThem) {
    Registry reg(dir + "/reg");
    ASSERT_TRUE(reg.ready()) << reg.log();
    std::string ref = reg.host() + "/test/bb:v1";
    ASSERT_EQ(push(ref).rc, 0);
    Result r = sh(vitro("root") + " pull -q --tls-verify=false " + ref);
    ASSERT_EQ(r.rc, 0) << r.out;
    // What a pull killed after its downloads leaves: verified blobs, no
    // layers, no tag. The next pull unpacks the stored blobs.
    // Through a proxy that cuts every blob download: the pull must not need one.
    ASSERT_EQ(sh("rm -rf " + dir + "/root/layers/* " + dir + "/root/index.json").rc, 0);
    CutProxy proxy(reg.port());
    proxy.cuts_left = -1;
    std::string via_proxy = proxy.host() + "/test/bb:v1";
    r = sh(vitro("root") + " pull -q --tls-verify=false " + via_proxy);
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(proxy.cut.load(), 0);
    expect_unpacked("root", via_proxy);
}

TEST_F(RegistryTest, TruncatedDownloadRetriedOrRejectedThenPullSucceeds) {
    Registry reg(dir + "/reg");
    ASSERT_TRUE(reg.ready()) << reg.log();
    ASSERT_EQ(push(reg.host() + "/test/bb:v1").rc, 0);
    CutProxy proxy(reg.port());
    std::string ref = proxy.host() + "/test/bb:v1";

    // Every download cut: three tries each, then a clear error and nothing left.
    proxy.cuts_left = -1;
    Result r = sh(vitro("root") + " pull --tls-verify=false " + ref);
    EXPECT_EQ(r.rc, 125);
    EXPECT_NE(r.out.find("Error: pulling " + ref + ": fetching blob sha256:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("partial file"), std::string::npos) << r.out;
    EXPECT_GE(proxy.cut.load(), 3);
    expect_store_empty("root");

    // One download cut: the retry gets it.
    proxy.cuts_left = 1;
    proxy.cut = 0;
    r = sh(vitro("root") + " pull -q --tls-verify=false " + ref);
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(proxy.cut.load(), 1);
    EXPECT_EQ(tagged_digest("root"), pushed_digest());
    expect_unpacked("root", ref);
}

TEST_F(RegistryTest, OciTransportsAndHelp) {
    Result r = sh(vitro("root") + " pull -q oci:" + suite_dir + "/img:t");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(store_index("root")["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "localhost/img:t");
    ASSERT_EQ(sh("cd " + suite_dir + " && tar -C img -cf " + dir + "/img.tar .").rc, 0);
    r = sh(vitro("root2") + " pull -q oci-archive:" + dir + "/img.tar:t");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(tagged_digest("root2"), tagged_digest("root"));
    for (const char* cmd : {"pull", "push", "login", "logout"}) {
        r = sh(vitro_bin() + " " + cmd + " --help");
        EXPECT_EQ(r.rc, 0) << cmd;
        EXPECT_NE(r.out.find("--authfile"), std::string::npos) << r.out;
    }
}

}  // namespace
