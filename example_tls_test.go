package lomond_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// tlsEchoServer is an echo server behind TLS, with httptest's certificate
// (for 127.0.0.1 and example.com), which no system trusts.
func tlsEchoServer() *exampleServer {
	return startTLSServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		if c := accept(w, r); c != nil {
			defer c.CloseNow()
			echo(ctx, c)
		}
	})
}

// readyThenClose prints "ready" and closes the session.
var readyThenClose = lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
	if _, ok := ev.(*events.Ready); ok {
		fmt.Println("ready")
		_ = ws.Close(lomond.StatusNormal, "")
	}
})

func ExampleWithInsecureSkipVerify() {
	srv := tlsEchoServer()
	defer srv.Close()

	// Verification is on by default: the unknown certificate is refused.
	ws, err := lomond.New(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = ws.Run(context.Background(), readyThenClose)
	var unknown x509.UnknownAuthorityError
	fmt.Println("refused:", errors.As(err, &unknown))

	// Tests only: anyone on the path could read and change the traffic.
	runOnce(srv.URL, readyThenClose, lomond.WithInsecureSkipVerify())
	// Output:
	// refused: true
	// ready
}

func ExampleWithRootCAs() {
	srv := tlsEchoServer()
	defer srv.Close()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(srv.PEM) // in real code: your private CA
	runOnce(srv.URL, readyThenClose, lomond.WithRootCAs(pool))
	// Output:
	// ready
}

func ExampleWithCAFile() {
	srv := tlsEchoServer()
	defer srv.Close()

	dir, err := os.MkdirTemp("", "lomond-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, srv.PEM, 0o600); err != nil {
		fmt.Println(err)
		return
	}

	runOnce(srv.URL, readyThenClose, lomond.WithCAFile(caFile)) // the file is read by New

	_, err = lomond.New(srv.URL, lomond.WithCAFile(filepath.Join(dir, "missing.pem")))
	fmt.Println(errors.Is(err, lomond.ErrInvalidOption))
	// Output:
	// ready
	// true
}

func ExampleWithTLSConfig() {
	srv := tlsEchoServer()
	defer srv.Close()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(srv.PEM)
	cfg := &tls.Config{
		RootCAs:    pool,
		ServerName: "example.com", // verify this name, whatever the URL's host
		MinVersion: tls.VersionTLS13,
	}
	runOnce(srv.URL, readyThenClose, lomond.WithTLSConfig(cfg))
	// Output:
	// ready
}

func ExampleWithProxy() {
	srv := echoServer()
	defer srv.Close()
	users := make(chan string, 1)
	proxy := connectProxy(users)
	defer proxy.Close()

	runOnce(srv.URL, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Connected:
			// Credentials never appear in events, errors or logs.
			fmt.Println("via proxy, credentials hidden:", !strings.Contains(ev.Proxy, "alice") && !strings.Contains(ev.Proxy, "secret"))
		case *events.Ready:
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}), lomond.WithProxy("http://alice:secret@"+proxy.Addr))
	fmt.Println("the proxy saw user", <-users)
	// Output:
	// via proxy, credentials hidden: true
	// the proxy saw user alice
}

func ExampleWithoutProxy() {
	srv := echoServer()
	defer srv.Close()

	// The last proxy option wins: connect directly, whatever the
	// environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) or earlier options say.
	runOnce(srv.URL, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Connected:
			fmt.Printf("proxy: %q\n", ev.Proxy)
		case *events.Ready:
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}), lomond.WithProxy("http://proxy.invalid:3128"), lomond.WithoutProxy())
	// Output:
	// proxy: ""
}
