"""Errors raised by the clients: one base class, one subclass per error code
of the contract (`protocol/openrpc.json`, `components.errors`), and the two
ways a call can end without an answer (a timeout, a server that died)."""
from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional, Type

#: The contract's error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_CANCELLED = -32800
NOT_FOUND = -32001
ACCESS_DENIED = -32002
INTEGRITY_FAILURE = -32003
REGISTRY_UNAVAILABLE = -32004
LIMIT_EXCEEDED = -32005
UNSUPPORTED_CONTENT = -32006


class OcirpcError(Exception):
    """Base of every error the clients raise."""


class RPCError(OcirpcError):
    """The server answered with a JSON-RPC error object. Raised as the
    subclass for its code (`NotFound`, `AccessDenied`, ...) when it has one."""

    #: The code this class stands for (None: any code).
    CODE: Optional[int] = None

    def __init__(self, code: int, message: str, data: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.data: Dict[str, Any] = dict(data or {})

    @property
    def reason(self) -> Optional[str]:
        """The contract's snake_case reason, e.g. `manifest_unknown`."""
        reason = self.data.get("reason")
        return reason if isinstance(reason, str) else None

    @property
    def ref(self) -> Optional[str]:
        """The reference the error is about, when there is one."""
        ref = self.data.get("ref")
        return ref if isinstance(ref, str) else None

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later (the server says)."""
        return self.data.get("retryable") is True

    @classmethod
    def from_object(cls, error: Mapping[str, Any]) -> "RPCError":
        """The error for a JSON-RPC error object, as the class of its code."""
        code = error.get("code")
        code = code if isinstance(code, int) else INTERNAL_ERROR
        message = error.get("message")
        data = error.get("data")
        kind = _BY_CODE.get(code, RPCError)
        return kind(code, message if isinstance(message, str) else "", data if isinstance(data, Mapping) else None)


class NotFound(RPCError):
    """The registry says the repository, manifest, blob or tag does not exist (-32001)."""

    CODE = NOT_FOUND


class AccessDenied(RPCError):
    """The registry refused the credentials, or there were none (-32002)."""

    CODE = ACCESS_DENIED


class IntegrityFailure(RPCError):
    """Content did not match its digest or size (-32003)."""

    CODE = INTEGRITY_FAILURE


class RegistryUnavailable(RPCError):
    """The registry could not be reached or failed (-32004); often retryable."""

    CODE = REGISTRY_UNAVAILABLE


class LimitExceeded(RPCError):
    """Content or a request passed one of the server's limits (-32005)."""

    CODE = LIMIT_EXCEEDED


class UnsupportedContent(RPCError):
    """Content the method cannot handle: a media type, a compression (-32006)."""

    CODE = UNSUPPORTED_CONTENT


class InvalidParams(RPCError):
    """The call's parameters were refused, e.g. a reference that does not parse (-32602)."""

    CODE = INVALID_PARAMS


class Cancelled(RPCError):
    """The request was cancelled before it finished (-32800)."""

    CODE = REQUEST_CANCELLED


_BY_CODE: Dict[int, Type[RPCError]] = {
    kind.CODE: kind
    for kind in (
        NotFound, AccessDenied, IntegrityFailure, RegistryUnavailable, LimitExceeded, UnsupportedContent,
        InvalidParams, Cancelled)
    if kind.CODE is not None
}


class Timeout(OcirpcError, TimeoutError):
    """A call passed its timeout; it was cancelled on the server. Both an
    `OcirpcError` and the built-in `TimeoutError`."""


class IncompleteBatch(OcirpcError):
    """A streamed batch ended without an item for each distinct ref it
    asked for, which the protocol promises; `missing` are those refs. Left
    out silently, they would read as refs that failed."""

    def __init__(self, missing: Iterable[str]) -> None:
        self.missing = sorted(missing)
        super().__init__(f"ec.oci.image_manifests ended without an answer for {len(self.missing)} ref(s): "
                         + ", ".join(self.missing[:5]) + (" ..." if len(self.missing) > 5 else ""))


class ServerDied(OcirpcError):
    """The server exited (or closed its output) before answering."""

    def __init__(self, returncode: Optional[int], stderr_tail: str) -> None:
        super().__init__(f"ocirpc exited (status {returncode}); last stderr:\n{stderr_tail}")
        self.returncode = returncode
        self.stderr_tail = stderr_tail
