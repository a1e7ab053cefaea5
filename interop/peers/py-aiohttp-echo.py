#!/usr/bin/python3
"""Echo server on Debian's python3-aiohttp (its own websocket implementation), for the interop tests.

usage: /usr/bin/python3 py-aiohttp-echo.py PORT plain|deflate   (PORT 0 picks a free port)
Listens on 127.0.0.1 only and prints "LISTENING <port>" once it accepts connections.
Paths: /  echo; /close/CODE  close with CODE "bye"; /drop  abort TCP; /ping  ping "p", then echo.
Subprotocol: "echo.v1" is chosen when offered.
"""
import asyncio
import signal
import sys

from aiohttp import WSMsgType, web

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 0
DEFLATE = len(sys.argv) > 2 and sys.argv[2] == "deflate"


async def handler(request):
    ws = web.WebSocketResponse(compress=DEFLATE, max_msg_size=64 << 20, protocols=("echo.v1",))
    await ws.prepare(request)
    path = request.path
    if path.startswith("/close/"):
        await ws.close(code=int(path.split("/")[2]), message=b"bye")
        return ws
    if path.startswith("/drop"):
        request.transport.abort()
        return ws
    if path.startswith("/ping"):
        await ws.ping(b"p")
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", PORT)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"LISTENING {port}", flush=True)
    await stop
    await runner.cleanup()


asyncio.run(main())
