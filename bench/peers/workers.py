"""What the threaded peers share: N threads take the indexes 0..COUNT-1 in
turn, each with a client of its own; any failure (a fetch, or a thread that
cannot start) fails the run with a non-zero exit."""
import sys
import threading


def run(count, workers, make_client, fetch):
    """Calls `fetch(client, index)` for every index (truthy when it got a
    manifest), `make_client()` once per thread."""
    next_index = iter(range(count))
    lock = threading.Lock()
    failures = []

    def work():
        try:
            client = make_client()
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                try:
                    if not fetch(client, index):
                        failures.append(index)
                except Exception as error:  # counted, reported below
                    failures.append((index, repr(error)))
        except Exception as error:  # a thread that cannot start fails the run
            failures.append(("thread", repr(error)))

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        sys.exit(f"{len(failures)} manifests failed, e.g. {failures[0]}")


def arguments():
    """HOST REPO COUNT WORKERS [USER PASSWORD] from the command line."""
    return sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:7]
