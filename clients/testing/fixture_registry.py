"""A real docker-registry on loopback for the benchmarks and the client
libraries' tests: fixture pushing over one keep-alive connection, a
latency-adding proxy and a minimal JSON-RPC driver for the ocirpc binary.

Run as a script it serves the fixtures the client tests share and prints
them as one JSON line; it stops when its stdin closes:

    python3 clients/testing/fixture_registry.py
"""
import hashlib
import http.client
import io
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def registry_config(storage, address, http_extra=""):
    """A docker-registry configuration: quiet, filesystem storage at
    `storage`, listening on `address`, with `http_extra` lines (indented
    two spaces) added to its `http` section."""
    return f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
http:
  addr: {address}
{http_extra}"""


class Registry:
    """Debian's docker-registry (CNCF distribution) with its own storage."""

    def __init__(self):
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="ocirpc-bench-registry-")
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write(registry_config(f"{self.dir}/storage", self.host))
        self.proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", config],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                c = http.client.HTTPConnection(self.host, timeout=1)
                c.request("GET", "/v2/")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.02)
        self.conn = http.client.HTTPConnection(self.host)

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _request(self, method, path, body=None, headers=None):
        self.conn.request(method, path, body=body, headers=headers or {})
        response = self.conn.getresponse()
        data = response.read()
        return response, data

    def push_blob(self, repo, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        response, _ = self._request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if response.status == 200:
            return digest
        response, _ = self._request("POST", f"/v2/{repo}/blobs/uploads/")
        location = response.getheader("Location")
        sep = "&" if "?" in location else "?"
        path = location.replace(f"http://{self.host}", "") + f"{sep}digest={digest}"
        response, _ = self._request("PUT", path, body=data, headers={"Content-Type": "application/octet-stream"})
        assert response.status == 201, response.status
        return digest

    def push_manifest(self, repo, reference, data, media_type=OCI_MANIFEST):
        response, _ = self._request("PUT", f"/v2/{repo}/manifests/{reference}", body=data,
                                    headers={"Content-Type": media_type})
        assert response.status == 201, response.status
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def manifest_bytes(self, repo, reference):
        """The bytes of the manifest `reference` names in `repo`."""
        response, body = self._request("GET", f"/v2/{repo}/manifests/{reference}",
                                       headers={"Accept": OCI_MANIFEST})
        assert response.status == 200, response.status
        return body

    def push_image(self, repo, tag, layers=(), annotations=None, config=b"{}"):
        config_bytes = config
        config = self.push_blob(repo, config_bytes)
        layer_json = []
        for data in layers:
            digest = self.push_blob(repo, data)
            layer_json.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                               "size": len(data), "digest": digest})
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config_bytes),
                               "digest": config},
                    "layers": layer_json, "annotations": annotations or {}}
        data = json.dumps(manifest, separators=(",", ":")).encode()
        return self.push_manifest(repo, tag, data)


