#include "image/registry.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "image/curl_api.hpp"
#include "image/digest.hpp"
#include "image/store.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"

namespace vitro::image {

using nlohmann::json;

namespace {

constexpr int kTries = 3;
constexpr size_t kMaxManifest = 4 << 20;   // as containers/image
constexpr size_t kMaxErrorBody = 1 << 20;  // error documents, token answers
// curl's receive buffer for blob downloads: with its default, 16 KiB, a blob
// cost a recv and a poll call per 16 KiB.
constexpr long kBlobBuffer = 512 << 10;

// --- RAII over libcurl ----------------------------------------------------------

struct CurlDeleter {
    void operator()(CURL* c) const { curl_api().easy_cleanup(c); }
};
using UniqueCurl = std::unique_ptr<CURL, CurlDeleter>;
struct SlistDeleter {
    void operator()(curl_slist* s) const { curl_api().slist_free_all(s); }
};
using UniqueSlist = std::unique_ptr<curl_slist, SlistDeleter>;
struct UrlDeleter {
    void operator()(CURLU* u) const { curl_api().url_cleanup(u); }
};
using UniqueUrl = std::unique_ptr<CURLU, UrlDeleter>;

UniqueCurl new_curl() {
    UniqueCurl c(curl_api().easy_init());
    if (!c) throw Error(ENOMEM, "curl_easy_init failed");
    return c;
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string url_escape(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            static const char* hex = "0123456789ABCDEF";
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

// `location` resolved against `base` (it may be relative), plus `query`.
std::string resolve_url(const std::string& base, const std::string& location, const std::string& query) {
    UniqueUrl u(curl_api().url());
    if (!u) throw Error(ENOMEM, "curl_url failed");
    if (curl_api().url_set(u.get(), CURLUPART_URL, base.c_str(), 0) != CURLUE_OK ||
        curl_api().url_set(u.get(), CURLUPART_URL, location.c_str(), 0) != CURLUE_OK)
        throw Error(EINVAL, "upload location \"" + location + "\": not a URL");
    if (!query.empty() &&
        curl_api().url_set(u.get(), CURLUPART_QUERY, query.c_str(), CURLU_APPENDQUERY | CURLU_URLENCODE) != CURLUE_OK)
        throw Error(EINVAL, "upload location \"" + location + "\": cannot add the query");
    char* out = nullptr;
    if (curl_api().url_get(u.get(), CURLUPART_URL, &out, 0) != CURLUE_OK) throw Error(EINVAL, "upload location: bad URL");
    std::string s(out);
    curl_api().free(out);
    return s;
}

bool is_dir(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> names;
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
    if (!d) throw_errno("open directory", dir);
    while (dirent* e = ::readdir(d.get())) names.emplace_back(e->d_name);
    std::sort(names.begin(), names.end());
    return names;
}

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// --- one HTTP exchange ------------------------------------------------------------

struct Request {
    std::string method = "GET";
    std::string url;
    std::vector<std::string> headers;
    std::string scope;  // the bearer token scope it needs
    bool raw = false;   // no ping first, no authentication (ping itself, token requests)
    // Request body (PUT): `data`, or `size` bytes read from `fd`.
    const std::string* data = nullptr;
    int fd = -1;
    int64_t size = 0;
    // Where a 2xx body goes (empty: Response::body, at most max_body bytes).
    std::function<void(const char*, size_t)> sink;
    std::function<void()> before_attempt;  // e.g. a fresh blob writer per try
    size_t max_body = kMaxErrorBody;
    long buffer_size = 0;  // curl's receive buffer (0: its default, 16 KiB)
};

struct Response {
    long status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
    bool ok() const { return status >= 200 && status < 300; }
};

struct CurlFailure {
    CURLcode code;
    std::string message;
};

struct Transfer {
    CURL* curl;
    Request* req;
    Response* resp;
    const std::atomic<bool>* cancel;
    std::exception_ptr sink_error;
    bool too_large = false;
    size_t sent = 0;
};

size_t on_header(char* p, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    std::string line(p, size * n);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line.rfind("HTTP/", 0) == 0) {
        t->resp->headers.clear();  // a new response (redirect, 100 Continue)
    } else if (size_t colon = line.find(':'); colon != std::string::npos) {
        size_t v = line.find_first_not_of(" \t", colon + 1);
        t->resp->headers[lower(line.substr(0, colon))] = v == std::string::npos ? "" : line.substr(v);
    }
    return size * n;
}

size_t on_body(char* p, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    size_t len = size * n;
    long status = 0;
    curl_api().easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300 && t->req->sink) {
        try {
            t->req->sink(p, len);
        } catch (...) {
            t->sink_error = std::current_exception();
            return 0;
        }
        return len;
    }
    size_t cap = status >= 200 && status < 300 ? t->req->max_body : kMaxErrorBody;
    if (t->resp->body.size() + len > cap) {
        t->too_large = true;
        return 0;
    }
    t->resp->body.append(p, len);
    return len;
}

size_t on_read(char* buf, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    size_t want = size * n;
    if (t->req->data) {
        size_t left = t->req->data->size() - t->sent;
        size_t k = std::min(left, want);
        std::copy_n(t->req->data->data() + t->sent, k, buf);
        t->sent += k;
        return k;
    }
    for (;;) {
        ssize_t got = ::read(t->req->fd, buf, want);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return CURL_READFUNC_ABORT;
        return static_cast<size_t>(got);
    }
}

int on_progress(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* t = static_cast<Transfer*>(ud);
    return t->cancel && t->cancel->load() ? 1 : 0;
}

bool retryable(CURLcode c) {
    switch (c) {
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
            return true;
        default:
            return false;
    }
}

bool retryable(long status) { return status == 429 || status == 500 || status == 502 || status == 503 || status == 504; }

// The message of a registry's error document ({"errors":[{"code","message"}]}).
std::string registry_error_text(const std::string& body) {
    json j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("errors") || !j["errors"].is_array()) return {};
    std::vector<std::string> parts;
    for (auto& e : j["errors"]) {
        if (!e.is_object()) continue;
        std::string msg = e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : "";
        std::string code = e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>() : "";
        if (msg.empty()) msg = lower(code);
        if (!msg.empty()) parts.push_back(msg);
    }
    std::string s;
    for (auto& p : parts) s += (s.empty() ? "" : "; ") + p;
    return s.size() > 500 ? s.substr(0, 500) + "…" : s;
}

}  // namespace

