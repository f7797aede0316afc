"""Peer: plain Python http.client, N threads, one kept-alive connection
each (TLS when $BENCH_CA_FILE names a CA), fetching the manifests of
REPO:t0..t{COUNT-1}. Answers a bearer
challenge the way registries ask (token fetched once per thread)."""
import base64
import http.client
import json
import os
import re
import ssl
import urllib.parse

import workers

ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
])


def main(host, repo, count, threads, user=None, password=None):
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

    class Connection:
        """One kept-alive connection, and its token once challenged."""

        def __init__(self):
            # Over TLS when the bench gives the CA that signed the registry's certificate.
            ca_file = os.environ.get("BENCH_CA_FILE")
            if ca_file:
                self.http = http.client.HTTPSConnection(host, context=ssl.create_default_context(cafile=ca_file))
            else:
                self.http = http.client.HTTPConnection(host)
            self.authorization = None

    def fetch(connection, index):
        for _ in range(2):
            headers = {"Accept": ACCEPT}
            if connection.authorization:
                headers["Authorization"] = connection.authorization
            connection.http.request("GET", f"/v2/{repo}/manifests/t{index}", headers=headers)
            response = connection.http.getresponse()
            body = response.read()
            if response.status == 401 and connection.authorization is None:
                connection.authorization = "Bearer " + token(response.getheader("WWW-Authenticate"))
                continue
            return response.status == 200 and body
        return False

    workers.run(count, threads, Connection, fetch)


if __name__ == "__main__":
    main(*workers.arguments())
