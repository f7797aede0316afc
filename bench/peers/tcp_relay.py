"""A TCP relay that adds a one-way delay to every chunk it passes on (order
kept), so TLS and HTTP/2 go through untouched. Prints its port, then, when
its stdin closes, how many connections it accepted.

    python3 tcp_relay.py UPSTREAM_PORT ONE_WAY_DELAY_SECONDS
"""
import asyncio
import os
import sys


async def main(upstream, delay):
    loop = asyncio.get_running_loop()
    accepted = 0

    async def pump(reader, writer):
        try:
            while data := await reader.read(65536):
                loop.call_later(delay, writer.write, data)
        except ConnectionError:
            pass
        finally:
            loop.call_later(delay + 0.001, writer.close)

    async def handle(client_reader, client_writer):
        nonlocal accepted
        accepted += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", upstream)
        except ConnectionError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, upstream_writer), pump(upstream_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    await stdin.read()
    print(accepted, flush=True)
    # Connections still open are simply dropped.
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