// --- WWW-Authenticate -------------------------------------------------------------

std::optional<AuthChallenge> parse_auth_challenge(std::string_view h) {
    size_t i = 0;
    auto skip_ws = [&] {
        while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
    };
    auto token = [&] {
        size_t start = i;
        while (i < h.size() && h[i] != '=' && h[i] != ',' && h[i] != ' ' && h[i] != '\t') ++i;
        return std::string(h.substr(start, i - start));
    };
    std::optional<AuthChallenge> found;
    while (i < h.size()) {
        skip_ws();
        AuthChallenge c;
        c.scheme = lower(token());
        if (c.scheme.empty()) {
            ++i;
            continue;
        }
        // auth-params: key=value or key="quoted, with \"escapes\"", comma-separated.
        for (;;) {
            skip_ws();
            size_t mark = i;
            std::string key = lower(token());
            skip_ws();
            if (key.empty() || i >= h.size() || h[i] != '=') {
                i = mark;  // the next challenge's scheme
                break;
            }
            ++i;
            skip_ws();
            std::string value;
            if (i < h.size() && h[i] == '"') {
                for (++i; i < h.size() && h[i] != '"'; ++i) {
                    if (h[i] == '\\' && i + 1 < h.size()) ++i;
                    value += h[i];
                }
                if (i < h.size()) ++i;
            } else {
                while (i < h.size() && h[i] != ',' && h[i] != ' ' && h[i] != '\t') value += h[i++];
            }
            c.params[key] = value;
            skip_ws();
            if (i < h.size() && h[i] == ',') ++i;
        }
        if (!found && (c.scheme == "basic" || c.scheme == "bearer")) found = std::move(c);
        if (i < h.size() && h[i] == ',') ++i;
    }
    return found;
}

