// Package autobahn is an Autobahn|Testsuite client driver built on lomond's
// handler API: for every case of a fuzzingserver it connects and echoes each
// message back with the same type until the server closes.
package autobahn

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// echo sends every message back, as the suite expects of a client.
type echo struct {
	lomond.BaseHandler
}

func (echo) OnText(ws *lomond.WebSocket, ev *events.Text)     { _ = ws.SendText(ev.Text) }
func (echo) OnBinary(ws *lomond.WebSocket, ev *events.Binary) { _ = ws.SendBinary(ev.Data) }

// counter reads the single text message of /getCaseCount.
type counter struct {
	lomond.BaseHandler
	n string
}

func (c *counter) OnText(_ *lomond.WebSocket, ev *events.Text) { c.n = ev.Text }

// options are the client settings for every case: no limits the suite would
// trip over (section 9 sends 16 MiB), no timers of ours, compression offered
// so sections 12 and 13 run.
func options() []lomond.Option {
	return []lomond.Option{
		lomond.WithReadLimit(64 << 20),
		lomond.WithPollInterval(0),
		lomond.WithPingRate(0),
		lomond.WithPingTimeout(0),
		lomond.WithCloseTimeout(5 * time.Second),
		// Offers client_no_context_takeover and client_max_window_bits, so every
		// 13.x acceptor finds an offer it takes; every message is compressed.
		lomond.WithCompressionOptions(lomond.CompressionOptions{ClientNoContextTakeover: true, Threshold: -1}),
		lomond.WithoutProxy(),
	}
}

// CaseCount asks the fuzzingserver at base (ws://host:port) how many cases
// it has.
func CaseCount(ctx context.Context, base string) (int, error) {
	ws, err := lomond.New(base+"/getCaseCount", options()...)
	if err != nil {
		return 0, err
	}
	c := &counter{}
	if err := ws.Run(ctx, c); lomond.CloseStatus(err) == -1 && err != nil {
		return 0, err
	}
	return strconv.Atoi(c.n)
}

// RunCase runs case i (1-based) for agent.
func RunCase(ctx context.Context, base, agent string, i int) error {
	ws, err := lomond.New(fmt.Sprintf("%s/runCase?case=%d&agent=%s", base, i, url.QueryEscape(agent)), options()...)
	if err != nil {
		return err
	}
	_ = ws.Run(ctx, echo{}) // the suite judges the outcome, not Run's error
	return ctx.Err()
}

// UpdateReports asks the server to write its reports for agent.
func UpdateReports(ctx context.Context, base, agent string) error {
	ws, err := lomond.New(base+"/updateReports?agent="+url.QueryEscape(agent), options()...)
	if err != nil {
		return err
	}
	if err := ws.Run(ctx, lomond.BaseHandler{}); err != nil && lomond.CloseStatus(err) == -1 {
		return err
	}
	return nil
}

// RunAll runs every case of the server at base, then writes the reports.
// progress, if not nil, is called after each case.
func RunAll(ctx context.Context, base, agent string, progress func(i, n int)) error {
	n, err := CaseCount(ctx, base)
	if err != nil {
		return fmt.Errorf("case count: %w", err)
	}
	for i := 1; i <= n; i++ {
		if err := RunCase(ctx, base, agent, i); err != nil {
			return fmt.Errorf("case %d: %w", i, err)
		}
		if progress != nil {
			progress(i, n)
		}
	}
	return UpdateReports(ctx, base, agent)
}
