"""Peer: oras-py (pip install oras), N threads, a registry client each,
fetching the manifests of REPO:t0..t{COUNT-1}."""
import oras.provider

import workers


def main(host, repo, count, threads, user=None, password=None):
    def make_client():
        registry = oras.provider.Registry(hostname=host, insecure=True)
        if user:
            registry.auth.set_basic_auth(user, password)
        return registry

    workers.run(count, threads, make_client, lambda registry, index: registry.get_manifest(f"{host}/{repo}:t{index}"))


if __name__ == "__main__":
    main(*workers.arguments())
