package interop

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// nginxProxy is nginx as a websocket reverse proxy on 127.0.0.1: wss:// on
// tlsPort (certificate signed by pki's CA) and ws:// on plainPort, both
// forwarding to the same upstream.
type nginxProxy struct {
	tlsPort, plainPort int
	pki                *testPKI
}

const nginxConf = `worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:%[2]d ssl;
    listen 127.0.0.1:%[3]d;
    ssl_certificate %[4]s;
    ssl_certificate_key %[5]s;
    location / {
      proxy_pass http://127.0.0.1:%[6]d;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
    }
  }
}
`

// startNginx starts nginx in front of 127.0.0.1:upstream with a fresh CA
// and configuration in a temporary directory.
func startNginx(t *testing.T, upstream int) *nginxProxy {
	t.Helper()
	exe := lookExe(t, "nginx", "apt-get install -y nginx-light")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	n := &nginxProxy{pki: newTestPKI(t, dir)}
	p, tlsPort := startOnFreePort(t, func(port int) *process {
		n.plainPort = freePort(t)
		conf := filepath.Join(dir, "nginx.conf")
		body := fmt.Sprintf(nginxConf, dir, port, n.plainPort, n.pki.certFile, n.pki.keyFile, upstream)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		// -e stderr: nginx opens its default error log before reading the
		// configuration; keep it off /var/log.
		return startProcess(t, "nginx", dir, exe, "-e", "stderr", "-p", dir, "-c", conf)
	})
	n.tlsPort = tlsPort
	if err := p.awaitListening(net.JoinHostPort("127.0.0.1", strconv.Itoa(n.plainPort))); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *nginxProxy) wssURL(path string) string {
	return "wss://127.0.0.1:" + strconv.Itoa(n.tlsPort) + path
}
func (n *nginxProxy) wsURL(path string) string {
	return "ws://127.0.0.1:" + strconv.Itoa(n.plainPort) + path
}

// TestNginx runs lomond through nginx, as a TLS (wss://) and a plain (ws://)
// reverse proxy in front of the npm ws echo server with permessage-deflate.
func TestNginx(t *testing.T) {
	upstream := startNodeWS(t, "deflate")
	n := startNginx(t, upstream)
	ca := lomond.WithCAFile(n.pki.caFile)

	t.Run("wss/echo", func(t *testing.T) {
		rec := echoSession(t, n.wssURL("/"), standardExchange(), ca,
			lomond.WithCompression(lomond.CompressionContextTakeover), lomond.WithProtocols("echo.v1"))
		ready := first[*events.Ready](t, rec)
		wantExtensions(t, ready, true)
		if ready.Protocol != "echo.v1" {
			t.Errorf("Ready.Protocol = %q, want echo.v1", ready.Protocol)
		}
	})

	t.Run("wss/localhost", func(t *testing.T) {
		// The certificate names localhost too: the server name comes from
		// the URL's host.
		echoSession(t, "wss://localhost:"+strconv.Itoa(n.tlsPort)+"/", []msg{{"text", smallText}}, ca)
	})

	t.Run("wss/server_close_4001", func(t *testing.T) {
		rec := runSession(t, n.wssURL("/close/4001"), nil, ca)
		rec.wantNames(t, "connecting", "connected", "ready", "closing", "closed", "disconnected")
		rec.wantGracefulEnd(t)
		if lomond.CloseStatus(rec.err) != 4001 {
			t.Errorf("Run returned %v, want a close with 4001", rec.err)
		}
	})

	t.Run("wss/without_ca", func(t *testing.T) {
		// The system roots do not know the test CA: the TLS handshake
		// fails, and that is a ConnectFail.
		rec := runSession(t, n.wssURL("/"), nil)
		rec.wantNames(t, "connecting", "connect_fail")
		var unknown x509.UnknownAuthorityError
		if cf := all[*events.ConnectFail](rec); len(cf) == 1 && !errors.As(cf[0].Err, &unknown) {
			t.Errorf("ConnectFail.Err = %v, want x509.UnknownAuthorityError", cf[0].Err)
		}
		var ce *lomond.ConnectError
		if !errors.As(rec.err, &ce) {
			t.Errorf("Run returned %v, want a *lomond.ConnectError", rec.err)
		}
	})

	t.Run("wss/other_ca", func(t *testing.T) {
		other := newTestPKI(t, t.TempDir())
		rec := runSession(t, n.wssURL("/"), nil, lomond.WithCAFile(other.caFile))
		rec.wantNames(t, "connecting", "connect_fail")
	})

	t.Run("ws/echo", func(t *testing.T) {
		rec := echoSession(t, n.wsURL("/"), standardExchange(),
			lomond.WithCompression(lomond.CompressionNoContextTakeover))
		wantExtensions(t, first[*events.Ready](t, rec), true)
	})

	t.Run("ws/server_ping", func(t *testing.T) {
		rec := runSession(t, n.wsURL("/ping"), func(ws *lomond.WebSocket, ev events.Event) {
			if _, ok := ev.(*events.Ping); ok {
				_ = ws.Close(lomond.StatusNormal, "done")
			}
		})
		rec.wantNames(t, "connecting", "connected", "ready", "ping", "closed", "disconnected")
		rec.wantGracefulEnd(t)
	})
}
