// Typed wrappers for what Swift cannot import from curl/curl.h (variadic functions,
// function-like macros). Imported by the one wrapper module (KhHTTP) only.
#ifndef KH_CCURL_SHIM_H
#define KH_CCURL_SHIM_H

#include <curl/curl.h>

// MARK: curl_easy_setopt, one function per argument type

/// Options taking a long (CURLOPT_NOSIGNAL, CURLOPT_TIMEOUT_MS, CURLOPT_POST, ...).
static inline CURLcode kh_curl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

/// Options taking a NUL-terminated string (CURLOPT_URL, CURLOPT_AWS_SIGV4, ...).
static inline CURLcode kh_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

/// Options taking a data pointer (CURLOPT_WRITEDATA, CURLOPT_ERRORBUFFER, CURLOPT_POSTFIELDS, ...).
static inline CURLcode kh_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

/// Options taking a curl_off_t (CURLOPT_POSTFIELDSIZE_LARGE, CURLOPT_MAXFILESIZE_LARGE, ...).
static inline CURLcode kh_curl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

/// Options taking a header list (CURLOPT_HTTPHEADER).
static inline CURLcode kh_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *list) {
    return curl_easy_setopt(handle, option, list);
}

/// CURLOPT_WRITEFUNCTION and CURLOPT_HEADERFUNCTION.
static inline CURLcode kh_curl_easy_setopt_write_callback(CURL *handle, CURLoption option, curl_write_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

// MARK: curl_easy_getinfo, one function per result type

static inline CURLcode kh_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode kh_curl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    return curl_easy_getinfo(handle, info, value);
}

/// CURLINFO_*_TIME_T (microseconds) and other curl_off_t results.
static inline CURLcode kh_curl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

/// String results: the pointer is owned by the handle and valid until it is cleaned up.
static inline CURLcode kh_curl_easy_getinfo_string(CURL *handle, CURLINFO info, const char **value) {
    return curl_easy_getinfo(handle, info, value);
}

// MARK: curl_multi_setopt

static inline CURLMcode kh_curl_multi_setopt_long(CURLM *handle, CURLMoption option, long value) {
    return curl_multi_setopt(handle, option, value);
}

// MARK: values Swift cannot see

/// CURLMsg.data.result (the union is imported, but naming it here keeps Swift code plain).
static inline CURLcode kh_curl_msg_result(const CURLMsg *message) {
    return message->data.result;
}

/// The size of the buffer CURLOPT_ERRORBUFFER writes into.
static inline int kh_curl_error_size(void) {
    return CURL_ERROR_SIZE;
}

#endif
