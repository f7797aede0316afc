"""The synchronous client: one reader thread matches responses to callers;
any number of threads may call at once."""
import collections
import itertools
import queue
import subprocess
import threading

from . import _wire
from .errors import RPCError, ServerDied

_DONE = object()


class Client:
    """Spawns `ocirpc` and calls its methods. Use as a context manager, or
    call `close()`.

    Each `ec.oci.*` builtin is a method of the same name. Failures raise
    `RPCError` (with `code`, `reason`, `ref`); a server that dies raises
    `ServerDied` with the tail of its stderr. `timeout` (seconds) applies to
    each call unless a call gives its own; a call that times out is
    cancelled on the server (`$/cancelRequest`) and raises `TimeoutError`.
    """

    def __init__(self, binary=None, args=(), env=None, timeout=None):
        self.timeout = timeout
        self._process = subprocess.Popen(
            [_wire.find_binary(binary), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, bufsize=0)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending = {}      # id -> (event, slot)
        self._streams = {}      # token -> queue of progress values
        self._stderr = collections.deque(maxlen=40)
        self._dead = None
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    # -- lifecycle -------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self, timeout=10):
        """`shutdown`, `exit`, and wait for the process."""
        if self._process.poll() is None and self._dead is None:
            try:
                self.call("shutdown", None, timeout=timeout)
                self._send(_wire.notification("exit", None))
            except (ServerDied, TimeoutError, OSError):
                pass
        try:
            self._process.stdin.close()
        except OSError:
            pass
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    # -- the ec.oci.* methods --------------------------------------------

    def blob(self, ref: str, encoding: str = "utf8", timeout=None) -> str:
        return self.call("ec.oci.blob", _wire.named(ref=ref, encoding=encoding), timeout)

    def parsed_blob(self, ref: str, timeout=None):
        return self.call("ec.oci.parsed_blob", [ref], timeout)

    def blob_files(self, ref: str, paths: list, timeout=None) -> dict:
        return self.call("ec.oci.blob_files", [ref, list(paths)], timeout)

    def descriptor(self, ref: str, timeout=None) -> dict:
        return self.call("ec.oci.descriptor", [ref], timeout)

    def image_manifest(self, ref: str, platform: str = None, timeout=None) -> dict:
        return self.call("ec.oci.image_manifest", _wire.named(ref=ref, platform=platform), timeout)

    def image_manifests(self, refs, platform: str = None, timeout=None) -> dict:
        """The manifests of `refs` (ref -> manifest); refs that fail are left out."""
        return self.call("ec.oci.image_manifests", _wire.named(refs=list(refs), platform=platform), timeout)

    def iter_image_manifests(self, refs, platform: str = None, timeout=None):
        """Yields `(ref, manifest)` or `(ref, RPCError)` for each distinct ref
        as soon as the server finishes it."""
        with self._lock:
            token = f"py-{next(self._ids)}"
            stream = self._streams[token] = queue.Queue()
        try:
            params = _wire.named(refs=list(refs), partialResultToken=token, platform=platform)
            request_id, event, slot = self._start("ec.oci.image_manifests", params, stream)
            while True:
                item = stream.get(timeout=timeout if timeout is not None else self.timeout)
                if item is _DONE:
                    break
                if "error" in item:
                    yield item["ref"], RPCError.from_object(item["error"])
                else:
                    yield item["ref"], item["manifest"]
            self._result(request_id, event, slot, 0)
        except queue.Empty:
            self._cancel(request_id)
            raise TimeoutError("ec.oci.image_manifests timed out") from None
        finally:
            with self._lock:
                self._streams.pop(token, None)

    def image_files(self, ref: str, paths: list, timeout=None) -> dict:
        return self.call("ec.oci.image_files", [ref, list(paths)], timeout)

    def image_index(self, ref: str, timeout=None) -> dict:
        return self.call("ec.oci.image_index", [ref], timeout)

    def image_tag_refs(self, ref: str, timeout=None) -> list:
        return self.call("ec.oci.image_tag_refs", [ref], timeout)

    def image_referrers(self, ref: str, timeout=None) -> list:
        return self.call("ec.oci.image_referrers", [ref], timeout)

    def stats(self) -> dict:
        return self.call("server.stats", None)

    def clear_cache(self):
        return self.call("server.clearCache", None)

    # -- plumbing ----------------------------------------------------------

    def call(self, method, params, timeout=None):
        """Any method: returns the result or raises."""
        request_id, event, slot = self._start(method, params, None)
        wait = timeout if timeout is not None else self.timeout
        return self._result(request_id, event, slot, wait)

    def _start(self, method, params, stream):
        event, slot = threading.Event(), {}
        with self._lock:
            if self._dead is not None:
                raise self._dead
            request_id = next(self._ids)
            self._pending[request_id] = (event, slot, stream)
        try:
            self._send(_wire.request(request_id, method, params))
        except OSError:
            self._fail_all()
        return request_id, event, slot

    def _result(self, request_id, event, slot, wait):
        if not event.wait(wait):
            self._cancel(request_id)
            raise TimeoutError(f"request {request_id} timed out after {wait} s")
        if "died" in slot:
            raise slot["died"]
        message = slot["message"]
        if "error" in message:
            raise RPCError.from_object(message["error"])
        return message.get("result")

    def _cancel(self, request_id):
        try:
            self._send(_wire.notification("$/cancelRequest", {"id": request_id}))
        except OSError:
            pass

    def _send(self, message):
        data = _wire.encode(message)
        with self._write_lock:
            self._process.stdin.write(data)

    def _read_stdout(self):
        import json
        for line in self._process.stdout:
            if not line.strip():
                continue
            message = json.loads(line)
            if message.get("method") == "$/progress":
                params = message.get("params") or {}
                with self._lock:
                    stream = self._streams.get(params.get("token"))
                if stream is not None:
                    stream.put(params.get("value"))
                continue
            with self._lock:
                entry = self._pending.pop(message.get("id"), None)
            if entry is not None:
                event, slot, stream = entry
                slot["message"] = message
                if stream is not None:
                    stream.put(_DONE)
                event.set()
        self._fail_all()

    def _read_stderr(self):
        for line in self._process.stderr:
            self._stderr.append(line.decode(errors="replace").rstrip("\n"))

    def _fail_all(self):
        try:
            returncode = self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            returncode = None
        # The stderr reader may still be behind: the tail must include the
        # server's last words (its reason for exiting).
        self._stderr_reader.join(timeout=2)
        died = ServerDied(returncode, "\n".join(self._stderr))
        with self._lock:
            self._dead = died
            pending, self._pending = self._pending, {}
        for event, slot, stream in pending.values():
            slot["died"] = died
            if stream is not None:
                stream.put(_DONE)
            event.set()
