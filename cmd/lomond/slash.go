package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/lomond-go/lomond"
)

// slashHelp lists the commands of --slash, for warnings and --help.
const slashHelp = "/ping [DATA], /pong [DATA], /close [CODE [REASON]]; //TEXT sends /TEXT"

// command runs a --slash command typed on line n: "/ping [DATA]",
// "/pong [DATA]" or "/close [CODE [REASON]]". A line that is not a command
// is reported and skipped. It reports false when the input should stop.
func (c *client) command(ctx context.Context, n int, line string) bool {
	name, arg, _ := strings.Cut(line, " ")
	what := fmt.Sprintf("line %d (%s)", n, name)
	switch name {
	case "/ping":
		return c.deliver(ctx, what, func() error {
			err := c.ws.SendPing([]byte(arg))
			if err == nil {
				c.out.note("%s", strings.TrimSpace("ping sent "+payloadSummary([]byte(arg))))
			}
			return err
		})
	case "/pong":
		return c.deliver(ctx, what, func() error {
			err := c.ws.SendPong([]byte(arg))
			if err == nil {
				c.out.note("%s", strings.TrimSpace("pong sent "+payloadSummary([]byte(arg))))
			}
			return err
		})
	case "/close":
		code, reason, err := parseCloseArgs(arg)
		if err != nil {
			c.out.warn("%s not sent: %v", what, err)
			return true
		}
		return c.deliver(ctx, what, func() error {
			// Not c.stop: with --persist the next session follows, as after
			// any close; without it, the run ends with this session.
			err := c.ws.Close(code, reason)
			if err == nil {
				c.out.note("closing %d %q", code, reason)
			}
			return err
		})
	}
	c.out.warn("line %d not sent: unknown command %q (--slash commands: %s)", n, name, slashHelp)
	return true
}

// parseCloseArgs reads "[CODE [REASON]]"; no code is 1000.
func parseCloseArgs(arg string) (int, string, error) {
	arg = strings.TrimSpace(arg)
	if arg == "" {
		return lomond.StatusNormal, "", nil
	}
	num, reason, _ := strings.Cut(arg, " ")
	code, err := strconv.Atoi(num)
	if err != nil {
		return 0, "", fmt.Errorf("%q is not a close code (want /close [CODE [REASON]], such as /close 4001 bye)", num)
	}
	return code, reason, nil
}
