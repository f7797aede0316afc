// libcurl: the HTTP engine (multi interface). curl_easy_setopt and
// curl_easy_getinfo are variadic, which Swift cannot call: these typed
// wrappers pass each kind of argument through. The engine waits on
// libcurl's sockets with epoll, woken by an eventfd.
#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

static inline CURLcode ocirpc_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode ocirpc_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode ocirpc_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode ocirpc_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode ocirpc_setopt_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}
typedef size_t (*ocirpc_data_callback)(char *data, size_t size, size_t count, void *context);
static inline CURLcode ocirpc_setopt_data_callback(CURL *handle, CURLoption option, ocirpc_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode ocirpc_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}
static inline CURLcode ocirpc_getinfo_string(CURL *handle, CURLINFO info, char **value) {
    return curl_easy_getinfo(handle, info, value);
}
static inline CURLcode ocirpc_getinfo_pointer(CURL *handle, CURLINFO info, void **value) {
    return curl_easy_getinfo(handle, info, value);
}
static inline CURLMcode ocirpc_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}
typedef int (*ocirpc_prereq_callback)(void *context, char *primary_ip, char *local_ip, int primary_port, int local_port);
static inline CURLcode ocirpc_setopt_prereq_callback(CURL *handle, ocirpc_prereq_callback value) {
    return curl_easy_setopt(handle, CURLOPT_PREREQFUNCTION, value);
}
static inline CURLMcode ocirpc_multi_setopt_pointer(CURLM *multi, CURLMoption option, void *value) {
    return curl_multi_setopt(multi, option, value);
}
typedef int (*ocirpc_socket_callback)(CURL *easy, curl_socket_t socket, int what, void *context, void *socket_context);
static inline CURLMcode ocirpc_multi_setopt_socket_callback(CURLM *multi, ocirpc_socket_callback value) {
    return curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, value);
}
typedef int (*ocirpc_timer_callback)(CURLM *multi, long timeout_ms, void *context);
static inline CURLMcode ocirpc_multi_setopt_timer_callback(CURLM *multi, ocirpc_timer_callback value) {
    return curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, value);
}
