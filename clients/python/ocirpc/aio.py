"""The asyncio client: the same methods as `Client`, as coroutines.
Cancelling a call's task sends `$/cancelRequest` to the server."""
import asyncio
import collections
import itertools
import json

from . import _wire
from .errors import RPCError, ServerDied

_DONE = object()


class AsyncClient:
    """Use `async with AsyncClient() as client:` or `await AsyncClient.start()`
    and `await client.close()`."""

    def __init__(self, binary=None, args=(), env=None, timeout=None):
        self._command = [_wire.find_binary(binary), *args]
        self._env = env
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._pending = {}
        self._streams = {}
        self._stderr = collections.deque(maxlen=40)
        self._dead = None
        self._process = None
        self._tasks = []

    @classmethod
    async def start(cls, *args, **kwargs):
        client = cls(*args, **kwargs)
        await client._spawn()
        return client

    async def _spawn(self):
        self._process = await asyncio.create_subprocess_exec(
            *self._command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self._env, limit=1 << 30)
        self._tasks = [asyncio.create_task(self._read_stdout()), asyncio.create_task(self._read_stderr())]

    async def __aenter__(self):
        await self._spawn()
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self, timeout=10):
        if self._process.returncode is None and self._dead is None:
            try:
                await self.call("shutdown", None, timeout=timeout)
                await self._send(_wire.notification("exit", None))
            except (ServerDied, asyncio.TimeoutError, TimeoutError, OSError, ConnectionError):
                pass
        if self._process.stdin and not self._process.stdin.is_closing():
            self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), timeout)
        except (asyncio.TimeoutError, TimeoutError):
            self._process.kill()
            await self._process.wait()
        for task in self._tasks:
            await task

    # -- the ec.oci.* methods --------------------------------------------

    async def blob(self, ref, encoding="utf8", timeout=None):
        return await self.call("ec.oci.blob", _wire.named(ref=ref, encoding=encoding), timeout)

    async def parsed_blob(self, ref, timeout=None):
        return await self.call("ec.oci.parsed_blob", [ref], timeout)

    async def blob_files(self, ref, paths, timeout=None):
        return await self.call("ec.oci.blob_files", [ref, list(paths)], timeout)

    async def descriptor(self, ref, timeout=None):
        return await self.call("ec.oci.descriptor", [ref], timeout)

    async def image_manifest(self, ref, platform=None, timeout=None):
        return await self.call("ec.oci.image_manifest", _wire.named(ref=ref, platform=platform), timeout)

    async def image_manifests(self, refs, platform=None, timeout=None):
        return await self.call("ec.oci.image_manifests", _wire.named(refs=list(refs), platform=platform), timeout)

    async def iter_image_manifests(self, refs, platform=None):
        """Async iterator of `(ref, manifest)` or `(ref, RPCError)` as each
        distinct ref finishes."""
        token = f"aio-{next(self._ids)}"
        stream = self._streams[token] = asyncio.Queue()
        future, request_id = await self._start(
            "ec.oci.image_manifests", _wire.named(refs=list(refs), partialResultToken=token, platform=platform), stream)
        try:
            while True:
                item = await stream.get()
                if item is _DONE:
                    break
                if "error" in item:
                    yield item["ref"], RPCError.from_object(item["error"])
                else:
                    yield item["ref"], item["manifest"]
            self._unwrap(await future)
        except asyncio.CancelledError:
            await self._cancel(request_id)
            raise
        finally:
            self._streams.pop(token, None)

    async def image_files(self, ref, paths, timeout=None):
        return await self.call("ec.oci.image_files", [ref, list(paths)], timeout)

    async def image_index(self, ref, timeout=None):
        return await self.call("ec.oci.image_index", [ref], timeout)

    async def image_tag_refs(self, ref, timeout=None):
        return await self.call("ec.oci.image_tag_refs", [ref], timeout)

    async def image_referrers(self, ref, timeout=None):
        return await self.call("ec.oci.image_referrers", [ref], timeout)

    async def stats(self):
        return await self.call("server.stats", None)

    # -- plumbing ----------------------------------------------------------

    async def call(self, method, params, timeout=None):
        future, request_id = await self._start(method, params, None)
        wait = timeout if timeout is not None else self.timeout
        try:
            message = await asyncio.wait_for(asyncio.shield(future), wait)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            await self._cancel(request_id)
            raise
        return self._unwrap(message)

    @staticmethod
    def _unwrap(message):
        if isinstance(message, ServerDied):
            raise message
        if "error" in message:
            raise RPCError.from_object(message["error"])
        return message.get("result")

    async def _start(self, method, params, stream):
        if self._dead is not None:
            raise self._dead
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (future, stream)
        await self._send(_wire.request(request_id, method, params))
        return future, request_id

    async def _cancel(self, request_id):
        self._pending.pop(request_id, None)
        try:
            await self._send(_wire.notification("$/cancelRequest", {"id": request_id}))
        except (OSError, ConnectionError):
            pass

    async def _send(self, message):
        self._process.stdin.write(_wire.encode(message))
        await self._process.stdin.drain()

    async def _read_stdout(self):
        while True:
            line = await self._process.stdout.readline()
            if not line:
                break
            if not line.strip():
                continue
            message = json.loads(line)
            if message.get("method") == "$/progress":
                params = message.get("params") or {}
                stream = self._streams.get(params.get("token"))
                if stream is not None:
                    stream.put_nowait(params.get("value"))
                continue
            future, stream = self._pending.pop(message.get("id"), (None, None))
            if stream is not None:
                stream.put_nowait(_DONE)
            if future is not None and not future.done():
                future.set_result(message)
        returncode = await self._process.wait()
        # The stderr reader may still be behind: the tail must include the
        # server's last words (its reason for exiting).
        try:
            await asyncio.wait_for(asyncio.shield(self._tasks[1]), timeout=2)
        except (asyncio.TimeoutError, TimeoutError, IndexError, AttributeError):
            pass
        self._dead = ServerDied(returncode, "\n".join(self._stderr))
        pending, self._pending = self._pending, {}
        for future, stream in pending.values():
            if stream is not None:
                stream.put_nowait(_DONE)
            if not future.done():
                future.set_result(self._dead)

    async def _read_stderr(self):
        while True:
            line = await self._process.stderr.readline()
            if not line:
                break
            self._stderr.append(line.decode(errors="replace").rstrip("\n"))
