package notify

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestWants(t *testing.T) {
	created := t0
	ev := func(kind string, at time.Time) raftfsm.Event { return raftfsm.Event{Kind: kind, At: at} }
	later := t0.Add(time.Second)
	for _, c := range []struct {
		kinds []string
		e     raftfsm.Event
		want  bool
	}{
		{nil, ev(raftfsm.EventDeployFailed, later), true},
		{nil, ev(raftfsm.EventRollback, later), true},
		{nil, ev(raftfsm.EventHealRestart, later), true},
		{nil, ev(raftfsm.EventHealReboot, later), true},
		{nil, ev(raftfsm.EventHealReschedule, later), true},
		{nil, ev(raftfsm.EventHealReplace, later), true},
		{nil, ev(raftfsm.EventNodeLost, later), true},
		{nil, ev(raftfsm.EventNodeFound, later), true},
		{nil, ev(raftfsm.EventDeploySucceeded, later), false},
		{nil, ev(raftfsm.EventHealth, later), false},
		{nil, ev(raftfsm.EventNodeJoined, later), false},
		{nil, ev(raftfsm.EventDeployFailed, created), true},                        // same instant: the webhook existed
		{nil, ev(raftfsm.EventDeployFailed, created.Add(-time.Nanosecond)), false}, // before the webhook
		{[]string{"deploy."}, ev(raftfsm.EventDeploySucceeded, later), true},
		{[]string{"deploy."}, ev(raftfsm.EventHealRestart, later), false},
		{[]string{""}, ev(raftfsm.EventHealRestart, later), false}, // an empty prefix is not "all"
		{[]string{raftfsm.WebhookAllKinds}, ev(raftfsm.EventUser, later), true},
	} {
		w := raftfsm.Webhook{ID: "w", Kinds: c.kinds, CreatedAt: created}
		if got := Wants(w, c.e); got != c.want {
			t.Errorf("Wants(kinds %q, %s at %s) = %v, want %v", c.kinds, c.e.Kind, c.e.At.Sub(created), got, c.want)
		}
	}
	// DefaultKinds is a copy: changing it changes nothing.
	k := raftfsm.WebhookDefaultKinds()
	k[0] = "user"
	if Wants(raftfsm.Webhook{}, raftfsm.Event{Kind: "user", At: later}) {
		t.Fatal("DefaultKinds returned the package's own slice")
	}
}

func TestPayloadShapes(t *testing.T) {
	e := raftfsm.Event{Seq: 7, At: t0, Kind: raftfsm.EventNodeLost, Severity: raftfsm.SeverityError, Node: "node-3",
		Message: "node node-3: active -> dead:\n  no answer"}
	body, err := Payload(raftfsm.WebhookGeneric, "prod", e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"cluster":"prod","seq":7,"at":"2026-11-23T12:00:00Z","kind":"node.lost","severity":"error","node":"node-3","message":"node node-3: active -\u003e dead:\n  no answer"}`
	if string(body) != want {
		t.Errorf("generic =\n%s\nwant\n%s", body, want)
	}
	body, err = Payload(raftfsm.WebhookSlack, "prod", e)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]string
	if err := json.Unmarshal(body, &s); err != nil || len(s) != 1 {
		t.Fatalf("slack body %s: %v", body, err)
	}
	if s["text"] != "🔴 [prod] node.lost node-3: node node-3: active -&gt; dead: no answer" {
		t.Errorf("slack text = %q", s["text"])
	}
	body, err = Payload(raftfsm.WebhookDiscord, "", raftfsm.Event{Kind: raftfsm.EventHealReplace, Severity: raftfsm.SeverityWarn,
		Message: "@everyone " + strings.Repeat("é", 3000)})
	if err != nil {
		t.Fatal(err)
	}
	var d DiscordPayload
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCountInString(d.Content); n != discordMaxContent || !strings.HasSuffix(d.Content, "…") {
		t.Errorf("discord content has %d characters (want %d, cut with …)", n, discordMaxContent)
	}
	if !strings.HasPrefix(d.Content, "⚠️ heal.replace: @everyone") || d.AllowedMentions.Parse == nil || len(d.AllowedMentions.Parse) != 0 {
		t.Errorf("discord payload = %.80q, mentions %v", d.Content, d.AllowedMentions)
	}
	if _, err := Payload("teams", "prod", e); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("unknown format: err = %v, want ErrUnknownFormat", err)
	}
}

func TestLineSubject(t *testing.T) {
	for _, c := range []struct {
		e    raftfsm.Event
		want string
	}{
		{raftfsm.Event{Kind: "heal.restart", Service: "9fe5e6/shop/prod/web", Node: "node-1", Message: "m"}, "ℹ️ [c] heal.restart shop/prod/web on node-1: m"},
		{raftfsm.Event{Kind: "node.found", Node: "node-1", Message: "back"}, "ℹ️ [c] node.found node-1: back"},
		{raftfsm.Event{Kind: "cluster", Service: "odd", Message: "x"}, "ℹ️ [c] cluster odd: x"},
	} {
		if got := Line("c", c.e); got != c.want {
			t.Errorf("Line = %q, want %q", got, c.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "2": 2 * time.Second, "0.5": 500 * time.Millisecond,
		"-1": 0, "Wed, 21 Oct 2015 07:28:00 GMT": 0} {
		if got := parseRetryAfter(in); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestPlanSkipsUnwantedAndBounds(t *testing.T) {
	hooks := []raftfsm.Webhook{{ID: "a", Format: raftfsm.WebhookGeneric}, {ID: "b", Format: raftfsm.WebhookSlack, Kinds: []string{"heal."}}}
	events := []raftfsm.Event{
		{Seq: 1, Kind: raftfsm.EventHealth, At: t0},
		{Seq: 2, Kind: raftfsm.EventHealRestart, At: t0},
		{Seq: 3, Kind: raftfsm.EventDeployFailed, At: t0},
		{Seq: 4, Kind: raftfsm.EventHealth, At: t0},
		{Seq: 5, Kind: raftfsm.EventNodeLost, At: t0},
	}
	b := plan(events, hooks, "c", 10)
	if b.upTo != 5 || len(b.deliveries) != 4 {
		t.Fatalf("plan = up to %d, %d deliveries; want 5 and 4", b.upTo, len(b.deliveries))
	}
	b = plan(events, hooks, "c", 2)
	if b.upTo != 3 || len(b.deliveries) != 3 {
		t.Fatalf("plan(max 2) = up to %d, %d deliveries; want 3 and 3", b.upTo, len(b.deliveries))
	}
	if b := plan(events[:1], hooks, "c", 10); len(b.deliveries) != 0 {
		t.Fatalf("nothing wanted, yet %d deliveries", len(b.deliveries))
	}
}
