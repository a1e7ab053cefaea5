#!/usr/bin/python3
"""Echo server on Debian's python3-tornado (its own websocket implementation), for the interop tests.

usage: /usr/bin/python3 py-tornado-echo.py PORT plain|deflate   (PORT 0 picks a free port)
Listens on 127.0.0.1 only and prints "LISTENING <port>" once it accepts connections.
Paths: /  echo; /close/CODE  close with CODE "bye"; /drop  abort TCP; /ping  ping "p", then echo.
Subprotocol: "echo.v1" is chosen when offered.
"""
import asyncio
import signal
import sys

import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 0
DEFLATE = len(sys.argv) > 2 and sys.argv[2] == "deflate"


class Echo(tornado.websocket.WebSocketHandler):
    def get_compression_options(self):
        return {} if DEFLATE else None

    def select_subprotocol(self, subprotocols):
        return "echo.v1" if "echo.v1" in subprotocols else None

    def open(self, *args):
        path = self.request.path
        if path.startswith("/close/"):
            self.close(int(path.split("/")[2]), "bye")
        elif path.startswith("/drop"):
            self.ws_connection.stream.close()
        elif path.startswith("/ping"):
            self.ping(b"p")

    def on_message(self, message):
        self.write_message(message, binary=isinstance(message, bytes))


async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    app = tornado.web.Application([(r"/.*", Echo)], websocket_max_message_size=64 << 20)
    sockets = tornado.netutil.bind_sockets(PORT, address="127.0.0.1")
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    print(f"LISTENING {sockets[0].getsockname()[1]}", flush=True)
    await stop
    server.stop()


asyncio.run(main())