// --- shared state and connections ---------------------------------------------------

struct RegistryClient::Shared {
    std::string registry;  // as references name it
    std::string api_host;  // where the API is ("registry-1.docker.io" for docker.io)
    RegistryOptions opts;
    std::string ca_bundle;                // system CAs + the registry's *.crt; empty: curl's default
    std::string client_cert, client_key;  // from the certs dir, if any

    std::mutex ping_mu;
    bool pinged = false;
    std::string scheme = "https";

    std::mutex auth_mu;
    enum class Auth { None, Basic, Bearer } auth = Auth::None;
    std::string realm, service;
    std::map<std::string, std::string> tokens;  // scope -> bearer token

    Shared(std::string reg, RegistryOptions o) : registry(std::move(reg)), opts(std::move(o)) {
        api_host = registry == "docker.io" ? "registry-1.docker.io" : registry;
        load_certs();
    }

    std::string base() const { return scheme + "://" + api_host; }

    void load_certs() {
        std::vector<std::string> dirs;
        if (!opts.cert_dir.empty())
            dirs = {is_dir(opts.cert_dir + "/" + registry) ? opts.cert_dir + "/" + registry : opts.cert_dir};
        else
            dirs = {"/etc/vitro/certs.d/" + registry, "/etc/containers/certs.d/" + registry};
        for (auto& dir : dirs) {
            if (!is_dir(dir)) {
                if (!opts.cert_dir.empty()) throw Error(ENOENT, "certificate directory " + dir + ": not a directory");
                continue;
            }
            std::string cas;
            for (auto& name : list_dir(dir)) {
                std::string p = dir + "/" + name;
                if (ends_with(name, ".crt")) {
                    cas += read_file(p) + "\n";
                } else if (ends_with(name, ".cert") && client_cert.empty()) {
                    std::string key = dir + "/" + name.substr(0, name.size() - 5) + ".key";
                    if (!path_exists(key)) throw Error(ENOENT, p + ": client certificate without " + key);
                    client_cert = p;
                    client_key = key;
                }
            }
            if (!cas.empty()) {
                const std::string system = "/etc/ssl/certs/ca-certificates.crt";
                ca_bundle = (path_exists(system) ? read_file(system) + "\n" : std::string()) + cas;
            }
            return;  // the first directory that exists is the one used
        }
    }
};

struct RegistryClient::Conn {
    UniqueCurl curl = new_curl();
    char errbuf[CURL_ERROR_SIZE] = {};
    const std::atomic<bool>* cancel = nullptr;

    bool cancelled() const { return cancel && cancel->load(); }

