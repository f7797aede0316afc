"""What both clients share: finding the binary, encoding requests, reading
answers."""
from __future__ import annotations

import json
import os
import shutil
from typing import Any, Dict, Optional

DEFAULT_BINARY_ENV = "OCIRPC_BINARY"

#: A JSON value as the server sends it.
JSON = Any
#: A JSON-RPC message.
Message = Dict[str, Any]


def find_binary(binary: Optional[str] = None) -> str:
    """`binary`, else $OCIRPC_BINARY, else `ocirpc` on PATH."""
    found = binary or os.environ.get(DEFAULT_BINARY_ENV) or shutil.which("ocirpc")
    if not found:
        raise FileNotFoundError("ocirpc binary not found: pass binary=, set $OCIRPC_BINARY or put it on PATH")
    return found


def encode(message: Message) -> bytes:
    """One line of the wire: compact JSON and a newline."""
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> Optional[Message]:
    """The message on one line; None for a blank line, one that is not an
    object, or one that is not JSON: the last line of a server killed while
    it wrote, which must not stop the reader before it reports the death."""
    if not line.strip():
        return None
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def answered_id(message: Message) -> Optional[int]:
    """The id of the request `message` answers, when it can be one of ours
    (an integer, not a boolean); None otherwise."""
    found = message.get("id")
    return found if isinstance(found, int) and not isinstance(found, bool) else None


def request(request_id: int, method: str, params: JSON) -> Message:
    """A request; `params` None means none."""
    message: Message = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def notification(method: str, params: JSON) -> Message:
    """A notification; `params` None means none."""
    message: Message = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def named(**params: JSON) -> Dict[str, JSON]:
    """Named params without the ones left out (None)."""
    return {k: v for k, v in params.items() if v is not None}
