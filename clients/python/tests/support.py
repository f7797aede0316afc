"""Shared by the client tests: the real test registry with the client
fixtures, and the ocirpc binary to spawn."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "testing"))
sys.path.insert(0, os.path.join(HERE, ".."))

import fixture_registry  # noqa: E402

BINARY = os.environ.get("OCIRPC_BINARY") or os.path.join(ROOT, ".build", "release", "ocirpc")
import socket  # noqa: E402

# A listener that never accepts: connections complete in the kernel's
# backlog and requests hang until they are cancelled or time out.
_silent = socket.socket()
_silent.bind(("127.0.0.1", 0))
_silent.listen(64)
BLACKHOLE = f"127.0.0.1:{_silent.getsockname()[1]}/never/answers:v1"

_registry = None
fixtures = None


def start():
    global _registry, fixtures
    if _registry is None:
        _registry = fixture_registry.Registry()
        fixtures = fixture_registry.push_client_fixtures(_registry)
    return fixtures


def stop():
    global _registry
    if _registry is not None:
        _registry.close()
        _registry = None
