// libcurl, loaded on first use (dlopen) rather than linked: only the registry
// commands need it, and its thirty-odd dependent libraries would otherwise be
// mapped and relocated at every start of the vitro binary — twice per
// `vitro run` (the protected re-exec), about 4 ms each.
#pragma once

#include <curl/curl.h>

namespace vitro::image {

struct CurlApi {
    decltype(&::curl_global_init) global_init;
    decltype(&::curl_easy_init) easy_init;
    decltype(&::curl_easy_cleanup) easy_cleanup;
    decltype(&::curl_easy_reset) easy_reset;
    decltype(&::curl_easy_setopt) easy_setopt;
    decltype(&::curl_easy_perform) easy_perform;
    decltype(&::curl_easy_getinfo) easy_getinfo;
    decltype(&::curl_easy_strerror) easy_strerror;
    decltype(&::curl_slist_append) slist_append;
    decltype(&::curl_slist_free_all) slist_free_all;
    decltype(&::curl_url) url;
    decltype(&::curl_url_cleanup) url_cleanup;
    decltype(&::curl_url_set) url_set;
    decltype(&::curl_url_get) url_get;
    decltype(&::curl_free) free;
};

// The loaded library (and curl_global_init done). Throws vitro::Error when
// libcurl.so.4 cannot be loaded.
const CurlApi& curl_api();

}  // namespace vitro::image
