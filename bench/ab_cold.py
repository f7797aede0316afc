"""A/B of the cold path with the disk cache on: python3 bench/ab_cold.py OLD_BINARY NEW_BINARY

1,000 tags pushed to a fresh registry; each round runs every binary, in
turn, on one image_manifests batch (8 workers) into a new cache directory.
The directories are kept until the end: deleting thousands of files
between rounds makes the next round's file creation slow on ext4 (its
inode allocator skips recently deleted inodes), which would measure the
bench rather than the cache. Reports when the answer came (manifests/s),
when the process exited (its queued disk writes done), and CPU per manifest.
"""
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "testing"))
from fixture_registry import Registry  # noqa: E402

bins = sys.argv[1:]
registry = Registry()
for i in range(1000):
    registry.push_image("cold/app", f"t{i}", annotations={"i": str(i)})
tags = ",".join(f'"{registry.host}/cold/app:t{i}"' for i in range(1000))
batch = ('{"jsonrpc":"2.0","id":1,"method":"ec.oci.image_manifests","params":[[%s]]}\n' % tags).encode()
results = {b: {"answered": [], "exited": [], "cpu": []} for b in bins}
directories = []
for _ in range(int(os.environ.get("ROUNDS", "4"))):
    for b in bins:
        directory = tempfile.mkdtemp(dir="/var/tmp")
        directories.append(directory)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        process = subprocess.Popen([b, "--log-level", "error", "--max-concurrency", "8", "--cache-dir", directory],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        process.stdin.write(batch)
        process.stdin.flush()
        line = process.stdout.readline()
        answered = time.perf_counter() - start
        process.stdin.close()
        process.stdout.read()
        process.wait()
        exited = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert line.count(b'"schemaVersion"') == 1000
        results[b]["answered"].append(1000 / answered)
        results[b]["exited"].append(1000 / exited)
        results[b]["cpu"].append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
registry.close()
for directory in directories:
    shutil.rmtree(directory)
for b in bins:
    r = results[b]
    print(f"{b}: answered at {statistics.median(r['answered']):,.0f} manifests/s, exited at "
          f"{statistics.median(r['exited']):,.0f}/s, CPU {statistics.median(r['cpu']):,.0f} us per manifest")
