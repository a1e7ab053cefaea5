package interop

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// Credentials of the proxies started with basic auth.
const proxyUser, proxyPass = "lomond", "s3cret"

// connectProxy is a CONNECT proxy started by a test on 127.0.0.1.
type connectProxy struct {
	proc *process
	port int
	auth bool
	// tunnelled reports whether the proxy logged a tunnel to target
	// (host:port), waiting a little for a log written when it closes.
	tunnelled func(target string) bool
}

// url returns the proxy URL, with the credentials if withAuth.
func (p *connectProxy) url(withAuth bool) string {
	u := &url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(p.port)}
	if withAuth {
		u.User = url.UserPassword(proxyUser, proxyPass)
	}
	return u.String()
}

// startTinyproxy starts tinyproxy, with BasicAuth if auth. Without
// ConnectPort lines it tunnels to any port. It logs to its output.
func startTinyproxy(t *testing.T, auth bool) *connectProxy {
	t.Helper()
	exe := lookExe(t, "tinyproxy", "apt-get install -y tinyproxy")
	dir := t.TempDir()
	proc, port := startOnFreePort(t, func(port int) *process {
		conf := fmt.Sprintf("Port %d\nListen 127.0.0.1\nBind 127.0.0.1\nTimeout 600\nLogLevel Connect\n"+
			"MaxClients 100\nAllow 127.0.0.1\nDisableViaHeader Yes\n", port)
		if os.Geteuid() == 0 && userExists("nobody") && groupExists("nogroup") {
			conf += "User nobody\nGroup nogroup\n"
		}
		if auth {
			conf += fmt.Sprintf("BasicAuth %s %s\n", proxyUser, proxyPass)
		}
		path := filepath.Join(dir, "tinyproxy.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		return startProcess(t, "tinyproxy", dir, exe, "-d", "-c", path)
	})
	p := &connectProxy{proc: proc, port: port, auth: auth}
	p.tunnelled = func(target string) bool {
		// "Request (file descriptor N): CONNECT host:port HTTP/1.1"
		return eventually(func() bool { return proc.out.contains("CONNECT " + target + " ") })
	}
	return p
}

// squidConf is a minimal squid: loopback clients only, CONNECT to any
// port, no cache, no DNS beyond 127.0.0.1, every socket on 127.0.0.1.
const squidConf = `http_port 127.0.0.1:%[1]d
%[3]s
acl lo src 127.0.0.1/32
http_access allow lo %[4]s
http_access deny all
cache deny all
pid_filename none
access_log stdio:%[2]s/access.log
cache_log %[2]s/cache.log
coredump_dir %[2]s
shutdown_lifetime 0 seconds
dns_nameservers 127.0.0.1
udp_incoming_address 127.0.0.1
udp_outgoing_address 127.0.0.1
icp_port 0
htcp_port 0
pinger_enable off
`

// squidAuthHelper is a basic-auth helper in squid's protocol: one
// "user password" line in, "OK" or "ERR" out. It needs nothing beyond sh.
const squidAuthHelper = `#!/bin/sh
while read -r user pass; do
  if [ "$user" = "%s" ] && [ "$pass" = "%s" ]; then echo OK; else echo ERR; fi
done
`

// startSquid starts squid in the foreground (-N), with basic auth through
// a small helper script if auth.
func startSquid(t *testing.T, auth bool) *connectProxy {
	t.Helper()
	exe := lookExe(t, "squid", "apt-get install -y squid")
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		// Squid drops to cache_effective_user (proxy) and then writes its
		// logs here: let that user reach and write the directory.
		u, err := user.Lookup("proxy")
		if err != nil {
			t.Fatalf("squid runs as the user proxy when started as root: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	authConf, authACL := "", ""
	if auth {
		helper := filepath.Join(dir, "auth.sh")
		if err := os.WriteFile(helper, []byte(fmt.Sprintf(squidAuthHelper, proxyUser, proxyPass)), 0o755); err != nil {
			t.Fatal(err)
		}
		authConf = "auth_param basic program " + helper + "\n" +
			"auth_param basic children 1 startup=1 idle=1\n" +
			"auth_param basic realm lomond\n" +
			"acl authed proxy_auth REQUIRED"
		authACL = "authed"
	}
	proc, port := startOnFreePort(t, func(port int) *process {
		conf := fmt.Sprintf(squidConf, port, dir, authConf, authACL)
		if os.Geteuid() == 0 {
			conf += "cache_effective_user proxy\n"
		}
		path := filepath.Join(dir, "squid.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		return startProcess(t, "squid", dir, exe, "-N", "-f", path)
	})
	p := &connectProxy{proc: proc, port: port, auth: auth}
	p.tunnelled = func(target string) bool {
		// access.log: "... TCP_TUNNEL/200 ... CONNECT host:port ...",
		// written when the tunnel closes.
		return eventually(func() bool {
			b, _ := os.ReadFile(filepath.Join(dir, "access.log"))
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "TCP_TUNNEL/200") && strings.Contains(line, "CONNECT "+target+" ") {
					return true
				}
			}
			return false
		})
	}
	return p
}

// eventually polls cond for up to 10 s, for logs a server writes on its
// own schedule.
func eventually(cond func() bool) bool {
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			return false
		}
	}
	return true
}

