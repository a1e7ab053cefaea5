package lomondtest_test

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/lomondtest"
	"github.com/lomond-go/lomond/lomondtest/fault"
)

func TestTLSServer(t *testing.T) {
	srv := lomondtest.NewTLSServer(t, lomondtest.Script(
		lomondtest.Expect(lomondtest.Text("over TLS")),
		lomondtest.SendText("ack"),
		lomondtest.ExpectClose(1000, "done"),
	), lomondtest.Script(fault.Trickle(100*time.Microsecond), fault.ProtocolViolation()))
	if !strings.HasPrefix(srv.URL, "wss://127.0.0.1:") {
		t.Fatalf("URL = %q", srv.URL)
	}
	ca := srv.Certificate()
	if ca == nil || !ca.IsCA {
		t.Fatalf("Certificate() = %v, want the CA", ca)
	}
	rec := lomondtest.Run(t, srv.Client(), onText(closeOn("ack"), "over TLS"))
	rec.AssertSequence(t, "connecting connected ready text closed disconnected")

	// Raw bytes and trickling go through TLS too.
	rec = lomondtest.Run(t, srv.Client(), nil)
	rec.AssertSequence(t, "connecting connected ready protocol_error disconnected")
	if pe := rec.Events()[3].(*events.ProtocolError); pe.Code != 1002 {
		t.Errorf("ProtocolError code %d", pe.Code)
	}
}

func TestTLSServerIsNotTrustedWithoutItsCA(t *testing.T) {
	srv := lomondtest.NewTLSServer(t)
	ws, err := lomond.New(srv.URL, lomond.WithoutProxy())
	if err != nil {
		t.Fatal(err)
	}
	lomondtest.Run(t, ws, nil).AssertSequence(t, "connecting connect_fail")
	var unknown x509.UnknownAuthorityError
	if !errors.As(ws.Err(), &unknown) {
		t.Errorf("ws.Err() = %v, want an unknown authority", ws.Err())
	}
	if len(srv.Conns()) != 0 {
		t.Error("a connection whose TLS handshake failed reached a script")
	}
	if srv.Client() == nil || lomondtest.NewServer(t).Certificate() != nil {
		t.Error("a plain server has a certificate")
	}
}
