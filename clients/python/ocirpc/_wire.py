"""What both clients share: finding the binary, encoding requests, the
method table."""
import json
import os
import shutil

DEFAULT_BINARY_ENV = "OCIRPC_BINARY"


def find_binary(binary=None):
    """`binary`, else $OCIRPC_BINARY, else `ocirpc` on PATH."""
    found = binary or os.environ.get(DEFAULT_BINARY_ENV) or shutil.which("ocirpc")
    if not found:
        raise FileNotFoundError("ocirpc binary not found: pass binary=, set $OCIRPC_BINARY or put it on PATH")
    return found


def encode(message):
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def request(request_id, method, params):
    message = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def notification(method, params):
    message = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def named(**params):
    """Named params without the ones left out (None)."""
    return {k: v for k, v in params.items() if v is not None}