    Response perform_once(Shared& s, Request& req, const std::vector<std::string>& headers) {
        CURL* h = curl.get();
        curl_api().easy_reset(h);  // keeps the connection cache
        errbuf[0] = 0;
        Response resp;
        Transfer t{h, &req, &resp, cancel, nullptr};
        curl_api().easy_setopt(h, CURLOPT_URL, req.url.c_str());
        curl_api().easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl_api().easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_api().easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_api().easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_api().easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_api().easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
        curl_api().easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
        curl_api().easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);  // stalled for a minute: give up
        curl_api().easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_api().easy_setopt(h, CURLOPT_USERAGENT, "vitro/" VITRO_VERSION);
        curl_api().easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_api().easy_setopt(h, CURLOPT_HEADERDATA, &t);
        curl_api().easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_api().easy_setopt(h, CURLOPT_WRITEDATA, &t);
        curl_api().easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_api().easy_setopt(h, CURLOPT_XFERINFODATA, &t);
        curl_api().easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        if (req.buffer_size > 0) curl_api().easy_setopt(h, CURLOPT_BUFFERSIZE, req.buffer_size);
        if (!s.opts.tls_verify) {
            curl_api().easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_api().easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        } else if (!s.ca_bundle.empty()) {
            curl_blob blob{s.ca_bundle.data(), s.ca_bundle.size(), CURL_BLOB_NOCOPY};
            curl_api().easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
        }
        if (!s.client_cert.empty()) {
            curl_api().easy_setopt(h, CURLOPT_SSLCERT, s.client_cert.c_str());
            curl_api().easy_setopt(h, CURLOPT_SSLKEY, s.client_key.c_str());
        }
        if (req.method == "HEAD") {
            curl_api().easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (req.method == "POST") {
            curl_api().easy_setopt(h, CURLOPT_POST, 1L);
            curl_api().easy_setopt(h, CURLOPT_POSTFIELDS, "");
            curl_api().easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
        } else if (req.method == "PUT") {
            curl_api().easy_setopt(h, CURLOPT_UPLOAD, 1L);
            curl_api().easy_setopt(h, CURLOPT_READFUNCTION, on_read);
            curl_api().easy_setopt(h, CURLOPT_READDATA, &t);
            curl_off_t size = req.data ? static_cast<curl_off_t>(req.data->size()) : req.size;
            curl_api().easy_setopt(h, CURLOPT_INFILESIZE_LARGE, size);
        } else if (req.method != "GET") {
            curl_api().easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
        }
        UniqueSlist list;
        for (auto& hdr : headers) {
            curl_slist* n = curl_api().slist_append(list.get(), hdr.c_str());
            if (!n) throw Error(ENOMEM, "curl_slist_append failed");
            (void)list.release();
            list.reset(n);
        }
        curl_slist* expect = curl_api().slist_append(list.get(), "Expect:");  // no 100-continue round trip
        if (!expect) throw Error(ENOMEM, "curl_slist_append failed");
        (void)list.release();
        list.reset(expect);
        curl_api().easy_setopt(h, CURLOPT_HTTPHEADER, list.get());

        CURLcode rc = curl_api().easy_perform(h);
        if (t.sink_error) std::rethrow_exception(t.sink_error);
        if (t.too_large) throw Error(EFBIG, req.method + " " + req.url + ": answer larger than " +
                                                std::to_string(req.max_body) + " bytes");
        if (rc != CURLE_OK) {
            std::string msg = curl_api().easy_strerror(rc);
            if (rc == CURLE_ABORTED_BY_CALLBACK && cancelled()) msg = "cancelled";
            else if (errbuf[0]) msg += std::string(": ") + errbuf;
            throw CurlFailure{rc, msg};
        }
        curl_api().easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
        return resp;
    }

    // One exchange: ping first, authentication, retries. A 401 that
    // authentication cannot answer is returned, as every other status.
    Response perform(Shared& s, Request& req) {
        if (!req.raw) ensure_pinged(s);
        bool auth_retried = false;
        for (int attempt = 1;;) {
            if (req.before_attempt) req.before_attempt();
            if (req.fd >= 0 && ::lseek(req.fd, 0, SEEK_SET) < 0) throw_errno("rewind upload of", req.url);
            std::vector<std::string> headers = req.headers;
            bool sent_auth = false;
            if (!req.raw) {
                if (std::string a = auth_header(s, req.scope); !a.empty()) {
                    headers.push_back(a);
                    sent_auth = true;
                }
            }
            Response r;
            try {
                r = perform_once(s, req, headers);
            } catch (const CurlFailure& f) {
                if (retryable(f.code) && attempt < kTries && !cancelled()) {
                    log::debug(req.method + " " + req.url + ": " + f.message + ", retrying");
                    backoff(attempt++);
                    continue;
                }
                throw Error(f.code == CURLE_ABORTED_BY_CALLBACK ? ECANCELED : EIO, req.method + " " + req.url + ": " + f.message);
            }
            if (r.status == 401 && !req.raw && !auth_retried) {
                auth_retried = true;
                if (answer_challenge(s, r, req.scope, sent_auth)) continue;
                return r;
            }
            if (retryable(r.status) && attempt < kTries && !cancelled()) {
                log::debug(req.method + " " + req.url + ": HTTP " + std::to_string(r.status) + ", retrying");
                backoff(attempt++);
                continue;
            }
            return r;
        }
    }

