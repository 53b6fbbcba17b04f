// Typed wrappers for what Swift cannot import from curl/curl.h (variadic functions,
// function-like macros). Imported by the one wrapper module (KhHTTP) only.
#ifndef KH_CCURL_SHIM_H
#define KH_CCURL_SHIM_H

#include <curl/curl.h>

// MARK: curl_easy_setopt, one function per argument type

/// Options taking a long (CURLOPT_NOSIGNAL, CURLOPT_TIMEOUT_MS, CURLOPT_POST, ...).
CURLcode kh_curl_easy_setopt_long(CURL *handle, CURLoption option, long value);

/// Options taking a NUL-terminated string (CURLOPT_URL, CURLOPT_AWS_SIGV4, ...).
CURLcode kh_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value);

/// Options taking a data pointer (CURLOPT_WRITEDATA, CURLOPT_ERRORBUFFER, CURLOPT_POSTFIELDS, ...).
CURLcode kh_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value);

/// Options taking a curl_off_t (CURLOPT_POSTFIELDSIZE_LARGE, CURLOPT_MAXFILESIZE_LARGE, ...).
CURLcode kh_curl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);

/// Options taking a header list (CURLOPT_HTTPHEADER).
CURLcode kh_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *list);

/// CURLOPT_WRITEFUNCTION and CURLOPT_HEADERFUNCTION.
CURLcode kh_curl_easy_setopt_write_callback(CURL *handle, CURLoption option, curl_write_callback callback);

// MARK: curl_easy_getinfo, one function per result type

CURLcode kh_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);

CURLcode kh_curl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value);

/// CURLINFO_*_TIME_T (microseconds) and other curl_off_t results.
CURLcode kh_curl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value);

/// String results: the pointer is owned by the handle and valid until it is cleaned up.
CURLcode kh_curl_easy_getinfo_string(CURL *handle, CURLINFO info, const char **value);

// MARK: curl_multi_setopt

CURLMcode kh_curl_multi_setopt_long(CURLM *handle, CURLMoption option, long value);

// MARK: values Swift cannot see

/// CURLMsg.data.result (the union is imported, but naming it here keeps Swift code plain).
static inline CURLcode kh_curl_msg_result(const CURLMsg *message) {
    return message->data.result;
}

/// The size of the buffer CURLOPT_ERRORBUFFER writes into.
static inline int kh_curl_error_size(void) {
    return CURL_ERROR_SIZE;
}

/// Loads libcurl on first use (Packages/CKhLazy): dlopen, then dlsym of every function kh
/// calls, once per process. NULL when it is usable, else why not (naming the shared object
/// and the Debian package). KhHTTP calls it before any other libcurl function.
const char *kh_curl_load(void);

#endif
