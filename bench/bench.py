#!/usr/bin/env python3
"""ocirpc benchmarks: measured from outside, the way a client sees the server.

core: pipelined round trips of a trivial method (requests/s), spawn to first
      response latency, and RSS sampled across 1M requests.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def requests_payload(method, count, start_id=0):
    line = '{"jsonrpc":"2.0","id":%d,"method":"' + method + '"}\n'
    return "".join(line % i for i in range(start_id, start_id + count)).encode()


def pipelined(binary, method, count, sample_every=0.05):
    """Writes `count` requests as fast as the pipe takes them, reads every
    response; returns (seconds, responses, rss samples in KiB)."""
    payload = requests_payload(method, count)
    proc = subprocess.Popen([binary, "--log-level", "error"], stdin=subprocess.PIPE,
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
    while True:
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", nargs="?", default="core", choices=["core"])
    parser.add_argument("--binary", default=".build/release/ocirpc")
    parser.add_argument("--throughput-requests", type=int, default=500_000)
    parser.add_argument("--rss-requests", type=int, default=1_000_000)
    parser.add_argument("--latency-runs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    {"core": core}[args.suite](args)


if __name__ == "__main__":
    main()
