"""Sending part of a file on a client's connection with the kernel's sendfile, counted for
the access log as it goes."""

import asyncio
from typing import IO

from aiohttp.web import BaseRequest

from bodega.web.access_log import count_sendfile

# Sent in pieces so that a response cut midway logs what went out to within a piece
# (asyncio reports nothing of a sendfile that was cancelled); each piece costs a few
# syscalls, nothing next to a MiB of data.
_PIECE = 1024 * 1024


async def send_file_part(request: BaseRequest, file: IO[bytes], offset: int, count: int) -> None:
    # As aiohttp's FileResponse: loop.sendfile waits for the transport's buffer to drain
    # first, so the bytes written before (the headers) stay in order.
    loop = asyncio.get_running_loop()
    end = offset + count
    while offset < end:
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client went away")
        sent = await loop.sendfile(transport, file, offset, min(_PIECE, end - offset))
        if not sent:
            # The file is shorter than said: drop the connection rather than hang or pad.
            raise ConnectionResetError("the file ended before the bytes promised")
        count_sendfile(request, sent)
        offset += sent
