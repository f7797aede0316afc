// libcurl for the HTTP engine (multi interface), loaded when the engine
// first starts rather than when the process does: libcurl and the libraries
// it links (GnuTLS, libssh2, Kerberos, LDAP...) take several milliseconds to
// load, which a server that is spawned per session should not pay before
// its first answer. Every call goes through these typed wrappers, which
// also stand in for the variadic curl_easy_setopt and friends that Swift
// cannot call. The engine waits on libcurl's sockets with epoll, woken by
// an eventfd.
#ifndef OCIRPC_CCURL_H
#define OCIRPC_CCURL_H

#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

/// Loads libcurl and initialises it, once. NULL on success, else why not.
const char *ocirpc_curl_load(void);

CURL *ocirpc_easy_init(void);
void ocirpc_easy_reset(CURL *handle);
void ocirpc_easy_cleanup(CURL *handle);
const char *ocirpc_easy_strerror(CURLcode code);
CURLM *ocirpc_multi_init(void);
CURLMcode ocirpc_multi_cleanup(CURLM *multi);
CURLMcode ocirpc_multi_add_handle(CURLM *multi, CURL *handle);
CURLMcode ocirpc_multi_remove_handle(CURLM *multi, CURL *handle);
CURLMsg *ocirpc_multi_info_read(CURLM *multi, int *left);
CURLMcode ocirpc_multi_socket_action(CURLM *multi, curl_socket_t socket, int mask, int *running);
struct curl_slist *ocirpc_slist_append(struct curl_slist *list, const char *text);
void ocirpc_slist_free_all(struct curl_slist *list);

CURLcode ocirpc_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode ocirpc_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode ocirpc_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode ocirpc_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode ocirpc_setopt_offset(CURL *handle, CURLoption option, curl_off_t value);
typedef size_t (*ocirpc_data_callback)(char *data, size_t size, size_t count, void *context);
CURLcode ocirpc_setopt_data_callback(CURL *handle, CURLoption option, ocirpc_data_callback value);
typedef int (*ocirpc_prereq_callback)(void *context, char *primary_ip, char *local_ip, int primary_port, int local_port);
CURLcode ocirpc_setopt_prereq_callback(CURL *handle, ocirpc_prereq_callback value);
typedef curl_socket_t (*ocirpc_opensocket_callback)(void *context, curlsocktype purpose, struct curl_sockaddr *address);
CURLcode ocirpc_setopt_opensocket_callback(CURL *handle, ocirpc_opensocket_callback value);
CURLcode ocirpc_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode ocirpc_getinfo_string(CURL *handle, CURLINFO info, char **value);
CURLcode ocirpc_getinfo_pointer(CURL *handle, CURLINFO info, void **value);

CURLMcode ocirpc_multi_setopt_long(CURLM *multi, CURLMoption option, long value);
CURLMcode ocirpc_multi_setopt_pointer(CURLM *multi, CURLMoption option, void *value);
typedef int (*ocirpc_socket_callback)(CURL *easy, curl_socket_t socket, int what, void *context, void *socket_context);
CURLMcode ocirpc_multi_setopt_socket_callback(CURLM *multi, ocirpc_socket_callback value);
typedef int (*ocirpc_timer_callback)(CURLM *multi, long timeout_ms, void *context);
CURLMcode ocirpc_multi_setopt_timer_callback(CURLM *multi, ocirpc_timer_callback value);

#endif
