// The variadic curl_easy_setopt, curl_easy_getinfo, curl_multi_setopt behind the typed declarations of include/shim.h,
// called through the library loaded on first use (lazy.h).
#include "shim.h"

#include "lazy.h"

CURLcode kh_curl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return KH_CURL_curl_easy_setopt(handle, option, value);
}

CURLcode kh_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return KH_CURL_curl_easy_setopt(handle, option, value);
}

CURLcode kh_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return KH_CURL_curl_easy_setopt(handle, option, value);
}

CURLcode kh_curl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return KH_CURL_curl_easy_setopt(handle, option, value);
}

CURLcode kh_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *list) {
    return KH_CURL_curl_easy_setopt(handle, option, list);
}

CURLcode kh_curl_easy_setopt_write_callback(CURL *handle, CURLoption option, curl_write_callback callback) {
    return KH_CURL_curl_easy_setopt(handle, option, callback);
}

CURLcode kh_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return KH_CURL_curl_easy_getinfo(handle, info, value);
}

CURLcode kh_curl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    return KH_CURL_curl_easy_getinfo(handle, info, value);
}

CURLcode kh_curl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return KH_CURL_curl_easy_getinfo(handle, info, value);
}

CURLcode kh_curl_easy_getinfo_string(CURL *handle, CURLINFO info, const char **value) {
    return KH_CURL_curl_easy_getinfo(handle, info, value);
}

CURLMcode kh_curl_multi_setopt_long(CURLM *handle, CURLMoption option, long value) {
    return KH_CURL_curl_multi_setopt(handle, option, value);
}
