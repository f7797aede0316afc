"""A/B of tags fetched again after their TTL, with the disk cache on:
python3 bench/ab_refresh.py OLD_BINARY NEW_BINARY

1,000 tags pushed; each round, for each binary in turn: a first process
fills a new cache directory, and once the tags' TTL (1 s) is over a second
process asks for them again (they name the same manifests). Reports the
second process's manifests/s (spawn to exit, its disk writes done) and CPU
per manifest. Directories are kept until the end (see ab_cold.py).
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
    registry.push_image("refresh/app", f"t{i}", annotations={"i": str(i)})
tags = ",".join(f'"{registry.host}/refresh/app:t{i}"' for i in range(1000))
batch = ('{"jsonrpc":"2.0","id":1,"method":"ec.oci.image_manifests","params":[[%s]]}\n' % tags).encode()
results = {b: {"rate": [], "cpu": []} for b in bins}
directories = []
for _ in range(int(os.environ.get("ROUNDS", "4"))):
    for b in bins:
        directory = tempfile.mkdtemp(dir="/var/tmp")
        directories.append(directory)
        command = [b, "--log-level", "error", "--max-concurrency", "8", "--cache-dir", directory, "--tag-ttl", "1s"]
        subprocess.run(command, input=batch, capture_output=True, check=True)
        time.sleep(1.2)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        out = subprocess.run(command, input=batch, capture_output=True, check=True).stdout
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert out.count(b'"schemaVersion"') == 1000
        results[b]["rate"].append(1000 / elapsed)
        results[b]["cpu"].append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
registry.close()
for directory in directories:
    shutil.rmtree(directory)
for b in bins:
    r = results[b]
    print(f"{b}: tags again after their TTL: {statistics.median(r['rate']):,.0f} manifests/s, "
          f"CPU {statistics.median(r['cpu']):,.0f} us per manifest")
