"""Peer: oras-py (pip install oras), N threads, a registry client each,
fetching the manifests of REPO:t0..t{COUNT-1}."""
import sys
import threading

import oras.provider


def main(host, repo, count, workers, user=None, password=None):
    next_index = iter(range(count))
    lock = threading.Lock()
    failures = []

    def work():
        try:
            fetch()
        except Exception as error:  # a thread that cannot start fails the run
            failures.append(("thread", repr(error)))

    def fetch():
        registry = oras.provider.Registry(hostname=host, insecure=True)
        if user:
            registry.auth.set_basic_auth(user, password)
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            try:
                manifest = registry.get_manifest(f"{host}/{repo}:t{index}")
                if not manifest:
                    failures.append(index)
            except Exception as error:  # counted, reported below
                failures.append((index, repr(error)))

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        sys.exit(f"{len(failures)} manifests failed, e.g. {failures[0]}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:7])
