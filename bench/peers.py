"""bench/run peers: ocirpc's batch side by side with what users would pick
instead, fetching the same uncached tag manifests 8 at a time:

  wrk -c 8 (the ceiling: HTTP alone), a C client on libcurl's multi
  interface (peers/curl_multi.c: HTTP through libcurl and nothing else, the
  floor of any libcurl client), the ocirpc batch, Python http.client with 8
  threads, oras-py with 8 threads, `skopeo inspect --raw` 8 at a time.

The ocirpc batch runs three ways: with no disk cache (the comparison with
the peers, which keep nothing), and as users run it by default, with the
disk cache: a first process on an empty cache directory (it fetches
everything and writes the cache behind its answers, and its CPU includes
those writes), then a second process on that directory within the tag TTL
(it answers from disk and never loads libcurl).

Each client is a child process; its CPU is its rusage (children included),
from spawn to exit, so a fixed start-up cost counts. Conditions: the
registry pinned to core 0 and the client to core 1 (taskset), or nothing
pinned; 0 or 20 ms added per request (the bench proxy, pinned with the
registry). Clients alternate within each round, each round starting one
client later (see rotated()); the figure is the median
over the rounds. A last pass counts the HTTP requests each client makes per
manifest through a counting proxy, against an anonymous registry and one
with bearer-token auth (bench/run builds ocirpc-bench-registry for it);
on the latter, each client's rate and CPU are measured too.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKERS = 8
CURL_FLOOR = "C libcurl multi"
DISK_FIRST = "ocirpc, disk cache, 1st run"
DISK_SECOND = "ocirpc, disk cache, 2nd run"
# With --baseline: the same batch from a second binary (the one before a
# change), alternating with the others in every round.
BASELINE = "ocirpc batch (baseline)"
# Cache directories of the runs with the disk cache, removed at the end of
# the suite (removing each at once would make the next run's file creation
# slower on ext4, which searches recently freed inodes).
_cache_directories = []


def curl_multi_binary():
    """peers/curl_multi.c, compiled once per run (against Debian's libcurl),
    before anything is measured."""
    path = os.path.join(tempfile.gettempdir(), f"ocirpc-bench-curl-multi-{os.getpid()}")
    if not os.path.exists(path):
        compiler = next((c for c in ("cc", "gcc", "clang") if subprocess.run(
            ["sh", "-c", f"command -v {c}"], stdout=subprocess.DEVNULL).returncode == 0))
        subprocess.run([compiler, "-O2", "-o", path, os.path.join(HERE, "peers", "curl_multi.c"), "-lcurl"],
                       check=True)
    return path


def measured(command, cpu=None, stdin_bytes=None):
    """Runs `command` (on core `cpu` when given); seconds from spawn to exit,
    CPU seconds of it and its waited-for children, and its stdout."""
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(stdin_bytes)
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed ({process.returncode}): {err.decode(errors='replace')[-500:]}")
    return elapsed, out


class ChildUsage:
    """CPU seconds used by children reaped between start() and stop()."""

    def __enter__(self):
        import resource
        self.before = resource.getrusage(resource.RUSAGE_CHILDREN)
        return self

    def __exit__(self, *exc):
        import resource
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = (after.ru_utime - self.before.ru_utime) + (after.ru_stime - self.before.ru_stime)


def pin(pid, cpus):
    subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], check=True, stdout=subprocess.DEVNULL)


def wrk_script(repo, count):
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    paths = ", ".join(f'"/v2/{repo}/manifests/t{i}"' for i in range(count))
    script.write("local paths = {%s}\nlocal n = 0\nrequest = function()\n  n = n %% #paths + 1\n"
                 "  return wrk.format(\"GET\", paths[n])\nend\n" % paths)
    script.close()
    return script.name


def run_client(name, args, host, repo, count, cpu, lua, credentials=None, token=None):
    """(manifests per second, CPU seconds per manifest) of one run;
    `credentials` (user, password) for a registry that asks for them, and
    the bearer `token` they buy for wrk and the C client, which cannot get
    one themselves."""
    from bench import MANIFEST_ACCEPT
    extra = [f"Authorization: Bearer {token}"] if token else []
    with ChildUsage() as usage:
        if name == "wrk -c 8":
            headers = [option for header in [f"Accept: {MANIFEST_ACCEPT}", *extra] for option in ("-H", header)]
            _, out = measured(["wrk", "-t", "1", "-c", str(WORKERS), "-d", f"{args.wrk_seconds}s", "-s", lua,
                               *headers, f"http://{host}/"], cpu)
            text = out.decode()
            if "Non-2xx" in text:
                raise RuntimeError(f"wrk got error answers:\n{text}")
            done = int(next(line for line in text.splitlines() if "requests in" in line).split()[0])
            rate = float(next(line for line in text.splitlines() if line.startswith("Requests/sec:")).split()[1])
        elif name == CURL_FLOOR:
            elapsed, _ = measured([curl_multi_binary(), host, repo, str(count), str(WORKERS), *extra], cpu)
            done, rate = count, count / elapsed
        elif name in ("ocirpc batch", BASELINE, DISK_FIRST, DISK_SECOND):
            refs = ",".join(f'"{host}/{repo}:t{i}"' for i in range(count))
            request = ('{"jsonrpc":"2.0","id":1,"method":"ec.oci.image_manifests","params":[[%s]]}\n' % refs).encode()
            binary = args.baseline if name == BASELINE else args.binary
            command = [binary, "--log-level", "error", "--max-concurrency", str(WORKERS)]
            if name == DISK_FIRST:
                _cache_directories.append(tempfile.mkdtemp(prefix="ocirpc-bench-peers-cache-"))
            if name in (DISK_FIRST, DISK_SECOND):
                command += ["--cache-dir", _cache_directories[-1]]
            if credentials:
                command = ["env", f"DOCKER_CONFIG={docker_config(host, *credentials)}", *command]
            elapsed, out = measured(command, cpu, stdin_bytes=request)
            assert out.count(b'"schemaVersion"') == count, out[:300]
            done, rate = count, count / elapsed
        else:
            script = {"python http.client": "http_client.py", "oras-py": "oras_py.py", "skopeo": "skopeo.py"}[name]
            elapsed, _ = measured([sys.executable, os.path.join(HERE, "peers", script), host, repo, str(count),
                                   str(WORKERS), *(credentials or ())], cpu)
            done, rate = count, count / elapsed
    return rate, usage.cpu / done


def peers(args):
    from fixture_registry import NativeLatencyProxy, Registry
    # Compiled here, not in its first run: the compiler is a child too, and
    # its CPU was counted as that run's (100 us a manifest more).
    curl_multi_binary()
    clients = ["wrk -c 8", CURL_FLOOR, "ocirpc batch", *([BASELINE] if args.baseline else []), DISK_FIRST,
               DISK_SECOND, "python http.client", "oras-py", "skopeo"]
    proxy_binary = os.path.join(os.path.dirname(args.binary), "ocirpc-bench-proxy")
    print(f"# peers benchmark ({os.cpu_count()} cores, {args.manifests} manifests, {WORKERS} at a time; "
          f"skopeo over {args.skopeo_manifests}; {args.rounds} rounds; baseline: {args.baseline or 'none'})")
    registry = Registry()
    lua = None
    try:
        repo = "peers/app"
        start = time.perf_counter()
        for i in range(args.manifests):
            registry.push_image(repo, f"t{i}", annotations={"i": str(i)})
        print(f"pushed {args.manifests} manifests in {time.perf_counter() - start:.1f} s")
        lua = wrk_script(repo, args.manifests)
        results = {}
        for pinned in (True, False):
            for delay in (0, 20):
                pin(registry.proc.pid, "0" if pinned else "0,1")
                proxy = None
                host = registry.host
                if delay:
                    proxy = NativeLatencyProxy(proxy_binary, registry.host, delay / 1000)
                    pin(proxy.proc.pid, "0" if pinned else "0,1")
                    host = proxy.host
                condition = f"{'pinned' if pinned else 'shared'}, +{delay} ms"
                samples = {name: [] for name in clients}
                first_runs = [run_client(CURL_FLOOR, args, host, repo, args.manifests, 1 if pinned else None, lua)
                              for _ in range(args.floor_first)]
                for round_number in range(args.rounds):
                    for name in rotated(clients, round_number):
                        count = args.skopeo_manifests if name == "skopeo" else args.manifests
                        samples[name].append(
                            run_client(name, args, host, repo, count, 1 if pinned else None, lua))
                if proxy:
                    proxy.close()
                wrk_rate = statistics.median(rate for rate, _ in samples["wrk -c 8"])
                print(f"\n## {condition}\n\n| client | manifests/s | vs wrk -c 8 | client CPU per manifest |\n|---|---|---|---|")
                for name in clients:
                    rate = statistics.median(r for r, _ in samples[name])
                    cpu = statistics.median(c for _, c in samples[name])
                    results[(condition, name)] = (rate, cpu, rate / wrk_rate)
                    print(f"| {name} | {rate:,.0f} | {rate / wrk_rate * 100:.0f}% | {cpu * 1e6:,.0f} us |")
                for number, (rate, cpu) in enumerate(first_runs, 1):
                    print(f"| {CURL_FLOOR}, run {number} before the rounds | {rate:,.0f} | {rate / wrk_rate * 100:.0f}% "
                          f"| {cpu * 1e6:,.0f} us |")
        pin(registry.proc.pid, "0,1")
        count_requests(args, registry, repo, proxy_binary, clients, lua)
        token_registry(args, clients)
        if args.plot:
            plot(results, clients, args.plot)
    finally:
        if lua:
            os.unlink(lua)
        registry.close()
        import shutil
        for directory in _cache_directories:
            shutil.rmtree(directory, ignore_errors=True)


def rotated(clients, round_number):
    """`clients` in this round's order: each round starts one client later,
    so that none always follows the same one (the registry's state after a
    client moves the next one's rate). The disk cache's second process stays
    right after its first, whose directory it reads within the tag TTL."""
    units = []
    for name in clients:
        if name == DISK_SECOND:
            units[-1].append(name)
        else:
            units.append([name])
    shift = round_number % len(units)
    return [name for unit in units[shift:] + units[:shift] for name in unit]


def count_requests(args, registry, repo, proxy_binary, clients, lua):
    """HTTP requests per manifest each client makes, through a counting proxy."""
    from fixture_registry import NativeLatencyProxy
    print("\n## HTTP requests per manifest (anonymous registry)\n")
    for name in [name for name in clients[1:] if name not in (DISK_FIRST, DISK_SECOND)]:
        proxy = NativeLatencyProxy(proxy_binary, registry.host, 0)
        count = min(args.skopeo_manifests, 100)
        run_client(name, args, proxy.host, repo, count, None, lua)
        proxy.close()
        print(f"- {name}: {proxy.counts['requests'] / count:.2f} requests per manifest")


def docker_config(host, user, password):
    """A DOCKER_CONFIG directory holding `user`'s credentials for `host`."""
    import base64
    import json
    directory = tempfile.mkdtemp(prefix="ocirpc-bench-docker-")
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    with open(os.path.join(directory, "config.json"), "w") as config:
        json.dump({"auths": {host: {"auth": auth}}}, config)
    return directory


def bearer_token(host, repo, user, password):
    """A pull token for `repo`, bought from the realm `host` challenges with."""
    import base64
    import json
    import re
    import urllib.error
    import urllib.parse
    import urllib.request
    try:
        urllib.request.urlopen(f"http://{host}/v2/")
        raise RuntimeError(f"{host} did not ask for a token")
    except urllib.error.HTTPError as error:
        challenge = dict(re.findall(r'(\w+)="([^"]*)"', error.headers["WWW-Authenticate"]))
    query = urllib.parse.urlencode({"service": challenge["service"], "scope": f"repository:{repo}:pull"})
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(f"{challenge['realm']}?{query}", headers={"Authorization": f"Basic {basic}"})
    with urllib.request.urlopen(request) as answer:
        body = json.load(answer)
    return body.get("token") or body["access_token"]


def token_registry(args, clients):
    """Against a registry with bearer-token auth (the kind users mostly
    meet): HTTP requests per manifest, registry requests (pings, manifests)
    counted by a proxy and tokens by the token server; then each client's
    rate and CPU per manifest, nothing pinned. wrk and the C client send a
    token bought beforehand, as the others send theirs: libcurl formats each
    request's header lines a byte at a time, so a token's length is part of
    every libcurl client's CPU."""
    from fixture_registry import NativeLatencyProxy
    count = min(args.skopeo_manifests, 100)
    repo = "peers/token"
    credentials = ("bench", "bench-secret")
    registry = subprocess.Popen(
        [os.path.join(os.path.dirname(args.binary), "ocirpc-bench-registry"), *credentials, repo,
         str(args.manifests)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lua = None
    try:
        host = registry.stdout.readline().strip()

        def tokens():
            registry.stdin.write("\n")
            registry.stdin.flush()
            return int(registry.stdout.readline().split()[1])

        print("\n## HTTP requests per manifest (bearer-token registry)\n")
        print("| client | registry requests | token requests | in all, per manifest |\n|---|---|---|---|")
        proxy_binary = os.path.join(os.path.dirname(args.binary), "ocirpc-bench-proxy")
        # The C client does not authenticate: it has no row here.
        for name in [name for name in clients[1:] if name not in (CURL_FLOOR, DISK_FIRST, DISK_SECOND)]:
            proxy = NativeLatencyProxy(proxy_binary, host, 0)
            before = tokens()
            run_client(name, args, proxy.host, repo, count, None, None, credentials=credentials)
            issued = tokens() - before
            proxy.close()
            requests = proxy.counts["requests"]
            print(f"| {name} | {requests} | {issued} | {(requests + issued) / count:.2f} |")

        lua = wrk_script(repo, args.manifests)
        measured_clients = [name for name in clients if name not in (DISK_FIRST, DISK_SECOND)]
        samples = {name: [] for name in measured_clients}
        token_bytes = 0
        for round_number in range(args.rounds):
            token = bearer_token(host, repo, *credentials)
            token_bytes = len(token)
            for name in rotated(measured_clients, round_number):
                n = args.skopeo_manifests if name == "skopeo" else args.manifests
                samples[name].append(
                    run_client(name, args, host, repo, n, None, lua, credentials=credentials, token=token))
        wrk_rate = statistics.median(rate for rate, _ in samples["wrk -c 8"])
        print(f"\n## bearer-token registry, shared, +0 ms (a {token_bytes}-byte token)\n")
        print("| client | manifests/s | vs wrk -c 8 | client CPU per manifest |\n|---|---|---|---|")
        for name in measured_clients:
            rate = statistics.median(r for r, _ in samples[name])
            cpu = statistics.median(c for _, c in samples[name])
            print(f"| {name} | {rate:,.0f} | {rate / wrk_rate * 100:.0f}% | {cpu * 1e6:,.0f} us |")
    finally:
        if lua:
            os.unlink(lua)
        registry.stdin.close()
        registry.wait()


def plot(results, clients, path):
    """Rate and CPU per manifest for each client in each condition, drawn by gnuplot."""
    conditions = sorted({condition for condition, _ in results}, key=lambda c: (not c.startswith("pinned"), c))
    data = tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False)
    for name in clients:
        fields = [f'"{name}"']
        for condition in conditions:
            rate, cpu, _ = results[(condition, name)]
            fields += [f"{rate:.1f}", f"{cpu * 1e6:.1f}"]
        data.write(" ".join(fields) + "\n")
    data.close()
    rate_columns = ", ".join(f"'{data.name}' using {2 + 2 * i}:xtic(1) title '{c}'" if i == 0 else
                             f"'' using {2 + 2 * i} title '{c}'" for i, c in enumerate(conditions))
    cpu_columns = ", ".join(f"'{data.name}' using {3 + 2 * i}:xtic(1) title '{c}'" if i == 0 else
                            f"'' using {3 + 2 * i} title '{c}'" for i, c in enumerate(conditions))
    script = f"""set terminal pngcairo size 1400,560 font 'sans,11'
set output '{path}'
set multiplot layout 1,2 title 'Uncached tag manifests, {WORKERS} at a time, against a local docker-registry'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top right
set grid ytics
set xtics rotate by -20
set title 'manifests per second (higher is better)'
set logscale y
plot {rate_columns}
set title 'client CPU per manifest, microseconds (lower is better)'
set key top left
plot {cpu_columns}
unset multiplot
"""
    subprocess.run(["gnuplot"], input=script.encode(), check=True)
    os.unlink(data.name)
    print(f"\nplot: {path}")