func userExists(name string) bool {
	_, err := user.Lookup(name)
	return err == nil
}

func groupExists(name string) bool {
	_, err := user.LookupGroup(name)
	return err == nil
}

// TestConnectProxies runs ws:// and wss:// sessions through tinyproxy and
// squid (CONNECT tunnels), without and with basic auth, to in-process echo
// servers.
func TestConnectProxies(t *testing.T) {
	plain := newEchoServer(t, nil)
	pki := newTestPKI(t, t.TempDir())
	secure := newEchoServer(t, pki)
	proxies := []struct {
		name  string
		start func(*testing.T, bool) *connectProxy
	}{
		{"tinyproxy", startTinyproxy},
		{"squid", startSquid},
	}
	for _, px := range proxies {
		for _, auth := range []bool{false, true} {
			name := px.name
			if auth {
				name += "/basic_auth"
			}
			t.Run(name, func(t *testing.T) {
				p := px.start(t, auth)
				proxySuite(t, p, plain, secure, pki)
			})
		}
	}
}

// proxySuite is what every CONNECT proxy is put through.
func proxySuite(t *testing.T, p *connectProxy, plain, secure *echoServer, pki *testPKI) {
	via := lomond.WithProxy(p.url(p.auth))
	wantProxy := p.url(false) // shown without user information (issue 8)
	checkCarried := func(t *testing.T, rec *record, target string) {
		t.Helper()
		if c := first[*events.Connected](t, rec); c.Proxy != wantProxy {
			t.Errorf("Connected.Proxy = %q, want %q", c.Proxy, wantProxy)
		}
		if strings.Contains(rec.dump(), proxyPass) {
			t.Errorf("the proxy password appears in the events:\n%s", rec.dump())
		}
		if !p.tunnelled(target) {
			t.Errorf("the proxy logged no CONNECT tunnel to %s; its output:\n%s", target, p.proc.out.String())
		}
	}

	t.Run("ws", func(t *testing.T) {
		rec := echoSession(t, plain.url("/"), standardExchange(), via,
			lomond.WithCompression(lomond.CompressionContextTakeover))
		wantExtensions(t, first[*events.Ready](t, rec), true)
		checkCarried(t, rec, plain.addr())
	})

	t.Run("wss", func(t *testing.T) {
		rec := echoSession(t, secure.url("/"), standardExchange(), via, lomond.WithCAFile(pki.caFile),
			lomond.WithProtocols("echo.v1"))
		if p := first[*events.Ready](t, rec).Protocol; p != "echo.v1" {
			t.Errorf("Ready.Protocol = %q, want echo.v1", p)
		}
		checkCarried(t, rec, secure.addr())
	})

	t.Run("ws/server_close_4001", func(t *testing.T) {
		rec := runSession(t, plain.url("/close/4001"), nil, via)
		rec.wantNames(t, "connecting", "connected", "ready", "closing", "closed", "disconnected")
		if lomond.CloseStatus(rec.err) != 4001 {
			t.Errorf("Run returned %v, want a close with 4001", rec.err)
		}
	})

	if p.auth {
		// Squid answers 407 to missing and wrong credentials; tinyproxy
		// answers 407 to missing ones and 401 to wrong ones.
		refused := func(t *testing.T, proxyURL string, status ...int) {
			t.Helper()
			rec := runSession(t, plain.url("/"), nil, lomond.WithProxy(proxyURL))
			rec.wantNames(t, "connecting", "connect_fail")
			var pe *lomond.ProxyError
			if !errors.As(rec.err, &pe) || !slices.Contains(status, pe.StatusCode) {
				t.Errorf("Run returned %v, want a *lomond.ProxyError with status %v", rec.err, status)
			}
			if cf := all[*events.ConnectFail](rec); len(cf) == 1 && !strings.HasPrefix(cf[0].Reason, "proxy fail") {
				t.Errorf("ConnectFail.Reason = %q, want it to start with \"proxy fail\"", cf[0].Reason)
			}
		}
		t.Run("no_credentials", func(t *testing.T) { refused(t, p.url(false), 407) })
		t.Run("wrong_password", func(t *testing.T) {
			refused(t, "http://"+proxyUser+":wrong@127.0.0.1:"+strconv.Itoa(p.port), 407, 401)
		})
	}

	t.Run("stopped", func(t *testing.T) {
		p.proc.stop(t)
		rec := runSession(t, plain.url("/"), nil, via)
		rec.wantNames(t, "connecting", "connect_fail")
		var ce *lomond.ConnectError
		if !errors.As(rec.err, &ce) {
			t.Errorf("Run returned %v, want a *lomond.ConnectError", rec.err)
		}
		// The target itself is still up: only the proxy is missing.
		echoSession(t, plain.url("/"), []msg{{"text", smallText}})
	})
}
