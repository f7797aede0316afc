/* Peer and floor: a C client on libcurl's multi interface, N transfers at
 * a time on kept-alive connections, fetching the manifests of
 * REPO:t0..t{COUNT-1} with the same Accept header as the others. It checks
 * each status and drops the bodies: no digest, no JSON, nothing but HTTP,
 * so its CPU per manifest is what libcurl itself costs a client here.
 *
 *   curl_multi HOST REPO COUNT WORKERS
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

static const char *accept_header =
    "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

static size_t drop(char *data, size_t size, size_t count, void *context) {
    (void)data;
    (void)context;
    return size * count;
}

static void start(CURLM *multi, CURL *easy, const char *host, const char *repo, int index) {
    char url[1024];
    snprintf(url, sizeof url, "http://%s/v2/%s/manifests/t%d", host, repo, index);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_multi_add_handle(multi, easy);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: curl_multi HOST REPO COUNT WORKERS\n");
        return 2;
    }
    const char *host = argv[1], *repo = argv[2];
    int count = atoi(argv[3]), workers = atoi(argv[4]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)workers);
    struct curl_slist *headers = curl_slist_append(NULL, accept_header);
    int next = 0, done = 0, failed = 0;
    for (int i = 0; i < workers && next < count; i++) {
        CURL *easy = curl_easy_init();
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, drop);
        start(multi, easy, host, repo, next++);
    }
    while (done < count) {
        int running = 0, left = 0;
        curl_multi_perform(multi, &running);
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
        if (done < count) curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    curl_slist_free_all(headers);
    curl_multi_cleanup(multi);
    if (failed) {
        fprintf(stderr, "%d of %d requests failed\n", failed, count);
        return 1;
    }
    return 0;
}
