"""Peer: plain Python http.client, N threads, one kept-alive connection
each, fetching the manifests of REPO:t0..t{COUNT-1}. Answers a bearer
challenge the way registries ask (token fetched once per thread)."""
import base64
import http.client
import json
import re
import sys
import threading
import urllib.parse

ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
])


def main(host, repo, count, workers, user=None, password=None):
    next_index = iter(range(count))
    lock = threading.Lock()
    failures = []

    def token(challenge):
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = urllib.parse.urlsplit(fields.pop("realm"))
        connection = http.client.HTTPConnection(realm.netloc)
        headers = {}
        if user:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        connection.request("GET", realm.path + "?" + urllib.parse.urlencode(fields), headers=headers)
        answer = json.loads(connection.getresponse().read())
        return answer.get("token") or answer["access_token"]

    def work():
        try:
            fetch()
        except Exception as error:  # a thread that cannot go on fails the run
            failures.append(("thread", repr(error)))

    def fetch():
        connection = http.client.HTTPConnection(host)
        authorization = None
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            for _ in range(2):
                headers = {"Accept": ACCEPT}
                if authorization:
                    headers["Authorization"] = authorization
                connection.request("GET", f"/v2/{repo}/manifests/t{index}", headers=headers)
                response = connection.getresponse()
                body = response.read()
                if response.status == 401 and authorization is None:
                    authorization = "Bearer " + token(response.getheader("WWW-Authenticate"))
                    continue
                break
            if response.status != 200 or not body:
                failures.append(index)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        sys.exit(f"{len(failures)} manifests failed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:7])
