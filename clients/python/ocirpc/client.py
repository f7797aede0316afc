"""The synchronous client: one reader thread matches responses to callers;
any number of threads may call at once."""
from __future__ import annotations

import collections
import io
import itertools
import queue
import subprocess
import threading
from types import TracebackType
from typing import IO, Any, Deque, Dict, Generator, Iterable, List, Mapping, Optional, Sequence, Tuple, Type, Union, cast

from . import _wire
from ._wire import JSON, Message
from .errors import IncompleteBatch, RPCError, ServerDied, Timeout

_DONE = object()


class _Pending:
    """One request waiting for its response (and, for a stream, its progress)."""

    def __init__(self, stream: "Optional[queue.Queue[Any]]") -> None:
        self.event = threading.Event()
        self.message: Optional[Message] = None
        self.died: Optional[ServerDied] = None
        self.stream = stream


class Client:
    """Spawns `ocirpc` and calls its methods. Use as a context manager, or
    call `close()`.

    Each `ec.oci.*` builtin is a method of the same name. Failures raise
    `RPCError` as the subclass of its code (`NotFound`, `AccessDenied`, ...,
    with `code`, `reason`, `ref`); a server that dies raises `ServerDied`
    with the tail of its stderr. `timeout` (seconds) applies to each call
    unless a call gives its own; a call that times out is cancelled on the
    server (`$/cancelRequest`) and raises `Timeout` (a `TimeoutError`).
    """

    def __init__(
        self, binary: Optional[str] = None, args: Sequence[str] = (), env: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> None:
        self.timeout = timeout
        self._process = subprocess.Popen(
            [_wire.find_binary(binary), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, bufsize=0)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending: Dict[int, _Pending] = {}
        self._streams: Dict[str, "queue.Queue[Any]"] = {}
        self._stderr: Deque[str] = collections.deque(maxlen=40)
        self._dead: Optional[ServerDied] = None
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    # -- lifecycle -------------------------------------------------------

    def __enter__(self) -> "Client":
        return self

    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], trace: Optional[TracebackType]
    ) -> None:
        self.close()

    def close(self, timeout: float = 10) -> None:
        """`shutdown`, `exit`, and wait for the process (killed past `timeout`)."""
        if self._process.poll() is None and self._dead is None:
            try:
                self.call("shutdown", None, timeout=timeout)
                self._send(_wire.notification("exit", None))
            except (ServerDied, TimeoutError, OSError):
                pass
        try:
            self._stdin.close()
        except OSError:
            pass
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    # -- the ec.oci.* methods --------------------------------------------

    def blob(self, ref: str, encoding: Optional[str] = None, timeout: Optional[float] = None) -> str:
        """The blob `ref` names (by digest), decompressed, as text; `encoding`
        "base64" for bytes that are not UTF-8 (the server's default: "utf8")."""
        return str(self.call("ec.oci.blob", _wire.named(ref=ref, encoding=encoding), timeout))

    def parsed_blob(self, ref: str, timeout: Optional[float] = None) -> JSON:
        """The blob `ref` names, parsed as JSON or YAML."""
        return self.call("ec.oci.parsed_blob", [ref], timeout)

    def blob_files(self, ref: str, paths: Iterable[str], timeout: Optional[float] = None) -> Dict[str, JSON]:
        """The files of the tar blob `ref` names whose names are in `paths`, parsed."""
        return dict(self.call("ec.oci.blob_files", [ref, list(paths)], timeout))

    def descriptor(self, ref: str, timeout: Optional[float] = None) -> Dict[str, JSON]:
        """The descriptor of what `ref` names (one HEAD or a cached answer)."""
        return dict(self.call("ec.oci.descriptor", [ref], timeout))

    def image_manifest(
        self, ref: str, platform: Optional[str] = None, timeout: Optional[float] = None
    ) -> Dict[str, JSON]:
        """The image manifest `ref` names; an index resolves to `platform`
        ("os/arch[/variant]", the server's default when None)."""
        return dict(self.call("ec.oci.image_manifest", _wire.named(ref=ref, platform=platform), timeout))

    def image_manifests(
        self, refs: Iterable[str], platform: Optional[str] = None, timeout: Optional[float] = None
    ) -> Dict[str, Dict[str, JSON]]:
        """The manifests of `refs` (ref -> manifest); refs that fail are left
        out, as the original leaves them out, whatever the failure (a limit
        of the server's too): `iter_image_manifests` tells each ref's."""
        return dict(self.call("ec.oci.image_manifests", _wire.named(refs=list(refs), platform=platform), timeout))

    def iter_image_manifests(
        self, refs: Iterable[str], platform: Optional[str] = None, timeout: Optional[float] = None
    ) -> Generator[Tuple[str, Union[Dict[str, JSON], RPCError]], None, None]:
        """Yields `(ref, manifest)` or `(ref, RPCError)` for each distinct ref
        as soon as the server finishes it. `timeout` bounds the wait for each
        next item. Leaving the loop early (break, close) cancels the rest on
        the server."""
        with self._lock:
            token = f"py-{next(self._ids)}"
            stream: "queue.Queue[Any]" = queue.Queue()
            self._streams[token] = stream
        wait = timeout if timeout is not None else self.timeout
        request_id: Optional[int] = None
        finished = False
        try:
            asked = list(refs)
            unanswered = set(asked)
            params = _wire.named(refs=asked, partialResultToken=token, platform=platform)
            request_id, pending = self._start("ec.oci.image_manifests", params, stream)
            while True:
                try:
                    item = stream.get(timeout=wait)
                except queue.Empty:
                    raise Timeout(f"ec.oci.image_manifests: nothing within {wait} s") from None
                if item is _DONE:
                    break
                unanswered.discard(item["ref"])
                if "error" in item:
                    yield item["ref"], RPCError.from_object(item["error"])
                else:
                    yield item["ref"], item["manifest"]
            finished = True
            self._result(request_id, pending, 0)
            if unanswered:
                raise IncompleteBatch(unanswered)
        finally:
            with self._lock:
                self._streams.pop(token, None)
            if not finished and request_id is not None:
                self._cancel(request_id)

    def image_files(self, ref: str, paths: Iterable[str], timeout: Optional[float] = None) -> Dict[str, JSON]:
        """The files under the directories `paths` of the image's flattened
        filesystem, parsed (ref names the image by digest)."""
        return dict(self.call("ec.oci.image_files", [ref, list(paths)], timeout))

    def image_index(self, ref: str, timeout: Optional[float] = None) -> Dict[str, JSON]:
        """The image index `ref` names."""
        return dict(self.call("ec.oci.image_index", [ref], timeout))

    def image_tag_refs(self, ref: str, timeout: Optional[float] = None) -> List[str]:
        """The cosign tags (`.sig`, `.att`, `.sbom`) that exist for the image."""
        return list(self.call("ec.oci.image_tag_refs", [ref], timeout))

    def image_referrers(self, ref: str, timeout: Optional[float] = None) -> List[Dict[str, JSON]]:
        """The descriptors of the manifests that refer to the image."""
        return list(self.call("ec.oci.image_referrers", [ref], timeout))

    def stats(self, timeout: Optional[float] = None) -> Dict[str, JSON]:
        """The server's counters (`server.stats`)."""
        return dict(self.call("server.stats", None, timeout))

    def clear_cache(self, timeout: Optional[float] = None) -> JSON:
        """Drops the server's in-memory caches (`server.clearCache`)."""
        return self.call("server.clearCache", None, timeout)

    # -- plumbing ----------------------------------------------------------

    def call(self, method: str, params: JSON, timeout: Optional[float] = None) -> JSON:
        """Any method: returns the result or raises."""
        request_id, pending = self._start(method, params, None)
        wait = timeout if timeout is not None else self.timeout
        return self._result(request_id, pending, wait)

    @property
    def _stdin(self) -> IO[bytes]:
        assert self._process.stdin is not None
        return self._process.stdin

    def _start(self, method: str, params: JSON, stream: "Optional[queue.Queue[Any]]") -> Tuple[int, _Pending]:
        pending = _Pending(stream)
        with self._lock:
            if self._dead is not None:
                raise self._dead
            request_id = next(self._ids)
            self._pending[request_id] = pending
        try:
            self._send(_wire.request(request_id, method, params))
        except OSError:
            self._fail_all()
        return request_id, pending

    def _result(self, request_id: int, pending: _Pending, wait: Optional[float]) -> JSON:
        if not pending.event.wait(wait):
            self._cancel(request_id)
            raise Timeout(f"request {request_id} timed out after {wait} s")
        if pending.died is not None:
            raise pending.died
        message = pending.message or {}
        if "error" in message:
            raise RPCError.from_object(message["error"])
        return message.get("result")

    def _cancel(self, request_id: int) -> None:
        with self._lock:
            self._pending.pop(request_id, None)
        try:
            self._send(_wire.notification("$/cancelRequest", {"id": request_id}))
        except OSError:
            pass

    def _send(self, message: Message) -> None:
        data = _wire.encode(message)
        with self._write_lock:
            self._stdin.write(data)

    def _read_stdout(self) -> None:
        assert self._process.stdout is not None
        try:
            with _buffered(self._process.stdout) as lines:
                for line in lines:
                    message = _wire.decode(line)
                    if message is not None:
                        self._dispatch(message)
        finally:
            # However the reading ends, no call is left waiting for ever.
            self._fail_all()

    def _dispatch(self, message: Message) -> None:
        if message.get("method") == "$/progress":
            params = message.get("params")
            if isinstance(params, dict):
                with self._lock:
                    stream = self._streams.get(str(params.get("token")))
                if stream is not None:
                    stream.put(params.get("value"))
            return
        request_id = _wire.answered_id(message)
        if request_id is None:
            return
        with self._lock:
            pending = self._pending.pop(request_id, None)
        if pending is not None:
            # The response is in place before a stream's end is queued:
            # its consumer takes the end as the word to read it.
            pending.message = message
            pending.event.set()
            if pending.stream is not None:
                pending.stream.put(_DONE)

    def _read_stderr(self) -> None:
        assert self._process.stderr is not None
        with _buffered(self._process.stderr) as lines:
            for line in lines:
                self._stderr.append(line.decode(errors="replace").rstrip("\n"))

    def _fail_all(self) -> None:
        returncode: Optional[int]
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
        for entry in pending.values():
            entry.died = died
            entry.event.set()
            if entry.stream is not None:
                entry.stream.put(_DONE)


def _buffered(pipe: IO[bytes]) -> io.BufferedReader:
    """`pipe` (unbuffered: the requests are written as they are made) read
    through a buffer: a line read from the pipe itself takes one system call
    a byte, and a 2.7 MB batch answer took 1.4 s to read where a buffered
    read takes milliseconds."""
    return io.BufferedReader(cast(io.RawIOBase, pipe), 1 << 16)
