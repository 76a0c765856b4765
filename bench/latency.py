"""The networked upstream's delay: nginx asks this before every request and waits for its answer.

    python bench/latency.py PORT MILLISECONDS

nginx cannot add latency by itself, so its networked server block carries `auth_request` to this
tiny server, which answers 204 after the delay. The files still go out of nginx by sendfile: no
byte of them passes through Python, so the delay costs the machine almost nothing but time, as
a far upstream does. One delay per request, as a route whose requests take that long to turn
around (the public index's pages answer in 20-30 ms from the machines the issue measured).
"""

import asyncio
import sys

_ANSWER = b"HTTP/1.1 204 No Content\r\n\r\n"


async def serve(port: int, delay: float) -> None:
    async def one_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # nginx keeps the connection alive (`keepalive` in its upstream)
                await reader.readuntil(b"\r\n\r\n")  # a subrequest's head; it has no body
                await asyncio.sleep(delay)
                writer.write(_ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(one_connection, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), float(sys.argv[2]) / 1000))
