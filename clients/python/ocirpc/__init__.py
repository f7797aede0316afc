"""Client for ocirpc: the ec.oci.* policy builtins served over JSON-RPC on
stdio. `Client` is synchronous (thread-safe); `AsyncClient` is for asyncio.
Both spawn the server and close it when done."""
from .errors import (
    AccessDenied, Cancelled, IncompleteBatch, IntegrityFailure, InvalidParams, LimitExceeded, NotFound, OcirpcError,
    RegistryUnavailable, RPCError, ServerDied, Timeout, UnsupportedContent)
from .client import Client
from .aio import AsyncClient

__all__ = [
    "Client", "AsyncClient", "OcirpcError", "RPCError", "ServerDied", "Timeout", "NotFound", "AccessDenied",
    "IntegrityFailure", "RegistryUnavailable", "LimitExceeded", "UnsupportedContent", "InvalidParams", "Cancelled",
    "IncompleteBatch",
]