    static void backoff(int attempt) { std::this_thread::sleep_for(std::chrono::milliseconds(250 << (attempt - 1))); }

    // GET /v2/ once per registry: picks the scheme and learns the challenge.
    void ensure_pinged(Shared& s) {
        std::lock_guard lk(s.ping_mu);
        if (s.pinged) return;
        std::vector<std::string> schemes{"https"};
        if (!s.opts.tls_verify) schemes.push_back("http");
        std::string failures;
        for (auto& scheme : schemes) {
            Request req;
            req.url = scheme + "://" + s.api_host + "/v2/";
            req.raw = true;
            Response r;
            try {
                r = perform(s, req);
            } catch (const Error& e) {
                failures += (failures.empty() ? "" : "; ") + std::string(e.what());
                if (s.opts.tls_verify && std::string_view(e.what()).find("SSL") != std::string_view::npos)
                    failures += " (a plain HTTP registry? --tls-verify=false allows it)";
                continue;
            }
            if (r.status == 401) {
                if (auto c = parse_auth_challenge(r.header("www-authenticate"))) learn(s, *c);
            } else if (!r.ok()) {
                throw Error(EIO, "pinging registry " + s.registry + ": GET " + req.url + ": HTTP " +
                                     std::to_string(r.status) + " (not a registry v2 API?)");
            }
            s.scheme = scheme;
            s.pinged = true;
            return;
        }
        throw Error(EHOSTUNREACH, "pinging registry " + s.registry + ": " + failures);
    }

    static void learn(Shared& s, const AuthChallenge& c) {
        std::lock_guard lk(s.auth_mu);
        if (c.scheme == "basic") {
            s.auth = Shared::Auth::Basic;
        } else {
            s.auth = Shared::Auth::Bearer;
            auto realm = c.params.find("realm");
            if (realm != c.params.end()) s.realm = realm->second;
            auto service = c.params.find("service");
            s.service = service != c.params.end() ? service->second : "";
        }
    }

    static std::string basic_header(const Credentials& c) {
        return "Authorization: Basic " + base64_encode(c.username + ":" + c.password);
    }

    // The Authorization header the registry wants for `scope`: credentials
    // (Basic) or a token (Bearer, fetched once per scope); empty when none.
    std::string auth_header(Shared& s, const std::string& scope) {
        std::lock_guard lk(s.auth_mu);
        if (s.auth == Shared::Auth::Basic) return s.opts.credentials ? basic_header(*s.opts.credentials) : "";
        if (s.auth != Shared::Auth::Bearer) return "";
        auto it = s.tokens.find(scope);
        if (it == s.tokens.end()) it = s.tokens.emplace(scope, fetch_token(s, scope)).first;
        return "Authorization: Bearer " + it->second;
    }

    // A 401 came back: true when a retry with (new) authentication makes sense.
    bool answer_challenge(Shared& s, const Response& r, const std::string& scope, bool sent_auth) {
        auto c = parse_auth_challenge(r.header("www-authenticate"));
        if (!c) return false;
        learn(s, *c);
        std::lock_guard lk(s.auth_mu);
        if (c->scheme == "basic") return s.opts.credentials && !sent_auth;
        std::string want = scope;
        if (auto sc = c->params.find("scope"); sc != c->params.end() && !sc->second.empty()) want = sc->second;
        std::string token = fetch_token(s, want);
        s.tokens[scope] = token;
        s.tokens[want] = token;
        return true;
    }

