"""Errors raised by the clients."""


class OcirpcError(Exception):
    """Base of every error the clients raise."""


class RPCError(OcirpcError):
    """The server answered with a JSON-RPC error object."""

    def __init__(self, code, message, data=None):
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.data = data or {}

    @property
    def reason(self):
        """The contract's snake_case reason, e.g. `manifest_unknown`."""
        return self.data.get("reason")

    @property
    def ref(self):
        """The reference the error is about, when there is one."""
        return self.data.get("ref")

    @classmethod
    def from_object(cls, error):
        return cls(error.get("code"), error.get("message", ""), error.get("data"))


class ServerDied(OcirpcError):
    """The server exited (or closed its output) before answering."""

    def __init__(self, returncode, stderr_tail):
        super().__init__(f"ocirpc exited (status {returncode}); last stderr:\n{stderr_tail}")
        self.returncode = returncode
        self.stderr_tail = stderr_tail
