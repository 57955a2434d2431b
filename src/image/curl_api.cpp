#include "image/curl_api.hpp"

#include <dlfcn.h>

#include <string>

#include "util/error.hpp"

namespace vitro::image {

namespace {
CurlApi load() {
    void* lib = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) throw Error(ENOENT, std::string("registry access needs libcurl (package libcurl4): ") + ::dlerror());
    auto sym = [lib](auto& fn, const char* name) {
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, name));
        if (!fn) throw Error(ENOENT, std::string("libcurl.so.4 lacks ") + name + " (libcurl 7.80 or later is needed)");
    };
    CurlApi api{};
    sym(api.global_init, "curl_global_init");
    sym(api.easy_init, "curl_easy_init");
    sym(api.easy_cleanup, "curl_easy_cleanup");
    sym(api.easy_reset, "curl_easy_reset");
    sym(api.easy_setopt, "curl_easy_setopt");
    sym(api.easy_perform, "curl_easy_perform");
    sym(api.easy_getinfo, "curl_easy_getinfo");
    sym(api.easy_strerror, "curl_easy_strerror");
    sym(api.slist_append, "curl_slist_append");
    sym(api.slist_free_all, "curl_slist_free_all");
    sym(api.url, "curl_url");
    sym(api.url_cleanup, "curl_url_cleanup");
    sym(api.url_set, "curl_url_set");
    sym(api.url_get, "curl_url_get");
    sym(api.free, "curl_free");
    CURLcode rc = api.global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) throw Error(std::string("curl_global_init: ") + api.easy_strerror(rc));
    return api;
}
}  // namespace

const CurlApi& curl_api() {
    static const CurlApi api = load();  // thread-safe; a failed load is retried next call
    return api;
}

}  // namespace vitro::image
