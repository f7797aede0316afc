"""bench/run tls: the same uncached tag manifests from a TLS registry (a
docker-registry serving the bench registry's storage with a certificate of
its own CA), 8 at a time, where ocirpc takes every request on one HTTP/2
connection and the others open one TLS connection per worker:

  wrk -c 8 over https (the ceiling), the ocirpc batch, Python http.client
  with 8 threads over TLS; with --baseline, a second ocirpc binary
  (e.g. the one before a change) alternating with the first.

Every client goes through tcp_relay.py (0 or 20 ms round trip added, TLS
untouched), which counts the connections each opened. Nothing is pinned.
Two measures: 1,000 manifests per spawn (rate, CPU per manifest), and 8
manifests per spawn (CPU per spawn: start-up, handshakes and 8 requests).
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

from peers import ChildUsage, WORKERS, measured, wrk_script

HERE = os.path.dirname(os.path.abspath(__file__))


class TLSTwin:
    """docker-registry over TLS on the storage of `registry`."""

    def __init__(self, registry):
        from fixture_registry import free_port, registry_config
        self.dir = tempfile.mkdtemp(prefix="ocirpc-bench-tls-")
        self.ca_file = os.path.join(self.dir, "cert.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", os.path.join(self.dir, "key.pem"), "-out", self.ca_file], check=True, capture_output=True)
        self.port = free_port()
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write(registry_config(f"{registry.dir}/storage", f"127.0.0.1:{self.port}",
                                    f"  tls:\n    certificate: {self.ca_file}\n    key: {self.dir}/key.pem\n"))
        self.proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", config],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import socket
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the TLS registry did not start")

    def close(self):
        self.proc.terminate()
        self.proc.wait()


class Relay:
    """tcp_relay.py in front of `port`, adding `delay_ms` per round trip."""

    def __init__(self, port, delay_ms):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "peers", "tcp_relay.py"), str(port), str(delay_ms / 2000)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.host = f"127.0.0.1:{self.proc.stdout.readline().strip()}"

    def close(self):
        """The number of connections it accepted."""
        self.proc.stdin.close()
        accepted = int(self.proc.stdout.readline())
        self.proc.wait()
        return accepted


def run_client(name, binary, args, host, repo, count, ca_file, lua):
    """(manifests per second, CPU seconds per manifest) of one run."""
    from bench import MANIFEST_ACCEPT
    with ChildUsage() as usage:
        if name == "wrk -c 8":
            _, out = measured(["wrk", "-t", "1", "-c", str(WORKERS), "-d", f"{args.wrk_seconds}s", "-s", lua,
                               "-H", f"Accept: {MANIFEST_ACCEPT}", f"https://{host}/"])
            text = out.decode()
            if "Non-2xx" in text:
                raise RuntimeError(f"wrk got error answers:\n{text}")
            done = int(next(line for line in text.splitlines() if "requests in" in line).split()[0])
            rate = float(next(line for line in text.splitlines() if line.startswith("Requests/sec:")).split()[1])
        elif name.startswith("ocirpc"):
            refs = ",".join(f'"{host}/{repo}:t{i}"' for i in range(count))
            request = ('{"jsonrpc":"2.0","id":1,"method":"ec.oci.image_manifests","params":[[%s]]}\n' % refs).encode()
            elapsed, out = measured(
                [binary, "--log-level", "error", "--max-concurrency", str(WORKERS), "--cache-dir", "none",
                 "--secure-registry", host, "--ca-file", ca_file], stdin_bytes=request)
            assert out.count(b'"schemaVersion"') == count, out[:300]
            done, rate = count, count / elapsed
        else:
            os.environ["BENCH_CA_FILE"] = ca_file
            try:
                elapsed, _ = measured([sys.executable, os.path.join(HERE, "peers", "http_client.py"), host, repo,
                                       str(count), str(WORKERS)])
            finally:
                del os.environ["BENCH_CA_FILE"]
            done, rate = count, count / elapsed
    return rate, usage.cpu / done


def tls(args):
    from fixture_registry import Registry
    binaries = {"ocirpc batch": args.binary}
    if args.baseline:
        binaries["ocirpc batch (baseline)"] = args.baseline
    clients = ["wrk -c 8", *binaries, "python http.client"]
    print(f"# TLS benchmark ({os.cpu_count()} cores, {args.manifests} manifests, {WORKERS} at a time, "
          f"{args.rounds} rounds; baseline: {args.baseline or 'none'})")
    registry = Registry()
    twin = None
    lua = None
    try:
        repo = "tls/app"
        for i in range(args.manifests):
            registry.push_image(repo, f"t{i}", annotations={"i": str(i)})
        twin = TLSTwin(registry)
        lua = wrk_script(repo, args.manifests)
        for delay in (0, 20):
            for count, what in ((args.manifests, "per spawn"), (WORKERS, "small spawns")):
                if what == "small spawns" and delay:
                    continue
                samples = {name: [] for name in clients}
                connections = {}
                rounds = args.rounds if count > WORKERS else args.rounds * 10
                for _ in range(rounds):
                    for name in clients:
                        if name == "wrk -c 8" and count == WORKERS:
                            continue
                        relay = Relay(twin.port, delay)
                        samples[name].append(run_client(name, binaries.get(name), args, relay.host, repo, count,
                                                        twin.ca_file, lua))
                        connections[name] = relay.close()
                print(f"\n## TLS, +{delay} ms, {count} manifests {what}\n")
                print("| client | manifests/s | client CPU per manifest | CPU per spawn | TLS connections |\n"
                      "|---|---|---|---|---|")
                for name in clients:
                    if not samples[name]:
                        continue
                    rate = statistics.median(r for r, _ in samples[name])
                    cpu = statistics.median(c for _, c in samples[name])
                    spawn = "-" if name == "wrk -c 8" else f"{cpu * count * 1e3:,.1f} ms"
                    print(f"| {name} | {rate:,.0f} | {cpu * 1e6:,.0f} us | {spawn} | {connections[name]} |")
    finally:
        if lua:
            os.unlink(lua)
        if twin:
            twin.close()
        registry.close()
