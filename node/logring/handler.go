package logring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"time"
)

// ErrUnknownFormat: NewHandler was asked for a format other than text or json.
var ErrUnknownFormat = errors.New("unknown log format")

// The output formats of NewHandler.
const (
	FormatText = "text" // slog's key=value text
	FormatJSON = "json" // one JSON object per line
)

// NewHandler returns a slog.Handler that writes records at or above level
// to w as "text" or "json" ("" means text) and also records each of them
// into ring (unless ring is nil), with attributes and groups flattened to
// "group.key". A nil level means Info.
func NewHandler(w io.Writer, format string, level slog.Leveler, ring *Ring) (slog.Handler, error) {
	if w == nil {
		return nil, errors.New("log handler: nil writer")
	}
	opts := &slog.HandlerOptions{Level: level}
	var inner slog.Handler
	switch strings.ToLower(strings.TrimSpace(format)) {
	case FormatText, "":
		inner = slog.NewTextHandler(w, opts)
	case FormatJSON:
		inner = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("%w %q: want text or json", ErrUnknownFormat, format)
	}
	return &handler{inner: inner, ring: ring}, nil
}

// handler writes through inner and records into ring.
type handler struct {
	inner  slog.Handler
	ring   *Ring
	attrs  []field // from WithAttrs, flattened with the groups open then
	prefix string  // the open groups, "a.b."
}

// field is one flattened attribute.
type field struct {
	key   string
	value any
}

var _ slog.Handler = (*handler)(nil)

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	if as := ContextAttrs(ctx); len(as) > 0 {
		rec = rec.Clone()
		rec.AddAttrs(as...)
	}
	err := h.inner.Handle(ctx, rec)
	if h.ring == nil {
		return err
	}
	e := Entry{Time: rec.Time, Level: rec.Level.String(), Message: rec.Message}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if len(h.attrs) > 0 || rec.NumAttrs() > 0 {
		e.Attrs = make(map[string]any, len(h.attrs)+rec.NumAttrs())
		for _, f := range h.attrs {
			e.Attrs[f.key] = f.value
		}
		rec.Attrs(func(a slog.Attr) bool {
			flatten(h.prefix, a, func(f field) { e.Attrs[f.key] = f.value })
			return true
		})
		if len(e.Attrs) == 0 {
			e.Attrs = nil
		}
	}
	h.ring.add(e)
	return err
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	h2 := *h
	h2.inner = h.inner.WithAttrs(as)
	h2.attrs = append([]field(nil), h.attrs...)
	for _, a := range as {
		flatten(h.prefix, a, func(f field) { h2.attrs = append(h2.attrs, f) })
	}
	return &h2
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.inner = h.inner.WithGroup(name)
	h2.prefix = h.prefix + name + "."
	return &h2
}

// flatten emits a with its key prefixed, groups opened into "group.key",
// following slog's rules: an empty attribute is dropped and a group with an
// empty key is inlined.
func flatten(prefix string, a slog.Attr, emit func(field)) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p = prefix + a.Key + "."
		}
		for _, g := range v.Group() {
			flatten(p, g, emit)
		}
		return
	}
	if a.Key == "" {
		return
	}
	emit(field{key: prefix + a.Key, value: plain(v)})
}

// plain turns v into a value that is safe to keep (it cannot change under
// the ring) and encodes as JSON.
func plain(v slog.Value) any {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return v.Uint64()
	case slog.KindFloat64:
		f := v.Float64()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Sprint(f)
		}
		return f
	case slog.KindBool:
		return v.Bool()
	case slog.KindDuration:
		return v.Duration().String()
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	}
	return plainAny(v.Any())
}

// plainAny keeps an arbitrary value as its JSON encoding, so a slice or map
// the caller changes later does not change the entry; what JSON cannot
// encode is kept as text.
func plainAny(x any) (out any) {
	defer func() {
		if r := recover(); r != nil {
			out = fmt.Sprintf("!PANIC in log value: %v", r)
		}
	}()
	switch x := x.(type) {
	case nil:
		return nil
	case error:
		return x.Error()
	}
	if b, err := json.Marshal(x); err == nil {
		return json.RawMessage(b)
	}
	return fmt.Sprintf("%+v", x)
}
