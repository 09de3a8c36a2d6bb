package logring

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

func TestContextAttrsGoOnEveryLineLoggedWithTheContext(t *testing.T) {
	ring := NewRing(10)
	log, out := newLogger(t, "json", slog.LevelInfo, ring)
	log = log.With("node", "n1")
	ctx := ContextWith(context.Background(), slog.String("request", "r-1"))
	ctx = ContextWith(ctx, slog.String("deploy", "dep-2"))
	log.InfoContext(ctx, "deploy accepted", "service", "shop/prod/web")
	log.Info("no context")

	lines := out.lines()
	if len(lines) != 2 {
		t.Fatalf("wrote %d lines: %q", len(lines), lines)
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first["node"] != "n1" || first["request"] != "r-1" || first["deploy"] != "dep-2" || first["service"] != "shop/prod/web" {
		t.Errorf("line with the context: %v", first)
	}
	if _, ok := second["request"]; ok || second["node"] != "n1" {
		t.Errorf("line without the context: %v", second)
	}
	es := ring.Entries(time.Time{}, 0)
	if len(es) != 2 || es[0].Attrs["request"] != "r-1" || es[0].Attrs["deploy"] != "dep-2" {
		t.Errorf("ring entries %+v", es)
	}
	if ContextWith(ctx) != ctx {
		t.Error("ContextWith without attributes made a new context")
	}
}
