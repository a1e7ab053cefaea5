// Package interop holds lomond's interoperability and fault-injection
// tests. It is a separate module so that their dependencies (toxiproxy and
// what it needs) stay out of the library's go.mod.
//
// The interop tests run lomond against independent websocket servers (npm
// ws, Python websockets, aiohttp and tornado), through nginx as a TLS
// reverse proxy and through tinyproxy and squid as CONNECT proxies. Each
// test starts its server on 127.0.0.1 and stops it, by process group, when
// it ends. A server whose program is not installed is skipped with a
// message naming the package, unless CI=true, where it is a failure.
//
// The fault tests put an in-process toxiproxy between lomond and an
// in-process echo server and inject latency, TCP slicing, resets, a dead
// peer, a bandwidth limit and a truncated stream.
//
// Setup (Debian, as root) and run, from the repository root:
//
//	apt-get install -y --no-install-recommends python3-websockets python3-aiohttp \
//	    python3-tornado nginx-light tinyproxy squid
//	npm ci --prefix interop/peers
//	(cd interop && go test -race -count=1 ./...)
package interop
