/* Peer and floor: a C client on libcurl's multi interface, N transfers at
 * a time on kept-alive connections, fetching the manifests of
 * REPO:t0..t{COUNT-1} with the same Accept header as the others. It checks
 * each status and drops the bodies: no digest, no JSON, nothing but HTTP,
 * so its CPU per manifest is what libcurl itself costs a client here.
 *
 * It drives libcurl the cheapest way libcurl offers, as ocirpc does: the
 * socket interface over epoll (libcurl works on the one socket that is
 * ready, not on all of them), no signal handling (CURLOPT_NOSIGNAL: without
 * it libcurl sets and restores SIGPIPE's handler around every call, 24
 * rt_sigaction calls a manifest), and no proxy lookup in the environment
 * on every transfer.
 *
 * With HEADER (e.g. "Authorization: Bearer TOKEN") every request carries
 * that line too, as a registry with token auth needs: the token's length
 * is then part of what libcurl costs (it formats each request's header
 * lines byte by byte).
 *
 *   curl_multi HOST REPO COUNT WORKERS [HEADER]
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>

static const char *accept_header =
    "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

static int epoll_fd;
/* When libcurl wants its timers run: -1 none, 0 now, else milliseconds. */
static long timer_ms = -1;

static size_t drop(char *data, size_t size, size_t count, void *context) {
    (void)data;
    (void)context;
    return size * count;
}

/* libcurl's socket callback: which events to wait for on `socket`. */
static int watch(CURL *easy, curl_socket_t socket, int what, void *context, void *socket_context) {
    (void)easy;
    (void)context;
    (void)socket_context;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(epoll_fd, EPOLL_CTL_DEL, socket, NULL);
        return 0;
    }
    struct epoll_event event = {0};
    event.data.fd = socket;
    event.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, socket, &event) != 0) epoll_ctl(epoll_fd, EPOLL_CTL_ADD, socket, &event);
    return 0;
}

static int set_timer(CURLM *multi, long milliseconds, void *context) {
    (void)multi;
    (void)context;
    timer_ms = milliseconds;
    return 0;
}

static void start(CURLM *multi, CURL *easy, const char *host, const char *repo, int index) {
    char url[1024];
    snprintf(url, sizeof url, "http://%s/v2/%s/manifests/t%d", host, repo, index);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_multi_add_handle(multi, easy);
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: curl_multi HOST REPO COUNT WORKERS [HEADER]\n");
        return 2;
    }
    const char *host = argv[1], *repo = argv[2];
    int count = atoi(argv[3]), workers = atoi(argv[4]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)workers);
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, watch);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, set_timer);
    struct curl_slist *headers = curl_slist_append(NULL, accept_header);
    if (argc == 6) headers = curl_slist_append(headers, argv[5]);
    int next = 0, done = 0, failed = 0, running = 0;
    for (int i = 0; i < workers && next < count; i++) {
        CURL *easy = curl_easy_init();
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, drop);
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy, CURLOPT_PROXY, "");
        start(multi, easy, host, repo, next++);
    }
    while (done < count) {
        if (timer_ms == 0) {
            timer_ms = -1;
            curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        struct epoll_event events[16];
        int ready = epoll_wait(epoll_fd, events, 16, timer_ms < 0 ? 1000 : (int)timer_ms);
        if (ready == 0) curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
        for (int i = 0; i < ready; i++) {
            int mask = (events[i].events & (EPOLLIN | EPOLLHUP) ? CURL_CSELECT_IN : 0) |
                       (events[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                       (events[i].events & EPOLLERR ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(multi, events[i].data.fd, mask, &running);
        }
        int left = 0;
        CURLMsg *message;
        while ((message = curl_multi_info_read(multi, &left))) {
            if (message->msg != CURLMSG_DONE) continue;
            CURL *easy = message->easy_handle;
            long status = 0;
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
            if (message->data.result != CURLE_OK || status != 200) failed++;
            done++;
            curl_multi_remove_handle(multi, easy);
            if (next < count) {
                start(multi, easy, host, repo, next++);
            } else {
                curl_easy_cleanup(easy);
            }
        }
    }
    curl_slist_free_all(headers);
    curl_multi_cleanup(multi);
    if (failed) {
        fprintf(stderr, "%d of %d requests failed\n", failed, count);
        return 1;
    }
    return 0;
}