class LatencyProxy:
    """Forwards to a registry, adding `delay` seconds to every request; with
    `rate`, the response bodies share one link of `rate` bytes/s (a token
    bucket over all connections): a registry across a network. With `cut`
    (a fraction), the first answer to each blob GET breaks off after that
    part of its body: a connection lost part way."""

    def __init__(self, upstream, delay, rate=None, cut=None):
        local = threading.local()
        counts = {"requests": 0, "cut": 0, "bytes": 0}
        already_cut = set()
        lock = threading.Lock()
        free_at = [time.monotonic()]

        def pace(count):
            if rate is None:
                return
            with lock:
                start = max(time.monotonic(), free_at[0])
                free_at[0] = start + count / rate
                wait = free_at[0] - time.monotonic()
            if wait > 0:
                time.sleep(wait)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Without it, Nagle's algorithm and delayed ACKs add 40 ms.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def forward(self):
                time.sleep(delay)
                with lock:
                    counts["requests"] += 1
                if not hasattr(local, "conn"):
                    local.conn = http.client.HTTPConnection(upstream)
                    local.conn.connect()
                    local.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                # Repeated headers (several Accept lines) joined, not dropped.
                headers = {}
                for k, v in self.headers.items():
                    if k.lower() not in ("host", "connection"):
                        headers[k] = f"{headers[k]}, {v}" if k in headers else v
                local.conn.request(self.command, self.path, body=body, headers=headers)
                response = local.conn.getresponse()
                declared = response.getheader("Content-Length")
                data = response.read() if self.command == "HEAD" or declared is None else None
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", declared or str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if data is not None:
                    pace(len(data))
                    self.wfile.write(data)
                    return
                left = None
                if cut is not None and "/blobs/" in self.path:
                    with lock:
                        if self.path not in already_cut:
                            already_cut.add(self.path)
                            counts["cut"] += 1
                            left = int(int(declared) * cut)
                while chunk := response.read(256 << 10):
                    if left is not None:
                        chunk = chunk[:left]
                        left -= len(chunk)
                    pace(len(chunk))
                    self.wfile.write(chunk)
                    with lock:
                        counts["bytes"] += len(chunk)
                    if left == 0:
                        # Lost part way: this connection, and the upstream one.
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        local.conn.close()
                        del local.conn
                        return

            do_GET = do_HEAD = forward

        self.counts = counts
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class NativeLatencyProxy:
    """The Swift proxy of the tests (a thread per connection), adding `delay`
    seconds per request: the Python one cannot forward 400 requests/s."""

    def __init__(self, binary, upstream, delay):
        self.proc = subprocess.Popen([binary, upstream, str(delay * 1000)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.host = self.proc.stdout.readline().strip()
        self.counts = {"requests": 0}

    def close(self):
        self.proc.stdin.close()
        line = self.proc.stdout.readline()
        self.counts["requests"] = int(line.split()[1]) if line.startswith("requests") else -1
        self.proc.wait()


class Server:
    """The ocirpc binary as a subprocess, one request at a time or pipelined."""

    def __init__(self, binary, *args):
        self.proc = subprocess.Popen([binary, "--log-level", "error", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
        # Buffered: readline() on the raw pipe reads one byte per system
        # call, which made a 600 KB answer cost the driver 0.2 s.
        self.output = io.BufferedReader(self.proc.stdout, 1 << 20)
        self.next_id = 0

    def send(self, method, params):
        self.next_id += 1
        line = json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        self.proc.stdin.write(line.encode() + b"\n")
        return self.next_id

    def read(self):
        line = self.output.readline()
        return json.loads(line)

    def call(self, method, params):
        request_id = self.send(method, params)
        while True:
            message = self.read()
            if message.get("id") == request_id:
                return message

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def tar_gz(files):
    """A gzip tar layer of `files` (name -> bytes)."""
    import gzip
    import io
    import tarfile
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


def push_client_fixtures(registry):
    """The fixtures every client library's tests use."""
    host = registry.host
    layer = tar_gz({"etc/policy/rules.yaml": b"minimum: 3\nenabled: yes\n", "etc/policy/notes.txt": b"x"})
    labelled = json.dumps({"config": {"Labels": {"org.example.team": "payments"}}}).encode()
    good = registry.push_image("clients/app", "v1", layers=[layer], config=labelled, annotations={"v": "1"})
    raw = tar_gz({"a.txt": b"plain"})[10:]  # not gzip any more: the bytes after the header
    plain_layer_digest = registry.push_blob("clients/app", raw)
    bad_manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                               "digest": registry.push_blob("clients/app", b"{}")},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": len(raw),
                                "digest": plain_layer_digest}],
                    "annotations": {"v": "2"}}
    bad = registry.push_manifest("clients/app", "v2", json.dumps(bad_manifest, separators=(",", ":")).encode())
    blob = registry.push_blob("clients/app", b'{"n": 12345678901234567890}')
    # A cosign-style attestation tag for the good image only.
    registry.push_image("clients/app", good.replace(":", "-") + ".att", annotations={"attestation": "slsa"})
    return {
        "host": host,
        "good": f"{host}/clients/app:v1",
        "goodDigest": good,
        "bad": f"{host}/clients/app:v2",
        "badDigest": bad,
        "missing": f"{host}/clients/app:missing",
        "jsonBlob": f"{host}/clients/app@{blob}",
    }


if __name__ == "__main__":
    import sys
    registry = Registry()
    try:
        print(json.dumps(push_client_fixtures(registry)), flush=True)
        sys.stdin.read()
    finally:
        registry.close()
