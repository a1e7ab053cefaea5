package logging

import (
	"context"
	"log/slog"
)

// durationHandler rewrites the duration attributes of the plugin's records
// (seconds or strings) before passing them to next.
type durationHandler struct {
	next   slog.Handler
	format DurationFormat
}

func (h *durationHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h *durationHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.convert(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *durationHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	conv := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		conv[i] = h.convert(a)
	}
	return &durationHandler{next: h.next.WithAttrs(conv), format: h.format}
}

func (h *durationHandler) WithGroup(name string) slog.Handler {
	return &durationHandler{next: h.next.WithGroup(name), format: h.format}
}

// convert rewrites a duration, in groups too.
func (h *durationHandler) convert(a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindDuration:
		d := a.Value.Duration()
		if h.format == DurationString {
			return slog.String(a.Key, d.String())
		}
		return slog.Float64(a.Key, d.Seconds())
	case slog.KindGroup:
		group := a.Value.Group()
		conv := make([]any, len(group))
		for i, g := range group {
			conv[i] = h.convert(g)
		}
		return slog.Group(a.Key, conv...)
	}
	return a
}
