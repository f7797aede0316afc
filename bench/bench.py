#!/usr/bin/env python3
"""ocirpc benchmarks: measured from outside, the way a client sees the server.

core: pipelined round trips of a trivial method (requests/s), spawn to first
      response latency, and RSS sampled across 1M requests.
soak: 1M mixed requests with RSS sampled (bench/run soak).
cache: the disk cache: a second process over the manifests a first one
      fetched (spawn to final response, registry requests it makes).
peers: the batch against wrk, Python http.client, oras-py and skopeo on the
      same manifests, pinned and not, at 0 and 20 ms (bench/peers.py).
tls: the batch from a TLS registry (one HTTP/2 connection) against wrk and
      http.client over TLS, at 0 and 20 ms, and small spawns (bench/tls.py).
methods: the ec.oci.* methods against a real docker-registry on loopback:
      requests per manifest, batch throughput against the registry's own
      ceiling (wrk -c 8), the batch behind 20 ms of latency, warm pipelined
      requests, image_files against zlib's inflate rate, RSS over 10k manifests.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "testing"))


def rss_kib(pid, field="VmRSS"):
    """A memory figure of /proc/PID/status in KiB (VmRSS now, VmHWM the peak)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def requests_payload(method, count, start_id=0):
    line = '{"jsonrpc":"2.0","id":%d,"method":"' + method + '"}\n'
    return "".join(line % i for i in range(start_id, start_id + count)).encode()


