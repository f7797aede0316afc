"""A/B of the disk cache's write path, binaries alternating in each round:

    python3 bench/ab_disk.py cold OLD_BINARY NEW_BINARY
    python3 bench/ab_disk.py refresh OLD_BINARY NEW_BINARY

1,000 tags pushed to a fresh registry; each round gives every binary, in
turn, a new cache directory and one image_manifests batch (8 workers).
cold: that batch, into the empty cache; reports when the answer came and
when the process exited (its queued disk writes done). refresh: a first
process fills the cache, and once the tags' TTL (1 s) is over the timed
second process asks for them again (they name the same manifests).

Directories are kept until the end: deleting thousands of files between
rounds makes the next round's file creation slow on ext4 (its inode
allocator skips recently deleted inodes), which would measure the bench
rather than the cache.
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


def timed(command, batch):
    """(seconds to the answer, seconds to exit, CPU seconds) of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    process.stdin.write(batch)
    process.stdin.flush()
    line = process.stdout.readline()
    answered = time.perf_counter() - start
    process.stdin.close()
    process.stdout.read()
    process.wait()
    exited = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert line.count(b'"schemaVersion"') == 1000, line[:300]
    return answered, exited, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(mode, bins):
    registry = Registry()
    for i in range(1000):
        registry.push_image("ab/app", f"t{i}", annotations={"i": str(i)})
    tags = ",".join(f'"{registry.host}/ab/app:t{i}"' for i in range(1000))
    batch = ('{"jsonrpc":"2.0","id":1,"method":"ec.oci.image_manifests","params":[[%s]]}\n' % tags).encode()
    results = {b: {"answered": [], "exited": [], "cpu": []} for b in bins}
    directories = []
    try:
        for _ in range(int(os.environ.get("ROUNDS", "4"))):
            for b in bins:
                directory = tempfile.mkdtemp(dir="/var/tmp")
                directories.append(directory)
                command = [b, "--log-level", "error", "--max-concurrency", "8", "--cache-dir", directory]
                if mode == "refresh":
                    command += ["--tag-ttl", "1s"]
                    subprocess.run(command, input=batch, capture_output=True, check=True)
                    time.sleep(1.2)
                answered, exited, cpu = timed(command, batch)
                results[b]["answered"].append(1000 / answered)
                results[b]["exited"].append(1000 / exited)
                results[b]["cpu"].append(cpu * 1000)
    finally:
        registry.close()
        for directory in directories:
            shutil.rmtree(directory)
    what = "cold batch" if mode == "cold" else "tags again after their TTL"
    for b in bins:
        r = results[b]
        print(f"{b}: {what}: answered at {statistics.median(r['answered']):,.0f} manifests/s, exited at "
              f"{statistics.median(r['exited']):,.0f}/s, CPU {statistics.median(r['cpu']):,.0f} us per manifest")


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("cold", "refresh"):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
