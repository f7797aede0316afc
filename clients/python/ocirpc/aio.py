"""The asyncio client: the same methods as `Client`, as coroutines.
Cancelling a call's task sends `$/cancelRequest` to the server."""
from __future__ import annotations

import asyncio
import collections
import itertools
from types import TracebackType
from typing import Any, AsyncIterator, Deque, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Type, Union

from . import _wire
from ._wire import JSON, Message
from .errors import IncompleteBatch, RPCError, ServerDied, Timeout

_DONE = object()


class AsyncClient:
    """Use `async with AsyncClient() as client:` or `await AsyncClient.start()`
    and `await client.close()`. Errors are those of `Client`: `RPCError`
    subclasses per code, `Timeout` (also `TimeoutError`), `ServerDied`."""

    def __init__(
        self, binary: Optional[str] = None, args: Sequence[str] = (), env: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> None:
        self._command = [_wire.find_binary(binary), *args]
        self._env = env
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._pending: Dict[int, Tuple["asyncio.Future[Any]", "Optional[asyncio.Queue[Any]]"]] = {}
        self._streams: Dict[str, "asyncio.Queue[Any]"] = {}
        self._stderr: Deque[str] = collections.deque(maxlen=40)
        self._dead: Optional[ServerDied] = None
        self._process: Optional[asyncio.subprocess.Process] = None
        self._tasks: List["asyncio.Task[None]"] = []

    @classmethod
    async def start(
        cls, binary: Optional[str] = None, args: Sequence[str] = (), env: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> "AsyncClient":
        """A client whose server is running."""
        client = cls(binary, args, env, timeout)
        await client._spawn()
        return client

    async def _spawn(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *self._command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self._env, limit=1 << 30)
        self._tasks = [asyncio.create_task(self._read_stdout()), asyncio.create_task(self._read_stderr())]

    async def __aenter__(self) -> "AsyncClient":
        await self._spawn()
        return self

    async def __aexit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], trace: Optional[TracebackType]
    ) -> None:
        await self.close()

    async def close(self, timeout: float = 10) -> None:
        """`shutdown`, `exit`, and wait for the process (killed past `timeout`)."""
        process = self._running
        if process.returncode is None and self._dead is None:
            try:
                await self.call("shutdown", None, timeout=timeout)
                await self._send(_wire.notification("exit", None))
            except (ServerDied, asyncio.TimeoutError, TimeoutError, OSError, ConnectionError):
                pass
        if process.stdin and not process.stdin.is_closing():
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except (asyncio.TimeoutError, TimeoutError):
            process.kill()
            await process.wait()
        for task in self._tasks:
            await task

    # -- the ec.oci.* methods --------------------------------------------

    async def blob(self, ref: str, encoding: Optional[str] = None, timeout: Optional[float] = None) -> str:
        """The blob `ref` names (by digest), decompressed, as text; `encoding`
        "base64" for bytes that are not UTF-8 (the server's default: "utf8")."""
        return str(await self.call("ec.oci.blob", _wire.named(ref=ref, encoding=encoding), timeout))

    async def parsed_blob(self, ref: str, timeout: Optional[float] = None) -> JSON:
        """The blob `ref` names, parsed as JSON or YAML."""
        return await self.call("ec.oci.parsed_blob", [ref], timeout)

    async def blob_files(self, ref: str, paths: Iterable[str], timeout: Optional[float] = None) -> Dict[str, JSON]:
        """The files of the tar blob `ref` names whose names are in `paths`, parsed."""
        return dict(await self.call("ec.oci.blob_files", [ref, list(paths)], timeout))

    async def descriptor(self, ref: str, timeout: Optional[float] = None) -> Dict[str, JSON]:
        """The descriptor of what `ref` names (one HEAD or a cached answer)."""
        return dict(await self.call("ec.oci.descriptor", [ref], timeout))

    async def image_manifest(
        self, ref: str, platform: Optional[str] = None, timeout: Optional[float] = None
    ) -> Dict[str, JSON]:
        """The image manifest `ref` names; an index resolves to `platform`
        ("os/arch[/variant]", the server's default when None)."""
        return dict(await self.call("ec.oci.image_manifest", _wire.named(ref=ref, platform=platform), timeout))

    async def image_manifests(
        self, refs: Iterable[str], platform: Optional[str] = None, timeout: Optional[float] = None
    ) -> Dict[str, Dict[str, JSON]]:
        """The manifests of `refs` (ref -> manifest); refs that fail are left
        out, as the original leaves them out, whatever the failure (a limit
        of the server's too): `iter_image_manifests` tells each ref's."""
        return dict(
            await self.call("ec.oci.image_manifests", _wire.named(refs=list(refs), platform=platform), timeout))

    async def iter_image_manifests(
        self, refs: Iterable[str], platform: Optional[str] = None, timeout: Optional[float] = None
    ) -> AsyncIterator[Tuple[str, Union[Dict[str, JSON], RPCError]]]:
        """Async iterator of `(ref, manifest)` or `(ref, RPCError)` as each
        distinct ref finishes. `timeout` bounds the wait for each next item.
        Leaving early (break then `aclose()`, or a cancelled task) cancels
        the rest on the server."""
        token = f"aio-{next(self._ids)}"
        stream: "asyncio.Queue[Any]" = asyncio.Queue()
        self._streams[token] = stream
        wait = timeout if timeout is not None else self.timeout
        asked = list(refs)
        unanswered = set(asked)
        future, request_id = await self._start(
            "ec.oci.image_manifests", _wire.named(refs=asked, partialResultToken=token, platform=platform), stream)
        finished = False
        try:
            while True:
                try:
                    item = await asyncio.wait_for(stream.get(), wait)
                except (asyncio.TimeoutError, TimeoutError):
                    raise Timeout(f"ec.oci.image_manifests: nothing within {wait} s") from None
                if item is _DONE:
                    break
                unanswered.discard(item["ref"])
                if "error" in item:
                    yield item["ref"], RPCError.from_object(item["error"])
                else:
                    yield item["ref"], item["manifest"]
            finished = True
            self._unwrap(await future)
            if unanswered:
                raise IncompleteBatch(unanswered)
        finally:
            self._streams.pop(token, None)
            if not finished:
                await self._cancel(request_id)

    async def image_files(self, ref: str, paths: Iterable[str], timeout: Optional[float] = None) -> Dict[str, JSON]:
        """The files under the directories `paths` of the image's flattened
        filesystem, parsed (ref names the image by digest)."""
        return dict(await self.call("ec.oci.image_files", [ref, list(paths)], timeout))

    async def image_index(self, ref: str, timeout: Optional[float] = None) -> Dict[str, JSON]:
        """The image index `ref` names."""
        return dict(await self.call("ec.oci.image_index", [ref], timeout))

    async def image_tag_refs(self, ref: str, timeout: Optional[float] = None) -> List[str]:
        """The cosign tags (`.sig`, `.att`, `.sbom`) that exist for the image."""
        return list(await self.call("ec.oci.image_tag_refs", [ref], timeout))

    async def image_referrers(self, ref: str, timeout: Optional[float] = None) -> List[Dict[str, JSON]]:
        """The descriptors of the manifests that refer to the image."""
        return list(await self.call("ec.oci.image_referrers", [ref], timeout))

    async def stats(self, timeout: Optional[float] = None) -> Dict[str, JSON]:
        """The server's counters (`server.stats`)."""
        return dict(await self.call("server.stats", None, timeout))

    async def clear_cache(self, timeout: Optional[float] = None) -> JSON:
        """Drops the server's in-memory caches (`server.clearCache`)."""
        return await self.call("server.clearCache", None, timeout)

    # -- plumbing ----------------------------------------------------------

    async def call(self, method: str, params: JSON, timeout: Optional[float] = None) -> JSON:
        """Any method: returns the result or raises."""
        future, request_id = await self._start(method, params, None)
        wait = timeout if timeout is not None else self.timeout
        try:
            message = await asyncio.wait_for(asyncio.shield(future), wait)
        except (asyncio.TimeoutError, TimeoutError):
            await self._cancel(request_id)
            raise Timeout(f"{method} timed out after {wait} s") from None
        except asyncio.CancelledError:
            await self._cancel(request_id)
            raise
        return self._unwrap(message)

    @property
    def _running(self) -> asyncio.subprocess.Process:
        if self._process is None:
            raise RuntimeError("the client was not started: use `async with` or `await AsyncClient.start()`")
        return self._process

    @staticmethod
    def _unwrap(message: Union[Message, ServerDied]) -> JSON:
        if isinstance(message, ServerDied):
            raise message
        if "error" in message:
            raise RPCError.from_object(message["error"])
        return message.get("result")

    async def _start(
        self, method: str, params: JSON, stream: "Optional[asyncio.Queue[Any]]"
    ) -> Tuple["asyncio.Future[Any]", int]:
        if self._dead is not None:
            raise self._dead
        request_id = next(self._ids)
        future: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (future, stream)
        await self._send(_wire.request(request_id, method, params))
        return future, request_id

    async def _cancel(self, request_id: int) -> None:
        self._pending.pop(request_id, None)
        try:
            await self._send(_wire.notification("$/cancelRequest", {"id": request_id}))
        except (OSError, ConnectionError):
            pass

    async def _send(self, message: Message) -> None:
        stdin = self._running.stdin
        assert stdin is not None
        stdin.write(_wire.encode(message))
        await stdin.drain()

    async def _read_stdout(self) -> None:
        process = self._running
        assert process.stdout is not None
        try:
            while True:
                line = await process.stdout.readline()
                if not line:
                    break
                message = _wire.decode(line)
                if message is not None:
                    self._dispatch(message)
        finally:
            # However the reading ends, no call is left waiting for ever.
            await self._fail_all(process)

    def _dispatch(self, message: Message) -> None:
        if message.get("method") == "$/progress":
            params = message.get("params")
            if isinstance(params, dict):
                stream = self._streams.get(str(params.get("token")))
                if stream is not None:
                    stream.put_nowait(params.get("value"))
            return
        request_id = _wire.answered_id(message)
        if request_id is None:
            return
        future, waiting = self._pending.pop(request_id, (None, None))
        if waiting is not None:
            waiting.put_nowait(_DONE)
        if future is not None and not future.done():
            future.set_result(message)

    async def _fail_all(self, process: asyncio.subprocess.Process) -> None:
        returncode: Optional[int]
        try:
            returncode = await asyncio.wait_for(process.wait(), 2)
        except (asyncio.TimeoutError, TimeoutError):
            returncode = None
        # The stderr reader may still be behind: the tail must include the
        # server's last words (its reason for exiting).
        try:
            await asyncio.wait_for(asyncio.shield(self._tasks[1]), timeout=2)
        except (asyncio.TimeoutError, TimeoutError, IndexError, AttributeError):
            pass
        self._dead = ServerDied(returncode, "\n".join(self._stderr))
        pending, self._pending = self._pending, {}
        for future, waiting in pending.values():
            if waiting is not None:
                waiting.put_nowait(_DONE)
            if not future.done():
                future.set_result(self._dead)

    async def _read_stderr(self) -> None:
        process = self._running
        assert process.stderr is not None
        while True:
            line = await process.stderr.readline()
            if not line:
                break
            self._stderr.append(line.decode(errors="replace").rstrip("\n"))
