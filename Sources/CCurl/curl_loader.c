// Loads libcurl with dlopen on first use and calls it through pointers
// resolved with dlsym (see include/CCurl.h for why).
#include "CCurl.h"
#include <dlfcn.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>

static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_reset)(CURL *);
    void (*easy_cleanup)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *);
    CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
    CURLMcode (*multi_add_handle)(CURLM *, CURL *);
    CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
    CURLMsg *(*multi_info_read)(CURLM *, int *);
    CURLMcode (*multi_socket_action)(CURLM *, curl_socket_t, int, int *);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} api;

// GnuTLS comes with Debian's libcurl (through librtmp and OpenLDAP) but no
// transfer here uses it: TLS is OpenSSL's, and only http and https are
// allowed. Left alone, its constructor would initialise it as it loads
// (0.7 M instructions of a process that answers one manifest) and its
// destructor undo that at exit. Defining this function is GnuTLS's
// documented way to skip both (GNUTLS_SKIP_GLOBAL_INIT in <gnutls/gnutls.h>);
// unlike GNUTLS_NO_IMPLICIT_INIT, no child process inherits it.
int _gnutls_global_init_skip(void);
int _gnutls_global_init_skip(void) { return 1; }

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *load_error = NULL;
static char load_error_text[512];

#define RESOLVE(field, name) \
    if (!(*(void **)&api.field = dlsym(library, name))) { \
        snprintf(load_error_text, sizeof load_error_text, "libcurl lacks %s", name); \
        load_error = load_error_text; \
        return; \
    }

static void load(void) {
    // OpenSSL, which libcurl initialises below, would otherwise free all it
    // holds in an atexit handler: work the exiting process does not need
    // (3% of the instructions of a process that answers one manifest).
    // Only the first initialisation decides, so this one comes first.
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
    // Lazy: the libraries libcurl links that were not built to bind at load
    // (nghttp2, Kerberos, librtmp...) resolve a function when it is first
    // called rather than every one of them now. libcurl and the TLS
    // libraries bind at load regardless (they are linked with -z now), and
    // every function used here is checked below.
    void *library = dlopen("libcurl.so.4", RTLD_LAZY | RTLD_LOCAL);
    if (!library) {
        snprintf(load_error_text, sizeof load_error_text, "cannot load libcurl.so.4: %s", dlerror());
        load_error = load_error_text;
        return;
    }
    RESOLVE(global_init, "curl_global_init")
    RESOLVE(easy_init, "curl_easy_init")
    RESOLVE(easy_reset, "curl_easy_reset")
    RESOLVE(easy_cleanup, "curl_easy_cleanup")
    RESOLVE(easy_strerror, "curl_easy_strerror")
    RESOLVE(easy_setopt, "curl_easy_setopt")
    RESOLVE(easy_getinfo, "curl_easy_getinfo")
    RESOLVE(multi_init, "curl_multi_init")
    RESOLVE(multi_cleanup, "curl_multi_cleanup")
    RESOLVE(multi_setopt, "curl_multi_setopt")
    RESOLVE(multi_add_handle, "curl_multi_add_handle")
    RESOLVE(multi_remove_handle, "curl_multi_remove_handle")
    RESOLVE(multi_info_read, "curl_multi_info_read")
    RESOLVE(multi_socket_action, "curl_multi_socket_action")
    RESOLVE(slist_append, "curl_slist_append")
    RESOLVE(slist_free_all, "curl_slist_free_all")
    if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) load_error = "libcurl failed to initialise";
}

const char *ocirpc_curl_load(void) {
    pthread_once(&once, load);
    return load_error;
}

// The functions below are called only after ocirpc_curl_load succeeded.
CURL *ocirpc_easy_init(void) { return api.easy_init(); }
void ocirpc_easy_reset(CURL *handle) { api.easy_reset(handle); }
void ocirpc_easy_cleanup(CURL *handle) { api.easy_cleanup(handle); }
const char *ocirpc_easy_strerror(CURLcode code) { return api.easy_strerror(code); }
CURLM *ocirpc_multi_init(void) { return api.multi_init(); }
CURLMcode ocirpc_multi_cleanup(CURLM *multi) { return api.multi_cleanup(multi); }
CURLMcode ocirpc_multi_add_handle(CURLM *multi, CURL *handle) { return api.multi_add_handle(multi, handle); }
CURLMcode ocirpc_multi_remove_handle(CURLM *multi, CURL *handle) { return api.multi_remove_handle(multi, handle); }
CURLMsg *ocirpc_multi_info_read(CURLM *multi, int *left) { return api.multi_info_read(multi, left); }
CURLMcode ocirpc_multi_socket_action(CURLM *multi, curl_socket_t socket, int mask, int *running) {
    return api.multi_socket_action(multi, socket, mask, running);
}
struct curl_slist *ocirpc_slist_append(struct curl_slist *list, const char *text) { return api.slist_append(list, text); }
void ocirpc_slist_free_all(struct curl_slist *list) { api.slist_free_all(list); }

CURLcode ocirpc_setopt_long(CURL *handle, CURLoption option, long value) { return api.easy_setopt(handle, option, value); }
CURLcode ocirpc_setopt_string(CURL *handle, CURLoption option, const char *value) { return api.easy_setopt(handle, option, value); }
CURLcode ocirpc_setopt_pointer(CURL *handle, CURLoption option, void *value) { return api.easy_setopt(handle, option, value); }
CURLcode ocirpc_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) { return api.easy_setopt(handle, option, value); }
CURLcode ocirpc_setopt_offset(CURL *handle, CURLoption option, curl_off_t value) { return api.easy_setopt(handle, option, value); }
CURLcode ocirpc_setopt_data_callback(CURL *handle, CURLoption option, ocirpc_data_callback value) {
    return api.easy_setopt(handle, option, value);
}
CURLcode ocirpc_setopt_prereq_callback(CURL *handle, ocirpc_prereq_callback value) {
    return api.easy_setopt(handle, CURLOPT_PREREQFUNCTION, value);
}
CURLcode ocirpc_setopt_opensocket_callback(CURL *handle, ocirpc_opensocket_callback value) {
    return api.easy_setopt(handle, CURLOPT_OPENSOCKETFUNCTION, value);
}
CURLcode ocirpc_getinfo_long(CURL *handle, CURLINFO info, long *value) { return api.easy_getinfo(handle, info, value); }
CURLcode ocirpc_getinfo_string(CURL *handle, CURLINFO info, char **value) { return api.easy_getinfo(handle, info, value); }
CURLcode ocirpc_getinfo_pointer(CURL *handle, CURLINFO info, void **value) { return api.easy_getinfo(handle, info, value); }

CURLMcode ocirpc_multi_setopt_long(CURLM *multi, CURLMoption option, long value) { return api.multi_setopt(multi, option, value); }
CURLMcode ocirpc_multi_setopt_pointer(CURLM *multi, CURLMoption option, void *value) { return api.multi_setopt(multi, option, value); }
CURLMcode ocirpc_multi_setopt_socket_callback(CURLM *multi, ocirpc_socket_callback value) {
    return api.multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, value);
}
CURLMcode ocirpc_multi_setopt_timer_callback(CURLM *multi, ocirpc_timer_callback value) {
    return api.multi_setopt(multi, CURLMOPT_TIMERFUNCTION, value);
}
