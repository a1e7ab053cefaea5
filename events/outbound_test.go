package events

import (
	"errors"
	"testing"
)

func TestOutboundString(t *testing.T) {
	cases := []struct {
		o    Outbound
		want string
	}{
		{Outbound{Kind: KindText, Size: 5, Result: Sent}, `Outbound(kind='text', size=5, result='sent')`},
		{Outbound{Kind: KindBinary, Size: 3, Result: Queued}, `Outbound(kind='binary', size=3, result='queued')`},
		{Outbound{Kind: KindPong, Size: 2, Result: Sent, Auto: true}, `Outbound(kind='pong', size=2, result='sent', auto=True)`},
		{Outbound{Kind: KindText, Size: 1, Result: Failed, FromQueue: true, Err: errors.New("it's gone")},
			`Outbound(kind='text', size=1, result='failed', from_queue=True, error="it's gone")`},
		{Outbound{Kind: KindClose, Size: 6, Result: Sent, Code: 1000, Reason: "done"},
			`Outbound(kind='close', size=6, result='sent', code=1000, reason='done')`},
		{Outbound{Kind: KindText, Result: Dropped}, `Outbound(kind='text', size=0, result='dropped')`},
		{Outbound{Kind: KindText, Result: Unsent}, `Outbound(kind='text', size=0, result='unsent')`},
		{Outbound{Kind: KindPing, Result: Sent}, `Outbound(kind='ping', size=0, result='sent')`},
	}
	for _, c := range cases {
		if got := c.o.String(); got != c.want {
			t.Errorf("String() = %s, want %s", got, c.want)
		}
	}
	if got := OutboundKind(9).String(); got != "OutboundKind(9)" {
		t.Errorf("unknown kind: %q", got)
	}
	if got := OutboundResult(0).String(); got != "OutboundResult(0)" {
		t.Errorf("unknown result: %q", got)
	}
}
