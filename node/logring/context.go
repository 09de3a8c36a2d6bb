package logring

import (
	"context"
	"log/slog"
)

// contextKey keys the attributes ContextWith puts in a context.
type contextKey struct{}

// ContextWith returns ctx carrying attrs (a request id, a deploy id): every
// record logged with that context (InfoContext, LogAttrs, ...) through a
// NewHandler handler carries them too, added after the record's own.
func ContextWith(ctx context.Context, attrs ...slog.Attr) context.Context {
	if len(attrs) == 0 {
		return ctx
	}
	prior := ContextAttrs(ctx)
	all := make([]slog.Attr, 0, len(prior)+len(attrs))
	all = append(append(all, prior...), attrs...)
	return context.WithValue(ctx, contextKey{}, all)
}

// ContextAttrs returns the attributes ContextWith put in ctx.
func ContextAttrs(ctx context.Context) []slog.Attr {
	if ctx == nil {
		return nil
	}
	as, _ := ctx.Value(contextKey{}).([]slog.Attr)
	return as
}