def pipelined(binary, method, count, sample_every=0.05, payload=None, proc=None):
    """Writes `count` requests as fast as the pipe takes them, reads every
    response; returns (seconds, responses, rss samples in KiB)."""
    payload = payload or requests_payload(method, count)
    proc = proc or subprocess.Popen([binary, "--log-level", "error"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
    samples = []
    done = threading.Event()

    def sampler():
        while not done.is_set():
            value = rss_kib(proc.pid)
            if value:
                samples.append((time.perf_counter(), value))
            time.sleep(sample_every)

    def writer():
        view = memoryview(payload)
        step = 1 << 16
        for offset in range(0, len(view), step):
            proc.stdin.write(view[offset:offset + step])
        proc.stdin.close()

    threading.Thread(target=sampler, daemon=True).start()
    start = time.perf_counter()
    threading.Thread(target=writer, daemon=True).start()
    responses = 0
    while responses < count:
        chunk = proc.stdout.read(1 << 20)
        if not chunk:
            break
        responses += chunk.count(b"\n")
    elapsed = time.perf_counter() - start
    done.set()
    proc.wait()
    return elapsed, responses, [(t - start, v) for t, v in samples]


def first_response_latency(binary, runs):
    request = b'{"jsonrpc":"2.0","id":1,"method":"initialize"}\n'
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, bufsize=0)
        proc.stdin.write(request)
        line = proc.stdout.readline()
        times.append(time.perf_counter() - start)
        proc.stdin.close()
        proc.wait()
        assert b'"result"' in line, line
    return times


def core(args):
    print(f"# core benchmark ({os.cpu_count()} cores)")
    # Throughput: best of three runs of the trivial method.
    for method in ("initialize", "server.clearCache"):
        best = None
        for _ in range(args.repeat):
            elapsed, responses, _ = pipelined(args.binary, method, args.throughput_requests)
            assert responses == args.throughput_requests, (responses, args.throughput_requests)
            rate = responses / elapsed
            best = rate if best is None else max(best, rate)
        print(f"pipelined {method}: {best:,.0f} requests/s (best of {args.repeat}, {args.throughput_requests:,} requests)")

    times = first_response_latency(args.binary, args.latency_runs)
    times.sort()
    print(f"spawn to first response: median {statistics.median(times) * 1000:.2f} ms, "
          f"p90 {times[int(len(times) * 0.9)] * 1000:.2f} ms, min {times[0] * 1000:.2f} ms ({args.latency_runs} runs)")

    elapsed, responses, samples = pipelined(args.binary, "initialize", args.rss_requests, sample_every=0.1)
    assert responses == args.rss_requests
    values = [v for _, v in samples]
    if values:
        tenth = max(1, len(values) // 10)
        print(f"RSS over {args.rss_requests:,} requests ({elapsed:.1f} s): first {values[0] / 1024:.1f} MiB, "
              f"max {max(values) / 1024:.1f} MiB, median of last 10% {statistics.median(values[-tenth:]) / 1024:.1f} MiB")
        curve = ", ".join(f"{t:.1f}s:{v / 1024:.0f}" for t, v in samples[:: max(1, len(samples) // 12)])
        print(f"  RSS curve (s:MiB): {curve}")


# The Accept header the server sends for every manifest GET (in this order);
# the registry's cost per request depends on it, so wrk sends the same.
MANIFEST_ACCEPT = ("application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
                   "application/vnd.docker.distribution.manifest.v2+json, "
                   "application/vnd.docker.distribution.manifest.list.v2+json")


def wrk_ceiling(url, seconds=5, paths=None):
    """Requests/s of `wrk -t 2 -c 8` against one manifest URL, or in turn
    against each of `paths` on its host, asking exactly as the server does;
    every answer must be a 200."""
    command = ["wrk", "-t", "2", "-c", "8", "-d", f"{seconds}s", "-H", f"Accept: {MANIFEST_ACCEPT}", url]
    script = None
    if paths:
        import tempfile
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write("local paths = {%s}\nlocal n = 0\nrequest = function()\n  n = n %% #paths + 1\n"
                     "  return wrk.format(\"GET\", paths[n])\nend\n" % ", ".join(json.dumps(p) for p in paths))
        script.close()
        command[1:1] = ["-s", script.name]
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        if script:
            os.unlink(script.name)
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk got error answers, not manifests:\n{out}")
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(out)


def layer_bytes(megabytes, seed):
    """A gzip tar layer of about `megabytes` MB of compressible text files."""
    import io
    import random
    import tarfile
    import zlib
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
    block = b" ".join(rng.choice(words) for _ in range(300_000))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        size = 0
        i = 0
        while size < megabytes * 2_600_000:
            start = rng.randrange(len(block) // 2)
            data = block[start:start + 1_000_000]
            info = tarfile.TarInfo(f"usr/share/data/{seed}/file{i}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            size += len(data)
            i += 1
        policy = b"kind: policy\nseed: %d\n" % seed
        info = tarfile.TarInfo(f"etc/policy/layer{seed}.yaml")
        info.size = len(policy)
        tar.addfile(info, io.BytesIO(policy))
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    return compressor.compress(raw.getvalue()) + compressor.flush()


def timed_batch(args, refs):
    """Seconds for `ec.oci.image_manifests` of `refs` (all answered) by a
    fresh server with 8 workers."""
    from fixture_registry import Server
    server = Server(args.binary, "--max-concurrency", "8")
    start = time.perf_counter()
    result = server.call("ec.oci.image_manifests", [refs])["result"]
    elapsed = time.perf_counter() - start
    server.close()
    assert len(result) == len(refs), len(result)
    return elapsed


def best_batch(args, refs):
    """The best of `args.repeat` timed batches."""
    return min(timed_batch(args, refs) for _ in range(args.repeat))


def skopeo_files(host, ref):
    """What a script does without ocirpc: `skopeo copy` the image to a
    directory, then `tar -xzf` each layer's wanted files, bottom first
    (whiteouts not applied). The names of the files found."""
    import json
    import shutil
    import tempfile
    directory = tempfile.mkdtemp(prefix="ocirpc-bench-skopeo-")
    try:
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{host}/{ref}",
                        f"dir:{directory}/image"], check=True)
        with open(f"{directory}/image/manifest.json") as manifest:
            layers = json.load(manifest)["layers"]
        os.mkdir(f"{directory}/root")
        for layer in layers:
            subprocess.run(["tar", "-xzf", f"{directory}/image/{layer['digest'].split(':')[1]}", "-C",
                            f"{directory}/root", "--wildcards", "etc/policy/*"], stderr=subprocess.DEVNULL)
        return os.listdir(f"{directory}/root/etc/policy")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def files_over_link(args, registry):
    """`image_files` on an image of four layers of decreasing size, spawn to
    answer, with the registry behind a link of `--link-mb` MB/s and straight
    on loopback; alternating with `--baseline` when given, and with skopeo
    and tar (`skopeo_files`) when skopeo is installed."""
    import shutil
    from fixture_registry import LatencyProxy, Server
    layers = [layer_bytes(megabytes, seed) for seed, megabytes in enumerate((40, 20, 10, 5))]
    total = sum(len(layer) for layer in layers)
    digest = registry.push_image("bench/link", "v1", layers=layers)
    clients = [args.binary] + ([args.baseline] if args.baseline else [])
    clients += ["skopeo + tar"] if shutil.which("skopeo") else []
    link = LatencyProxy(registry.host, 0, rate=args.link_mb * 1e6)
    conditions = [(f"behind a {args.link_mb:.0f} MB/s link", lambda: link), ("on loopback", lambda: None),
                  (f"behind a {args.link_mb:.0f} MB/s link that breaks each layer off once at 80%",
                   lambda: LatencyProxy(registry.host, 0, rate=args.link_mb * 1e6, cut=0.8))]
    try:
        for label, make_proxy in conditions:
            walls = {client: [] for client in clients}
            cpus = {client: [] for client in clients}
            sent = {client: [] for client in clients}
            failed = {client: 0 for client in clients}
            for round in range(args.rounds):
                for client in clients[round % len(clients):] + clients[:round % len(clients)]:
                    # A proxy that cuts is made for each run: each cuts every layer once.
                    proxy = make_proxy()
                    host = proxy.host if proxy else registry.host
                    bytes_before = proxy.counts.get("bytes", 0) if proxy else 0
                    before = os.times()
                    start = time.perf_counter()
                    if client == "skopeo + tar":
                        try:
                            found = skopeo_files(host, f"bench/link@{digest}")
                        except subprocess.CalledProcessError:
                            failed[client] += 1
                            found = layers
                    else:
                        server = Server(client, "--cache-dir", "none")
                        found = server.call("ec.oci.image_files", [f"{host}/bench/link@{digest}", ["etc/policy"]])["result"]
                        server.close()
                    walls[client].append(time.perf_counter() - start)
                    after = os.times()
                    cpus[client].append(after.children_user + after.children_system
                                        - before.children_user - before.children_system)
                    assert len(found) == len(layers), str(found)[:200]
                    if proxy:
                        sent[client].append(proxy.counts.get("bytes", 0) - bytes_before)
                        if proxy is not link:
                            proxy.close()
            for client in clients:
                print(f"image_files over {total / 1e6:.0f} MB of gzip layers {label} ({client}), {args.rounds} rounds: "
                      f"median {statistics.median(walls[client]):.2f} s "
                      f"[{min(walls[client]):.2f}-{max(walls[client]):.2f}], "
                      f"CPU median {statistics.median(cpus[client]):.2f} s"
                      + (f", {statistics.median(sent[client]) / 1e6:.0f} MB sent"
                         f" (download alone {total / (args.link_mb * 1e6):.2f} s)" if sent[client] else "")
                      + (f", FAILED {failed[client]} of {args.rounds}" if failed[client] else ""))
    finally:
        link.close()


def blob_files_over_link(args, registry):
    """`blob_files` on one gzip layer of about 53 MB named by its digest
    alone, spawn to answer, behind the `--link-mb` link and on loopback;
    alternating with `--baseline` when given."""
    from fixture_registry import LatencyProxy, Server
    blob = layer_bytes(40, 7)
    digest = registry.push_blob("bench/blob", blob)
    clients = [args.binary] + ([args.baseline] if args.baseline else [])
    link = LatencyProxy(registry.host, 0, rate=args.link_mb * 1e6)
    try:
        for label, host in ((f"behind a {args.link_mb:.0f} MB/s link", link.host), ("on loopback", registry.host)):
            walls = {client: [] for client in clients}
            cpus = {client: [] for client in clients}
            for round in range(args.rounds):
                for client in clients[round % len(clients):] + clients[:round % len(clients)]:
                    before = os.times()
                    start = time.perf_counter()
                    server = Server(client, "--cache-dir", "none")
                    found = server.call("ec.oci.blob_files", [f"{host}/bench/blob@{digest}", ["etc/policy/layer7.yaml"]])
                    server.close()
                    walls[client].append(time.perf_counter() - start)
                    after = os.times()
                    cpus[client].append(after.children_user + after.children_system
                                        - before.children_user - before.children_system)
                    assert list(found["result"]) == ["etc/policy/layer7.yaml"], str(found)[:200]
            for client in clients:
                print(f"blob_files on a {len(blob) / 1e6:.0f} MB gzip layer {label} ({client}), {args.rounds} rounds: "
                      f"median {statistics.median(walls[client]):.2f} s "
                      f"[{min(walls[client]):.2f}-{max(walls[client]):.2f}], "
                      f"CPU median {statistics.median(cpus[client]):.2f} s"
                      + (f" (download alone {len(blob) / (args.link_mb * 1e6):.2f} s)" if host == link.host else ""))
    finally:
        link.close()


def methods(args):
    import zlib
    from fixture_registry import NativeLatencyProxy, Registry, Server
    print(f"# methods benchmark ({os.cpu_count()} cores, {args.manifests} manifests)")
    registry = Registry()
    try:
        start = time.perf_counter()
        digests = [registry.push_image("bench/app", f"t{i}", annotations={"i": str(i)}) for i in range(args.manifests)]
        print(f"pushed {args.manifests} manifests in {time.perf_counter() - start:.1f} s")
        tags = [f"{registry.host}/bench/app:t{i}" for i in range(args.manifests)]
        pinned = [f"{registry.host}/bench/app@{d}" for d in digests]

        # HTTP requests per manifest, counted by the server's own registry counters.
        server = Server(args.binary)
        for ref in tags[:100] + pinned[100:200]:
            assert "result" in server.call("ec.oci.image_manifest", [ref])
        stats = server.call("server.stats", [])["result"]["registryRequests"]
        server.close()
        print(f"HTTP requests for 100 tag + 100 digest manifests: {stats['manifest']} manifest, "
              f"{stats['token']} token, {stats['ping']} ping")

        # The machine is shared and noisy (the registry's own rate moves by a
        # third within minutes), so every batch is timed between two short
        # wrk runs and compared with their mean; the median ratio over the
        # rounds is the figure. The ceiling is wrk asking for the batch's own
        # manifests in turn (the registry spends more on 1000 tags than on
        # one); wrk on a single manifest URL is printed beside it.
        client = os.path.join(os.path.dirname(args.binary), "ocirpc-bench-client")
        paths = [f"/v2/bench/app/manifests/t{i}" for i in range(args.manifests)]

        def ceiling():
            return wrk_ceiling(f"http://{registry.host}/", seconds=args.wrk_seconds, paths=paths)

        ratios, client_ratios, single_ratios = [], [], []
        before = ceiling()
        for round_number in range(args.rounds):
            single = wrk_ceiling(f"http://{registry.host}/v2/bench/app/manifests/t0", seconds=args.wrk_seconds)
            batch = timed_batch(args, tags)
            middle = ceiling()
            # The registry client alone (no server, no JSON-RPC): the same tags, 8 workers.
            client_seconds = float(subprocess.run([client, registry.host, "bench/app", str(len(tags)), "8"],
                                                  capture_output=True, text=True, check=True).stdout)
            after = ceiling()
            rate, client_rate = len(tags) / batch, len(tags) / client_seconds
            ratios.append(rate / ((before + middle) / 2))
            single_ratios.append(rate / single)
            client_ratios.append(client_rate / ((middle + after) / 2))
            print(f"round {round_number + 1}: ceiling (wrk -t 2 -c 8 over the same {len(paths)} manifests) "
                  f"{before:,.0f}/s, {middle:,.0f}/s, {after:,.0f}/s; one manifest URL {single:,.0f}/s; "
                  f"batch of {len(tags)} uncached manifests, 8 workers: {batch:.3f} s = {rate:,.0f}/s ({ratios[-1] * 100:.0f}%); "
                  f"registry client alone: {client_seconds:.3f} s = {client_rate:,.0f}/s ({client_ratios[-1] * 100:.0f}%)")
            before = after
        print(f"uncached batch against the ceiling: median {statistics.median(ratios) * 100:.0f}% over {args.rounds} rounds "
              f"(target >= 90%); against wrk on one manifest URL: median {statistics.median(single_ratios) * 100:.0f}%")
        print(f"registry client alone against the ceiling: median {statistics.median(client_ratios) * 100:.0f}% "
              f"over {args.rounds} rounds (target >= 90%)")

        proxy = NativeLatencyProxy(os.path.join(os.path.dirname(args.binary), "ocirpc-bench-proxy"), registry.host, 0.020)
        slow = [f"{proxy.host}/bench/app:t{i}" for i in range(args.manifests)]
        elapsed = best_batch(args, slow)
        through_proxy = wrk_ceiling(f"http://{proxy.host}/", seconds=4, paths=paths)
        proxy.close()
        ideal = len(slow) / 8 * 0.020
        print(f"batch of {len(slow)} behind +20 ms, best of {args.repeat}: {elapsed:.2f} s (ideal {ideal:.2f} s, target <= {ideal * 1.15:.2f} s); "
              f"wrk -c 8 through the same proxy "
              f"would need {len(slow) / through_proxy:.2f} s")

        server = Server(args.binary)
        server.call("ec.oci.image_manifests", [pinned])
        count = args.warm_requests
        lines = "".join('{"jsonrpc":"2.0","id":%d,"method":"ec.oci.image_manifest","params":["%s"]}\n'
                        % (i, pinned[i % len(pinned)]) for i in range(count)).encode()
        best = None
        for _ in range(args.repeat):
            server2 = Server(args.binary)
            server2.call("ec.oci.image_manifests", [pinned])
            elapsed, responses, _ = pipelined(args.binary, None, count, payload=lines, proc=server2.proc)
            assert responses == count, responses
            server2.proc.stdin.close() if not server2.proc.stdin.closed else None
            server2.proc.wait()
            best = elapsed if best is None else min(best, elapsed)
        server.close()
        print(f"warm image_manifest pipelined: {count / best:,.0f} requests/s (best of {args.repeat}, {count:,} requests; target >= 100k/s)")

        if args.files_mb > 0:
            layers = [layer_bytes(args.files_mb / 4, seed) for seed in range(4)]
            total = sum(len(l) for l in layers)
            registry.push_image("bench/files", "v1", layers=layers)
            start = time.perf_counter()
            for layer in layers:
                zlib.decompress(layer, 31)
            inflate = total / (time.perf_counter() - start)
            best = None
            for _ in range(args.repeat):
                server = Server(args.binary)
                manifest = server.call("ec.oci.image_manifest", [f"{registry.host}/bench/files:v1"])["result"]
                digest = server.call("ec.oci.descriptor", [f"{registry.host}/bench/files:v1"])["result"]["digest"]
                start = time.perf_counter()
                files = server.call("ec.oci.image_files", [f"{registry.host}/bench/files@{digest}", ["etc/policy"]])
                elapsed = time.perf_counter() - start
                server.close()
                assert len(files["result"]) == 4, files
                best = elapsed if best is None else min(best, elapsed)
            rate = total / best
            print(f"image_files over {total / 1e6:.0f} MB of gzip layers: {rate / 1e6:.0f} MB/s; zlib inflate alone "
                  f"{inflate / 1e6:.0f} MB/s ({rate / inflate * 100:.0f}%; target >= 80%)")

        if args.link_mb > 0:
            files_over_link(args, registry)
            blob_files_over_link(args, registry)

        if args.rss_manifests > 0:
            start = time.perf_counter()
            many = [registry.push_image("bench/many", f"m{i}", annotations={"i": str(i), "pad": "x" * 200})
                    for i in range(args.rss_manifests)]
            print(f"pushed {args.rss_manifests} more manifests in {time.perf_counter() - start:.1f} s")
            refs = [f"{registry.host}/bench/many@{d}" for d in many]
            server = Server(args.binary, "--cache-bytes", "64MiB")
            samples = []
            for offset in range(0, len(refs), 1000):
                server.call("ec.oci.image_manifests", [refs[offset:offset + 1000]])
                samples.append(rss_kib(server.proc.pid))
            stats = server.call("server.stats", [])["result"]
            server.close()
            print(f"RSS over {len(refs):,} distinct manifests with --cache-bytes 64MiB: max {max(samples) / 1024:.1f} MiB "
                  f"(target < {64 + 60 / 1.048576:.0f} MiB); cache used {stats['cacheBytes']['used'] / 2**20:.1f} MiB; "
                  f"curve (MiB): {', '.join(f'{v / 1024:.0f}' for v in samples)}")
    finally:
        registry.close()


def cache(args):
    """The disk cache: a first process fetches, a second one over the same
    cache directory answers; spawn to final response, and what the second
    asks of the registry."""
    import shutil
    import tempfile
    from fixture_registry import Registry, Server
    print(f"# cache benchmark ({os.cpu_count()} cores, {args.manifests} manifests)")
    registry = Registry()
    try:
        start = time.perf_counter()
        digests = [registry.push_image("bench/cache", f"t{i}", annotations={"i": str(i)}) for i in range(args.manifests)]
        print(f"pushed {args.manifests} manifests in {time.perf_counter() - start:.1f} s")
        pinned = [f"{registry.host}/bench/cache@{d}" for d in digests]
        tags = [f"{registry.host}/bench/cache:t{i}" for i in range(args.manifests)]
        for label, refs in (("digest", pinned), ("tag", tags)):
            times = {"first": [], "second": []}
            requests = {"first": [], "second": []}
            request = (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ec.oci.image_manifests", "params": [refs]}) + "\n").encode()
            stats_request = b'{"jsonrpc":"2.0","id":2,"method":"server.stats"}\n'
            for _ in range(args.repeat):
                directory = tempfile.mkdtemp(prefix="ocirpc-bench-cache-")
                try:
                    for process in ("first", "second"):
                        # Spawn to the last byte of the answer: the request is
                        # encoded before the clock starts and the answer parsed
                        # after it stops, so the figure is the server's.
                        start = time.perf_counter()
                        proc = subprocess.Popen(
                            [args.binary, "--log-level", "error", "--cache-dir", directory, "--max-concurrency", "8"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
                        proc.stdin.write(request)
                        answer = bytearray()
                        while not answer.endswith(b"\n"):
                            chunk = proc.stdout.read(1 << 20)
                            if not chunk:
                                break
                            answer += chunk
                        times[process].append(time.perf_counter() - start)
                        proc.stdin.write(stats_request)
                        stats = json.loads(proc.stdout.readline())["result"]
                        proc.stdin.close()
                        proc.wait()
                        result = json.loads(answer)["result"]
                        assert len(result) == len(refs), len(result)
                        requests[process].append(sum(stats["registryRequests"].values()))
                finally:
                    shutil.rmtree(directory, ignore_errors=True)
            first, second = min(times["first"]), min(times["second"])
            print(f"{len(refs)} {label} refs, spawn to final response, best of {args.repeat}: "
                  f"first process {first:.3f} s ({len(refs) / first:,.0f}/s, {max(requests['first'])} registry requests); "
                  f"second process {second:.3f} s ({len(refs) / second:,.0f} manifests/s; target >= 20,000/s) "
                  f"with {max(requests['second'])} registry requests (target 0)")
        disk_size_rss(args, pinned)
        if args.files_mb > 0:
            layers = [layer_bytes(args.files_mb / 4, seed) for seed in range(4)]
            total = sum(len(layer) for layer in layers)
            registry.push_image("bench/files", "v1", layers=layers)
            lister = Server(args.binary)
            digest = lister.call("ec.oci.descriptor", [f"{registry.host}/bench/files:v1"])["result"]["digest"]
            lister.close()
            ref = f"{registry.host}/bench/files@{digest}"
            times = {"first": [], "second": []}
            for _ in range(args.repeat):
                directory = tempfile.mkdtemp(prefix="ocirpc-bench-cache-")
                try:
                    for process in ("first", "second"):
                        start = time.perf_counter()
                        server = Server(args.binary, "--cache-dir", directory)
                        files = server.call("ec.oci.image_files", [ref, ["etc/policy"]])
                        times[process].append(time.perf_counter() - start)
                        server.close()
                        assert len(files["result"]) == 4, files
                finally:
                    shutil.rmtree(directory, ignore_errors=True)
            first, second = min(times["first"]), min(times["second"])
            print(f"image_files over {total / 1e6:.0f} MB of gzip layers, spawn to answer, best of {args.repeat}: "
                  f"first process {first:.3f} s, second process {second:.3f} s ({first / second:.0f}x; target >= 20x)")
    finally:
        registry.close()


def disk_size_rss(args, refs):
    """Peak RSS of a second process answering `refs` from disk, over a cache
    that holds only them and over one padded with 100,000 more entries,
    each with a trim due at start (the trim lists every file)."""
    import hashlib
    import shutil
    import tempfile
    request = (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ec.oci.image_manifests", "params": [refs]}) + "\n").encode()
    peaks = {}
    directory = tempfile.mkdtemp(prefix="ocirpc-bench-cache-")
    try:
        subprocess.run([args.binary, "--log-level", "error", "--cache-dir", directory], input=request,
                       capture_output=True, check=True)
        for padding in (0, 100_000):
            if padding:
                content = os.path.join(directory, "blobs", "sha256")
                for i in range(padding):
                    data = b"%d padding entry " % i + b"x" * 1000
                    with open(os.path.join(content, hashlib.sha256(data).hexdigest()), "wb") as f:
                        f.write(data)
            samples = []
            for _ in range(args.repeat):
                stamp = os.path.join(directory, "ocirpc", "v1", "last-trim")
                if os.path.exists(stamp):
                    os.unlink(stamp)
                proc = subprocess.Popen([args.binary, "--log-level", "error", "--cache-dir", directory,
                                         "--disk-cache-bytes", "100GiB"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                proc.stdin.write(request)
                proc.stdin.flush()
                answer = proc.stdout.readline()
                # The trim runs in the background: give it time to finish before the peak is read.
                time.sleep(1.5)
                samples.append(rss_kib(proc.pid, "VmHWM"))
                proc.stdin.close()
                proc.wait()
                assert len(json.loads(answer)["result"]) == len(refs)
            peaks[padding] = statistics.median(samples)
        entries = sum(len(files) for _, _, files in os.walk(directory))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"peak RSS answering {len(refs)} digest refs from disk, a trim due at start, median of {args.repeat}: "
          f"{peaks[0] / 1024:.1f} MiB over a cache of just them; {peaks[100_000] / 1024:.1f} MiB over one padded to "
          f"{entries:,} files (target: RSS does not grow with the size of the disk cache)")


def soak(args):
    """1M mixed requests (cached and uncached, single and batch, valid and
    not) against a real registry with a small cache, RSS sampled throughout."""
    import random
    from fixture_registry import Registry
    print(f"# soak ({os.cpu_count()} cores, {args.soak_requests:,} requests over {args.soak_refs} manifests, "
          f"--cache-bytes {args.soak_cache})")
    registry = Registry()
    try:
        start = time.perf_counter()
        digests = [registry.push_image("soak/app", f"t{i}", annotations={"i": str(i), "pad": "p" * 300})
                   for i in range(args.soak_refs)]
        print(f"pushed {len(digests)} manifests in {time.perf_counter() - start:.1f} s")
        refs = [f"{registry.host}/soak/app@{d}" for d in digests]
        tags = [f"{registry.host}/soak/app:t{i}" for i in range(args.soak_refs)]
        rng = random.Random(7)
        lines = []
        for i in range(args.soak_requests):
            roll = rng.random()
            if roll < 0.70:
                lines.append('{"jsonrpc":"2.0","id":%d,"method":"ec.oci.image_manifest","params":["%s"]}' % (i, rng.choice(refs)))
            elif roll < 0.80:
                lines.append('{"jsonrpc":"2.0","id":%d,"method":"ec.oci.descriptor","params":["%s"]}' % (i, rng.choice(tags)))
            elif roll < 0.85:
                batch = json.dumps(rng.sample(refs, 10))
                lines.append('{"jsonrpc":"2.0","id":%d,"method":"ec.oci.image_manifests","params":[%s]}' % (i, batch))
            elif roll < 0.95:
                lines.append('{"jsonrpc":"2.0","id":%d,"method":"ec.oci.image_manifest","params":["Not a Ref %d"]}' % (i, i))
            else:
                lines.append('{"jsonrpc":"2.0","id":%d,"method":"server.stats"}' % i)
        payload = ("\n".join(lines) + "\n").encode()
        del lines
        proc = subprocess.Popen([args.binary, "--log-level", "error", "--cache-bytes", args.soak_cache],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
        elapsed, responses, samples = pipelined(args.binary, None, args.soak_requests, sample_every=0.5,
                                                payload=payload, proc=proc)
        proc.wait()
        assert responses == args.soak_requests, responses
        values = [v for _, v in samples]
        tenth = max(1, len(values) // 10)
        print(f"{responses:,} responses in {elapsed:.1f} s ({responses / elapsed:,.0f}/s); RSS first {values[0] / 1024:.1f} MiB, "
              f"max {max(values) / 1024:.1f} MiB, median of the first 10% {statistics.median(values[:tenth]) / 1024:.1f} MiB, "
              f"of the last 10% {statistics.median(values[-tenth:]) / 1024:.1f} MiB")
        curve = ", ".join(f"{t:.0f}s:{v / 1024:.0f}" for t, v in samples[:: max(1, len(samples) // 16)])
        print(f"  RSS curve (s:MiB): {curve}")
    finally:
        registry.close()


def main():
    # The suites measure the server and the registry, not the disk cache:
    # each server starts with none (the cache suite sets its own).
    os.environ.setdefault("OCIRPC_CACHE_DIR", "none")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", nargs="?", default="core", choices=["core", "methods", "soak", "cache", "peers", "tls", "memory", "clients"])
    parser.add_argument("--binary", default=".build/release/ocirpc")
    parser.add_argument("--throughput-requests", type=int, default=500_000)
    parser.add_argument("--rss-requests", type=int, default=1_000_000)
    parser.add_argument("--latency-runs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--wrk-seconds", type=int, default=2)
    parser.add_argument("--manifests", type=int, default=1000)
    parser.add_argument("--warm-requests", type=int, default=200_000)
    parser.add_argument("--files-mb", type=float, default=100)
    parser.add_argument("--link-mb", type=float, default=50, help="methods: the link image_files is timed behind, MB/s (0: skip)")
    parser.add_argument("--rss-manifests", type=int, default=10_000)
    parser.add_argument("--soak-requests", type=int, default=1_000_000)
    parser.add_argument("--soak-refs", type=int, default=3000)
    parser.add_argument("--soak-cache", default="8MiB")
    parser.add_argument("--baseline", default="", help="peers, tls, memory, methods (image_files behind a link): a second ocirpc binary to alternate with --binary")
    parser.add_argument("--memory-calls", type=int, default=16, help="memory: calls at once, each on its own layer")
    parser.add_argument("--memory-files", type=int, default=7, help="memory: files asked from each layer")
    parser.add_argument("--memory-file-mb", type=int, default=64, help="memory: each file's size")
    parser.add_argument("--memory-read-after", type=float, default=40, help="memory: the slow reader's wait, seconds")
    parser.add_argument("--memory-part", default="all", choices=["all", "files", "manifests", "downloads"],
                        help="memory: which part to run")
    parser.add_argument("--memory-manifests", type=int, default=256, help="memory: image_manifest calls at once")
    parser.add_argument("--memory-download-mb", type=int, default=64, help="memory: each downloaded layer's size")
    parser.add_argument("--floor-first", type=int, default=0,
                        help="peers: runs of the C libcurl client before each condition's rounds, each reported on its own"
                             " row (does the first measurement after the registry is filled, or after a condition"
                             " changes, cost more?)")
    parser.add_argument("--skopeo-manifests", type=int, default=200, help="peers: skopeo's share (it is slow)")
    parser.add_argument("--client-manifests", type=int, default=1000, help="clients: manifests in the batch answer")
    parser.add_argument("--client-padding", type=int, default=15000, help="clients: bytes of annotation in each manifest")
    parser.add_argument("--baseline-clients", default="",
                        help="clients: the clients/ folder of another checkout, to alternate with this tree's")
    parser.add_argument("--plot", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers.png"),
                        help="peers: where to draw the picture ('' for none)")
    args = parser.parse_args()
    from peers import peers
    from tls import tls
    from memory import memory
    from clients import clients
    suites = {"core": core, "methods": methods, "soak": soak, "cache": cache, "peers": peers, "tls": tls, "memory": memory,
              "clients": clients}
    suites[args.suite](args)


if __name__ == "__main__":
    main()
