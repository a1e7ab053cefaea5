package lomond

import (
	"log/slog"
	"strconv"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/eventlog"
)

// WithPlugins installs plugins on the WebSocket: every session it runs
// (Run, Persist, Events, PersistEvents) delivers each event to them, in the
// order given, before the handler or the range loop; those that implement
// SendObserver also see every outgoing message and frame. Use it for what
// belongs to the connection rather than to one handler: logging, metrics,
// tracing. WithPlugins may be given more than once; the plugins add up.
//
// A plugin is any value with at least one handler method (see Compose). New
// checks them: a plugin with no handler method, a method with the wrong
// signature, methods on its pointer type only, or an OnStream method (a
// stream has one reader: the handler's) is an error wrapping both
// ErrInvalidOption and ErrInvalidHandler.
func WithPlugins(plugins ...any) Option {
	return func(c *config) error {
		for i, p := range plugins {
			t, err := discover(p)
			if err != nil {
				return &handlerError{msg: "WithPlugins argument " + strconv.Itoa(i) + ": " + err.(*handlerError).msg, option: true}
			}
			if t.streams {
				// A stream has one reader, the handler's: a plugin that
				// read it would take the message from the handler.
				return &handlerError{msg: "WithPlugins argument " + strconv.Itoa(i) + ": a plugin cannot be a StreamHandler (OnStream belongs to the handler given to Run or Persist)", option: true}
			}
		}
		c.pluginList = append(c.pluginList, plugins...)
		return c.buildPlugins()
	}
}

// buildPlugins discovers the WebSocket's plugins into one table: the
// logger's first, then WithPlugins' in order.
func (c *config) buildPlugins() error {
	parts := make([]any, 0, 1+len(c.pluginList))
	if c.logger != nil {
		parts = append(parts, logPlugin{eventlog.New(c.logger, eventlog.Config{MessageLevel: slog.LevelDebug})})
	}
	parts = append(parts, c.pluginList...)
	if len(parts) == 0 {
		c.plugins = nil
		return nil
	}
	var l listeners
	for _, p := range parts {
		if err := l.add(p, ""); err != nil {
			return err
		}
	}
	c.plugins = l.compile()
	return nil
}

// logPlugin is the logging plugin WithLogger installs.
type logPlugin struct{ l *eventlog.Logger }

func (p logPlugin) OnEvent(ws *WebSocket, ev events.Event) {
	if _, ok := ev.(*events.Connecting); ok {
		p.l.LearnURL(ws.URL()) // the event's URL is redacted already
	}
	p.l.Event(ev)
}

func (p logPlugin) OnSend(_ *WebSocket, ev *events.Outbound) { p.l.Outbound(ev) }
