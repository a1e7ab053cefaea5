// Echo server on npm `ws` 8 (Node's reference implementation), for the
// interop tests. It listens on 127.0.0.1 only.
//
// usage: node ws-echo.js PORT plain|deflate   (PORT 0 picks a free port)
// Prints "LISTENING <port>" once it accepts connections.
// Paths: /            echo every message with the same type
//        /close/CODE  close at once with CODE and reason "bye"
//        /drop        destroy the TCP connection at once (no close frame)
//        /ping        send a ping with payload "p", then echo
// Subprotocol: "echo.v1" is chosen when offered; nothing else is.
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 0);
const deflate = process.argv[3] === 'deflate';

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  maxPayload: 64 << 20,
  perMessageDeflate: deflate ? { threshold: 0 } : false,
  handleProtocols: (protocols) => (protocols.has('echo.v1') ? 'echo.v1' : false),
});

wss.on('connection', (ws, req) => {
  ws.on('error', () => {});
  const m = /^\/close\/(\d+)/.exec(req.url);
  if (m) {
    ws.close(Number(m[1]), 'bye');
    return;
  }
  if (req.url.startsWith('/drop')) {
    ws.terminate();
    return;
  }
  if (req.url.startsWith('/ping')) ws.ping('p');
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

wss.on('listening', () => {
  console.log(`LISTENING ${wss.address().port}`);
});

const stop = () => wss.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