    // GET realm?service=…&scope=… (auth_mu held). Wrong credentials: EACCES.
    std::string fetch_token(Shared& s, const std::string& scope) {
        if (s.realm.empty()) throw Error(EPROTO, "registry " + s.registry + ": Bearer challenge without a realm");
        Request req;
        req.raw = true;
        req.url = s.realm + (s.realm.find('?') == std::string::npos ? "?" : "&");
        if (!s.service.empty()) req.url += "service=" + url_escape(s.service);
        if (!scope.empty()) req.url += (s.service.empty() ? "" : "&") + std::string("scope=") + url_escape(scope);
        if (s.opts.credentials) {
            req.headers.push_back(basic_header(*s.opts.credentials));
            req.url += "&account=" + url_escape(s.opts.credentials->username);
        }
        Response r = perform(s, req);
        if (r.status == 401 || r.status == 403)
            throw Error(EACCES, "getting a token from " + s.realm + ": " +
                                    (s.opts.credentials ? "invalid username/password" : "authentication required") +
                                    " (HTTP " + std::to_string(r.status) + ")");
        if (!r.ok())
            throw Error(EIO, "getting a token from " + s.realm + ": HTTP " + std::to_string(r.status));
        json j = json::parse(r.body, nullptr, false);
        std::string token;
        if (j.is_object()) {
            for (const char* k : {"token", "access_token"})
                if (j.contains(k) && j[k].is_string() && !j[k].get<std::string>().empty()) {
                    token = j[k].get<std::string>();
                    break;
                }
        }
        if (token.empty() || token.find_first_of("\r\n") != std::string::npos)
            throw Error(EPROTO, "getting a token from " + s.realm + ": answer has no token");
        return token;
    }
};

RegistryClient::RegistryClient(std::string registry, RegistryOptions opts)
    : shared_(std::make_shared<Shared>(std::move(registry), std::move(opts))), conn_(std::make_unique<Conn>()) {}
RegistryClient::RegistryClient(std::shared_ptr<Shared> shared)
    : shared_(std::move(shared)), conn_(std::make_unique<Conn>()) {}
RegistryClient::RegistryClient(RegistryClient&&) noexcept = default;
RegistryClient& RegistryClient::operator=(RegistryClient&&) noexcept = default;
RegistryClient::~RegistryClient() = default;

RegistryClient RegistryClient::fork() const { return RegistryClient(shared_); }
const std::string& RegistryClient::registry() const { return shared_->registry; }
void RegistryClient::set_cancel_flag(const std::atomic<bool>* flag) { conn_->cancel = flag; }


