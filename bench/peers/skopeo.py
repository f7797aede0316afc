"""Peer: `skopeo inspect --raw`, N processes at a time, for the manifests of
REPO:t0..t{COUNT-1}. Its children are waited for here, so this process's
rusage includes theirs."""
import subprocess
import sys


def main(host, repo, count, workers, user=None, password=None):
    pending = list(range(count))
    running = []
    failures = 0
    while pending or running:
        while pending and len(running) < workers:
            index = pending.pop(0)
            command = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
            if user:
                command += ["--creds", f"{user}:{password}"]
            running.append(subprocess.Popen(command + [f"docker://{host}/{repo}:t{index}"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # Wait for the oldest, then reap any others already done.
        failures += running.pop(0).wait() != 0
        still = []
        for process in running:
            if process.poll() is None:
                still.append(process)
            else:
                failures += process.returncode != 0
        running = still
    if failures:
        sys.exit(f"{failures} manifests failed")


if __name__ == "__main__":
    import workers
    main(*workers.arguments())
