package lomond

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// TestProxyEnvironmentCGI: in a CGI process (REQUEST_METHOD set) HTTP_PROXY
// may come from a request's "Proxy:" header (httpoxy), so it is refused, as
// net/http refuses it: the attempt is a ConnectFail that says why, and the
// proxy it names is never contacted. Loopback targets are never proxied
// from the environment, so the target is 0.0.0.0, which Linux connects to
// the local host.
func TestProxyEnvironmentCGI(t *testing.T) {
	srv := wstest.NewServer(t, wstest.Echo)
	target := strings.Replace(srv.URL(), "127.0.0.1", "0.0.0.0", 1)

	t.Run("without CGI, HTTP_PROXY is used", func(t *testing.T) {
		tdClearProxyEnv(t)
		proxy := wstest.NewProxy(t, "", "")
		t.Setenv("HTTP_PROXY", proxy.URL())
		tdRun(t, tdNew(t, target), nil)
		if got := proxy.Targets(); len(got) != 1 {
			t.Errorf("proxy targets %v, want the server's (the control case)", got)
		}
	})

	for _, name := range []string{"HTTP_PROXY", "http_proxy"} {
		t.Run("CGI refuses "+name, func(t *testing.T) {
			tdClearProxyEnv(t)
			proxy := wstest.NewProxy(t, "", "")
			t.Setenv("REQUEST_METHOD", "GET")
			t.Setenv(name, "http://user:Httpoxy-pa55@"+proxy.Addr())
			before := srv.Conns()
			ev, err := tdRunConnectFail(t, tdNew(t, target))
			for _, want := range []string{"HTTP_PROXY", "CGI", "REQUEST_METHOD", "httpoxy"} {
				if !strings.Contains(ev.Reason, want) {
					t.Errorf("ConnectFail.Reason = %q, want it to mention %s", ev.Reason, want)
				}
			}
			if strings.Contains(ev.Reason, "pa55") || strings.Contains(err.Error(), "pa55") {
				t.Errorf("the refusal shows the proxy's password: %v", err)
			}
			if n := proxy.Conns(); n != 0 {
				t.Errorf("the proxy from HTTP_PROXY got %d connections in a CGI process", n)
			}
			if n := srv.Conns() - before; n != 0 {
				t.Errorf("the server got %d direct connections; the refusal must not fall back silently", n)
			}
		})
	}

	t.Run("CGI keeps ALL_PROXY", func(t *testing.T) {
		tdClearProxyEnv(t)
		proxy := wstest.NewProxy(t, "", "")
		t.Setenv("REQUEST_METHOD", "POST")
		t.Setenv("ALL_PROXY", proxy.URL())
		rec, _ := tdRun(t, tdNew(t, target), nil)
		// The wstest proxy tunnels only to loopback names: its refusal
		// proves the CONNECT went through it.
		if got := proxy.Targets(); !slices.Equal(got, []string{strings.TrimPrefix(strings.TrimSuffix(target, "/"), "ws://")}) {
			t.Errorf("proxy targets %v, want the server's; events %v", got, rec.names())
		}
		var pe *ProxyError
		if ev := tdOne[*events.ConnectFail](t, rec); !errors.As(ev.Err, &pe) {
			t.Errorf("ConnectFail.Err = %v, want the test proxy's refusal", ev.Err)
		}
	})
}