namespace {

std::string pull_scope(const std::string& repo) { return "repository:" + repo + ":pull"; }
std::string push_scope(const std::string& repo) { return "repository:" + repo + ":pull,push"; }

// "WHAT: <registry's message> (METHOD URL: HTTP n)", errno by status.
Error http_error(const std::string& what, const Request& req, const Response& r, bool have_credentials) {
    std::string detail = registry_error_text(r.body);
    if (r.status == 401)
        detail = have_credentials ? "invalid username/password or access denied" : "authentication required";
    int err = r.status == 404 ? ENOENT : (r.status == 401 || r.status == 403) ? EACCES : EIO;
    std::string where = req.method + " " + req.url + ": HTTP " + std::to_string(r.status);
    return Error(err, what + ": " + (detail.empty() ? where : detail + " (" + where + ")"));
}

bool is_schema1(std::string_view mt) {
    return mt == "application/vnd.docker.distribution.manifest.v1+json" ||
           mt == "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

// The media type of a manifest document whose Content-Type says nothing useful.
std::string sniff_media_type(const std::string& body) {
    json j = json::parse(body, nullptr, false);
    if (!j.is_object()) return {};
    if (j.contains("mediaType") && j["mediaType"].is_string()) return j["mediaType"].get<std::string>();
    if (j.contains("schemaVersion") && j["schemaVersion"] == 1) return "application/vnd.docker.distribution.manifest.v1+json";
    if (j.contains("manifests")) return std::string(media::kOciIndex);
    if (j.contains("layers") || j.contains("config")) return std::string(media::kOciManifest);
    return {};
}

}  // namespace

void RegistryClient::check_login() {
    Shared& s = *shared_;
    Request req;
    Response r;
    try {
        conn_->ensure_pinged(s);
        req.url = s.base() + "/v2/";
        r = conn_->perform(s, req);
    } catch (const Error& e) {
        if (e.code() == EACCES) throw Error(EACCES, "logging in to " + s.registry + ": invalid username/password");
        throw e.wrap("logging in to " + s.registry);
    }
    if (r.status == 401)
        throw Error(EACCES, "logging in to " + s.registry + ": " +
                                (s.opts.credentials ? "invalid username/password" : "authentication required"));
    if (!r.ok()) throw http_error("logging in to " + s.registry, req, r, s.opts.credentials.has_value());
}

FetchedManifest RegistryClient::get_manifest(const std::string& repo, const std::string& ref) {
    Shared& s = *shared_;
    std::string what = "reading manifest " + ref + " in " + s.registry + "/" + repo;
    try {
        conn_->ensure_pinged(s);
        Request req;
        req.url = s.base() + "/v2/" + repo + "/manifests/" + ref;
        req.scope = pull_scope(repo);
        req.max_body = kMaxManifest;
        req.headers.push_back("Accept: " + std::string(media::kOciManifest) + ", " + std::string(media::kOciIndex) + ", " +
                              std::string(media::kDockerManifest) + ", " + std::string(media::kDockerManifestList));
        Response r = conn_->perform(s, req);
        if (!r.ok()) throw http_error(what, req, r, s.opts.credentials.has_value());
        FetchedManifest m;
        m.body = std::move(r.body);
        m.digest = sha256_digest(m.body);
        std::string ct = r.header("content-type");
        ct = ct.substr(0, ct.find(';'));
        while (!ct.empty() && ct.back() == ' ') ct.pop_back();
        m.media_type = is_index_media_type(ct) || is_manifest_media_type(ct) || is_schema1(ct) ? ct : sniff_media_type(m.body);
        if (is_schema1(m.media_type))
            throw Error(ENOTSUP, what + ": Docker schema 1 manifests are not supported (push the image again with a current client)");
        if (!is_index_media_type(m.media_type) && !is_manifest_media_type(m.media_type))
            throw Error(EINVAL, what + ": unsupported manifest media type \"" + m.media_type + "\"");
        if (ref.rfind("sha256:", 0) == 0 && m.digest != ref)
            throw Error(EINVAL, what + ": the registry served content that hashes to " + m.digest);
        std::string served = r.header("docker-content-digest");
        if (!served.empty() && served.rfind("sha256:", 0) == 0 && served != m.digest)
            throw Error(EINVAL, what + ": Docker-Content-Digest " + served + " but the content hashes to " + m.digest);
        return m;
    } catch (const Error& e) {
        if (std::string_view(e.what()).rfind(what, 0) == 0) throw;
        throw e.wrap(what);
    }
}

bool RegistryClient::fetch_blob(const Store& store, const std::string& repo, const Descriptor& d, BlobConsumer* also) {
    Shared& s = *shared_;
    std::string what = "fetching blob " + d.digest + " from " + s.registry + "/" + repo;
    try {
        check_digest(d.digest, "blob digest");
        std::optional<BlobWriter> w;
        Request req;
        req.url = s.base() + "/v2/" + repo + "/blobs/" + d.digest;
        req.scope = pull_scope(repo);
        req.buffer_size = kBlobBuffer;
        req.before_attempt = [&] {
            w.reset();
            w.emplace(store.begin_blob());
            if (also) also->begin();
        };
        req.sink = [&](const char* p, size_t n) {
            w->write(p, n);
            if (w->size() > d.size)
                throw Error(EINVAL, "more than the " + std::to_string(d.size) + " bytes the manifest gives");
            if (also) also->consume(p, n);
        };
        Response r = conn_->perform(s, req);
        if (!r.ok()) throw http_error(what, req, r, s.opts.credentials.has_value());
        // The blob's own digest first: when the bytes are corrupt, that is
        // the error to report, whatever the consumer made of them. (The
        // blob's fsync there also gives the consumer time to catch up.)
        w->verify(d.digest, d.size);
        if (also) also->finish();
        bool added = false;
        w->commit(d.digest, d.size, &added);
        return added;
    } catch (const Error& e) {
        if (std::string_view(e.what()).rfind(what, 0) == 0) throw;
        throw e.wrap(what);
    }
}

bool RegistryClient::blob_exists(const std::string& repo, const std::string& digest) {
    Shared& s = *shared_;
    Request req;
    req.method = "HEAD";
    req.url = s.base() + "/v2/" + repo + "/blobs/" + digest;
    req.scope = push_scope(repo);
    Response r = conn_->perform(s, req);
    if (r.ok()) return true;
    if (r.status == 404) return false;
    throw http_error("checking blob " + digest + " in " + s.registry + "/" + repo, req, r, s.opts.credentials.has_value());
}

bool RegistryClient::push_blob(const Store& store, const std::string& repo, const Descriptor& d) {
    Shared& s = *shared_;
    std::string what = "uploading blob " + d.digest + " to " + s.registry + "/" + repo;
    try {
        conn_->ensure_pinged(s);
        if (blob_exists(repo, d.digest)) return false;
        Request post;
        post.method = "POST";
        post.url = s.base() + "/v2/" + repo + "/blobs/uploads/";
        post.scope = push_scope(repo);
        Response r = conn_->perform(s, post);
        if (r.status != 202) throw http_error(what, post, r, s.opts.credentials.has_value());
        std::string location = r.header("location");
        if (location.empty()) throw Error(EPROTO, "the registry gave no upload Location");

        UniqueFd fd = store.open_blob(d.digest);
        struct stat st;
        if (::fstat(fd.get(), &st) < 0) throw_errno("stat blob", d.digest);
        Request put;
        put.method = "PUT";
        put.url = resolve_url(post.url, location, "digest=" + d.digest);
        put.scope = push_scope(repo);
        put.fd = fd.get();
        put.size = st.st_size;
        put.headers.push_back("Content-Type: application/octet-stream");
        r = conn_->perform(s, put);
        if (r.status != 201) throw http_error(what, put, r, s.opts.credentials.has_value());
        return true;
    } catch (const Error& e) {
        if (std::string_view(e.what()).rfind(what, 0) == 0) throw;
        throw e.wrap(what);
    }
}

std::string RegistryClient::put_manifest(const std::string& repo, const std::string& tag, const std::string& media_type,
                                         const std::string& body) {
    Shared& s = *shared_;
    std::string what = "writing manifest " + tag + " to " + s.registry + "/" + repo;
    try {
        conn_->ensure_pinged(s);
        Request put;
        put.method = "PUT";
        put.url = s.base() + "/v2/" + repo + "/manifests/" + tag;
        put.scope = push_scope(repo);
        put.data = &body;
        put.headers.push_back("Content-Type: " + media_type);
        Response r = conn_->perform(s, put);
        if (r.status != 201 && r.status != 200) throw http_error(what, put, r, s.opts.credentials.has_value());
        std::string digest = sha256_digest(body);
        std::string served = r.header("docker-content-digest");
        if (!served.empty() && served != digest)
            throw Error(EINVAL, "the registry stored it as " + served + ", the manifest hashes to " + digest);
        return digest;
    } catch (const Error& e) {
        if (std::string_view(e.what()).rfind(what, 0) == 0) throw;
        throw e.wrap(what);
    }
}

}  // namespace vitro::image
