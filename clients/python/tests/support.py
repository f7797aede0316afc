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
import atexit  # noqa: E402
import socket  # noqa: E402

# A listener that never accepts: connections complete in the kernel's
# backlog and requests hang until they are cancelled or time out.
_silent = socket.socket()
_silent.bind(("127.0.0.1", 0))
_silent.listen(64)
atexit.register(_silent.close)
BLACKHOLE = f"127.0.0.1:{_silent.getsockname()[1]}/never/answers:v1"

_registry = None
fixtures = None


def start():
    global _registry, fixtures
    if _registry is None:
        _registry = fixture_registry.Registry()
        fixtures = fixture_registry.push_client_fixtures(_registry)
    return fixtures


def fixture_registry_in_use():
    """The registry `start` started, for a test to push more to."""
    return _registry


def stop():
    global _registry
    if _registry is not None:
        _registry.close()
        _registry = None


def server_cut_off_mid_answer(directory):
    """A stand-in for a server killed while it writes an answer (by the
    OOM killer, say): it reads one request, writes part of a line, and
    exits with status 9. The path of the executable."""
    return _script(directory, 'read request\nprintf \'{"jsonrpc":"2.0","id":1,"result":{"cut\'\nexit 9\n')


def server_writing_strange_messages_first(directory):
    """A stand-in for a server gone wrong: before it answers the first
    request ({"ok": true}), it writes messages no client can take (an id
    that is an object, progress whose params are a list). The path of the
    executable."""
    return _script(directory, """read request
echo '{"jsonrpc":"2.0","id":{"a":1},"result":1}'
echo '{"jsonrpc":"2.0","method":"$/progress","params":[1]}'
echo '{"jsonrpc":"2.0","id":1,"result":{"ok":true}}'
exec sleep 60
""")


def server_leaving_a_ref_out_of_a_batch(directory):
    """A stand-in for a server gone wrong: it answers a streamed batch of
    the refs "a" and "b" with progress for "a" only, then ends the batch
    with its `{}`. The path of the executable."""
    return _script(directory, r"""read request
token=$(printf '%s' "$request" | sed -n 's/.*"partialResultToken":"\([^"]*\)".*/\1/p')
id=$(printf '%s' "$request" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
printf '{"jsonrpc":"2.0","method":"$/progress","params":{"token":"%s","value":{"ref":"a","manifest":{}}}}\n' "$token"
printf '{"jsonrpc":"2.0","id":%s,"result":{}}\n' "$id"
exec sleep 60
""")


def _script(directory, body):
    path = os.path.join(directory, "stand-in-server")
    with open(path, "w") as script:
        script.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path
