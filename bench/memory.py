"""bench/run memory: what many calls at once hold, against a registry
serving layers that unpack to large JSON files (each layer a few hundred
KB of gzip, each file 64 MiB of `[0,0,...]` by default).

N `blob_files` calls, each on its own layer and asking for several of its
files, sent together to one server:

  slow reader: the client reads nothing for a while, then everything;
  reading: the client reads answers as they come.

For each: peak RSS of the server (its rusage), how many calls were
answered and how many refused with memory_limit, and the wall time.

Then (`--memory-part manifests`) N `image_manifest` calls at once on N
manifests of 3.8 MB whose answers are 14.6 MB, with a 256 MiB budget and
no content cache, from a registry that serves them from memory (faster
than the server shapes them, as a hostile one would; docker-registry
will not store them): peak RSS, answered, refused. And (`--memory-part
downloads`) N `blob_files` calls at once on N layers of incompressible
data: the peak of what the downloads in flight hold on disk (the server's
TMPDIR, polled), at the default budget and at --max-download-bytes
256MiB.

With --baseline, a second binary (e.g. the one before a change) alternates
with --binary. The registry is Debian's docker-registry, as in every suite.
"""
import glob
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib


def layers(count, files, file_bytes):
    """`count` distinct gzip tar layers holding the same `files` JSON files
    of `file_bytes` bytes, then one small file naming the layer (so each
    layer has its own digest); the common part is compressed once."""
    content = b"[" + b"0," * (file_bytes // 2 - 1) + b"0]"
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    head = bytearray()
    for i in range(files):
        info = tarfile.TarInfo(f"data/{i}.json")
        info.size = len(content)
        head += compressor.compress(info.tobuf(format=tarfile.USTAR_FORMAT))
        head += compressor.compress(content)
        head += compressor.compress(b"\0" * ((-len(content)) % 512))
    out = []
    for k in range(count):
        tail = compressor.copy()
        info = tarfile.TarInfo(f"data/id-{k}")
        info.size = 1
        end = info.tobuf(format=tarfile.USTAR_FORMAT) + b"x" + b"\0" * 511 + b"\0" * 1024
        out.append(bytes(head) + tail.compress(end) + tail.flush())
    return out


def run_once(binary, request, read_after, extra=(), env=None, refusal=b"memory_limit"):
    """Sends `request` to a fresh server; reads its output after
    `read_after` seconds. Peak RSS (KB), answers, refusals (`refusal`),
    other errors, seconds."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [binary, "--log-level", "error", "--cache-bytes", "0", "--cache-dir", "none", *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    proc.stdin.write(request)
    proc.stdin.close()
    time.sleep(read_after)
    answers = refused = other = 0
    # A line at a time, told apart by its head: an answer may be hundreds
    # of MB, which the client need not parse.
    for line in proc.stdout:
        head = line[:64]
        if b'"result":' in head:
            answers += 1
        elif b'"reason":"' + refusal + b'"' in line[-512:]:
            refused += 1
        else:
            other += 1
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss, answers, refused, other, time.perf_counter() - start


MANIFEST_SERVER = """
import hashlib, http.server, sys
layers = int(sys.argv[1])
# Descriptors of nothing ({}), then padding up to 3.8 MB: shaped, each
# descriptor is written with all its keys, so the answer is several times
# the manifest. docker-registry will not store such a manifest, and it
# serves large ones slower than the server shapes them: this registry
# serves them from memory, as fast as a hostile one would.
head = ('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":['
        + ",".join(["{}"] * layers) + '],"annotations":{"p":"')
bodies = {}
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        tag = self.path.rsplit("/", 1)[1]
        if "/manifests/" not in self.path:
            self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")
            return
        body = bodies.get(tag)
        if body is None:
            body = (head + "x" * (3_800_000 - len(head) - len(tag) - 12) + '","n":"' + tag + '"}}').encode()
            bodies[tag] = body
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        self.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass  # a transfer the server stopped (refused for memory)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def manifests(binaries, args):
    """N image_manifest calls at once on N manifests of 3.8 MB whose
    answers are about 14 MB, from a registry that serves them from memory."""
    count = args.memory_manifests
    server = subprocess.Popen(
        [sys.executable, "-c", MANIFEST_SERVER, "120000"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        host = f"127.0.0.1:{int(server.stdout.readline())}"
        print(f"\n## {count} image_manifest calls at once on manifests of 3.8 MB, answers of 14.6 MB "
              f"(--max-memory-bytes 256MiB)\n")
        request = b"".join(
            (json.dumps({"jsonrpc": "2.0", "id": i, "method": "ec.oci.image_manifest",
                         "params": [f"{host}/bench/manifests:m{i}"]}) + "\n").encode()
            for i in range(count))
        for round_ in range(args.repeat):
            for name, binary in binaries:
                rss, answers, refused, other, seconds = run_once(
                    binary, request, 0, extra=("--max-memory-bytes", "256MiB", "--insecure-registry", host))
                print(f"round {round_ + 1} {name:8}: peak {rss / 1e6:.2f} GB, {answers} answered, "
                      f"{refused} memory_limit, {other} other errors, {seconds:.1f} s")
    finally:
        server.kill()
        server.wait()


def downloads(registry, binaries, args):
    """N blob_files calls at once on N layers of incompressible data: the
    most the downloads in flight hold on disk, polled in the server's TMPDIR."""
    count, size = args.memory_calls, args.memory_download_mb << 20
    block = os.urandom(1 << 20)
    digests = []
    for k in range(count):
        # A gzip of stored blocks: as large as what it holds.
        compressor = zlib.compressobj(0, zlib.DEFLATED, 31)
        info = tarfile.TarInfo(f"data/{k}.bin")
        info.size = size
        parts = [compressor.compress(info.tobuf(format=tarfile.USTAR_FORMAT))]
        parts += [compressor.compress(block) for _ in range(size >> 20)]
        parts += [compressor.compress(b"\0" * 1024), compressor.flush()]
        digests.append(registry.push_blob("bench/downloads", b"".join(parts)))
    print(f"\n## {count} blob_files calls at once on layers of {size >> 20} MiB: what downloads hold on disk\n")
    request = b"".join(
        (json.dumps({"jsonrpc": "2.0", "id": i, "method": "ec.oci.blob_files",
                     "params": [f"{registry.host}/bench/downloads@{d}", ["none"]]}) + "\n").encode()
        for i, d in enumerate(digests))
    for label, extra in (("default", ()), ("256MiB", ("--max-download-bytes", "256MiB"))):
        for round_ in range(args.repeat):
            for name, binary in binaries:
                with tempfile.TemporaryDirectory(prefix="ocirpc-bench-tmp-") as tmp:
                    peak, done = [0], threading.Event()

                    def poll():
                        while not done.is_set():
                            held = 0
                            for path in glob.glob(os.path.join(tmp, "ocirpc-*", "*")):
                                try:
                                    held += os.path.getsize(path)
                                except OSError:
                                    pass
                            peak[0] = max(peak[0], held)
                            time.sleep(0.01)

                    poller = threading.Thread(target=poll)
                    poller.start()
                    # A baseline without the flag takes it as an unknown option: run it without.
                    flags = extra if name == "binary" or not extra else ()
                    _, answers, refused, other, seconds = run_once(
                        binary, request, 0, extra=flags, env=dict(os.environ, TMPDIR=tmp), refusal=b"download_limit")
                    done.set()
                    poller.join()
                print(f"{label:7} round {round_ + 1} {name:8}: peak on disk {peak[0] / 2**30:.2f} GiB, "
                      f"{answers} answered, {refused} download_limit, {other} other errors, {seconds:.1f} s")


def memory(args):
    from fixture_registry import Registry
    count, asked = args.memory_calls, args.memory_files
    print(f"# memory benchmark ({os.cpu_count()} cores): {count} blob_files calls, "
          f"{asked} files of {args.memory_file_mb} MiB each asked from each layer")
    registry = Registry()
    binaries = [("binary", args.binary)] + ([("baseline", args.baseline)] if args.baseline else [])
    try:
        if args.memory_part in ("all", "manifests"):
            manifests(binaries, args)
        if args.memory_part in ("all", "downloads"):
            downloads(registry, binaries, args)
        if args.memory_part not in ("all", "files"):
            return
        built = layers(count, asked, args.memory_file_mb << 20)
        digests = [registry.push_blob("bench/memory", layer) for layer in built]
        print(f"pushed {count} layers of {len(built[0]) / 1e3:.0f} KB")
        paths = [f"data/{i}.json" for i in range(asked)]
        request = b"".join(
            (json.dumps({"jsonrpc": "2.0", "id": i, "method": "ec.oci.blob_files",
                         "params": [f"{registry.host}/bench/memory@{d}", paths]}) + "\n").encode()
            for i, d in enumerate(digests))
        print(f"\n## {count} blob_files calls at once, {asked} files of {args.memory_file_mb} MiB each\n")
        for label, read_after in (("slow reader", args.memory_read_after), ("reading", 0)):
            for round_ in range(args.repeat):
                for name, binary in binaries:
                    rss, answers, refused, other, seconds = run_once(binary, request, read_after)
                    print(f"{label:11} round {round_ + 1} {name:8}: peak {rss / 1e6:.2f} GB, "
                          f"{answers} answered, {refused} memory_limit, {other} other errors, {seconds:.1f} s")
    finally:
        registry.close()
