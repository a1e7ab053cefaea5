#!/usr/bin/python3
"""Echo server on Debian's python3-websockets, for the interop tests.

usage: /usr/bin/python3 py-websockets-echo.py PORT plain|deflate   (PORT 0 picks a free port)
Listens on 127.0.0.1 only and prints "LISTENING <port>" once it accepts connections.
Paths: /  echo; /close/CODE  close with CODE "bye"; /drop  abort TCP; /ping  ping "p", then echo.
Subprotocol: "echo.v1" is chosen when offered. In deflate mode the server answers
"permessage-deflate; server_max_window_bits=12" (websockets' default).
Run it with /usr/bin/python3: another python3 first on PATH may not see Debian's packages.
"""
import asyncio
import re
import signal
import sys

import websockets

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 0
DEFLATE = len(sys.argv) > 2 and sys.argv[2] == "deflate"


async def handler(ws, path=None):
    path = path or ws.path
    m = re.match(r"^/close/(\d+)", path)
    if m:
        await ws.close(int(m.group(1)), "bye")
        return
    if path.startswith("/drop"):
        ws.transport.abort()
        return
    if path.startswith("/ping"):
        await ws.ping(b"p")
    try:
        async for msg in ws:
            await ws.send(msg)  # str -> text frame, bytes -> binary frame
    except websockets.ConnectionClosed:
        pass


async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    async with websockets.serve(handler, "127.0.0.1", PORT, max_size=64 << 20,
                                subprotocols=["echo.v1"],
                                compression="deflate" if DEFLATE else None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"LISTENING {port}", flush=True)
        await stop


asyncio.run(main())
