"""bench/run memory: what many calls at once hold, against a registry
serving layers that unpack to large JSON files (each layer a few hundred
KB of gzip, each file 64 MiB of `[0,0,...]` by default).

N `blob_files` calls, each on its own layer and asking for several of its
files, sent together to one server:

  slow reader: the client reads nothing for a while, then everything;
  reading: the client reads answers as they come.

For each: peak RSS of the server (its rusage), how many calls were
answered and how many refused with memory_limit, and the wall time. With
--baseline, a second binary (e.g. the one before a change) alternates with
--binary. The registry is Debian's docker-registry, as in every suite.
"""
import json
import os
import subprocess
import tarfile
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


def run_once(binary, request, read_after):
    """Sends `request` to a fresh server; reads its output after
    `read_after` seconds. Peak RSS (KB), answers, memory_limit refusals,
    other errors, seconds."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [binary, "--log-level", "error", "--cache-bytes", "0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
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
        elif b'"reason":"memory_limit"' in line[-512:]:
            refused += 1
        else:
            other += 1
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss, answers, refused, other, time.perf_counter() - start


def memory(args):
    from fixture_registry import Registry
    count, asked = args.memory_calls, args.memory_files
    print(f"# memory benchmark ({os.cpu_count()} cores): {count} blob_files calls, "
          f"{asked} files of {args.memory_file_mb} MiB each asked from each layer")
    registry = Registry()
    try:
        built = layers(count, asked, args.memory_file_mb << 20)
        digests = [registry.push_blob("bench/memory", layer) for layer in built]
        print(f"pushed {count} layers of {len(built[0]) / 1e3:.0f} KB")
        paths = [f"data/{i}.json" for i in range(asked)]
        request = b"".join(
            (json.dumps({"jsonrpc": "2.0", "id": i, "method": "ec.oci.blob_files",
                         "params": [f"{registry.host}/bench/memory@{d}", paths]}) + "\n").encode()
            for i, d in enumerate(digests))
        binaries = [("binary", args.binary)] + ([("baseline", args.baseline)] if args.baseline else [])
        for label, read_after in (("slow reader", args.memory_read_after), ("reading", 0)):
            for round_ in range(args.repeat):
                for name, binary in binaries:
                    rss, answers, refused, other, seconds = run_once(binary, request, read_after)
                    print(f"{label:11} round {round_ + 1} {name:8}: peak {rss / 1e6:.2f} GB, "
                          f"{answers} answered, {refused} memory_limit, {other} other errors, {seconds:.1f} s")
    finally:
        registry.close()
