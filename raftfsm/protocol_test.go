package raftfsm

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// Every command's fields carry valid proto tags, none newer than this
// release, and every command type's protocol is one this release has.
func TestProtocolTags(t *testing.T) {
	var check func(rt reflect.Type, seen map[reflect.Type]bool)
	check = func(rt reflect.Type, seen map[reflect.Type]bool) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map || rt.Kind() == reflect.Array {
			rt = rt.Elem()
		}
		if !ownType(rt) || seen[rt] {
			return
		}
		seen[rt] = true
		for i := range rt.NumField() {
			f := rt.Field(i)
			if n, _ := fieldProto(f); n > Protocol { // fieldProto panics on a malformed tag
				t.Errorf("%s.%s: proto tag %d is newer than this release's Protocol %d: raise Protocol", rt.Name(), f.Name, n, Protocol)
			}
			check(f.Type, seen)
		}
	}
	for ct := CmdInvalid + 1; ct < cmdEnd; ct++ {
		if p := TypeProtocol(ct); p > Protocol {
			t.Errorf("%s comes with protocol %d, newer than Protocol %d: give it its protocol in commandSince", ct, p, Protocol)
		}
		h, _ := handlerFor(ct)
		check(reflect.TypeOf(h.new()), map[reflect.Type]bool{})
	}
	if Protocol < ProtocolFieldTags || ProtocolFieldTags <= LegacyProtocol || LegacyProtocol != int(CmdSetEgressAllow) {
		t.Fatalf("protocols out of order: legacy %d, field tags %d, this release %d", LegacyProtocol, ProtocolFieldTags, Protocol)
	}
}

// A command that sets no tagged field is encoded as before tags existed,
// byte for byte, so a replica of an older release still decodes it.
func TestUntaggedCommandsKeepTheLegacyEnvelope(t *testing.T) {
	c := &SetEgressAllow{At: t0, Ranges: []string{"10.0.0.0/8"}}
	data, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if data[0] != envelopeVersion || data[1] != byte(CmdSetEgressAllow) || !strings.HasPrefix(string(data[2:]), "{") {
		t.Fatalf("envelope % x", data[:3])
	}
	if got := NeededProtocol(c); got != int(CmdSetEgressAllow) {
		t.Fatalf("NeededProtocol = %d, want the type's %d", got, CmdSetEgressAllow)
	}
	if _, err := DecodeAt(data, LegacyProtocol); err != nil {
		t.Fatalf("a legacy replica refuses it: %v", err)
	}
}

// A replica older than a command type refuses an entry of that type: it is
// counted, reported and logged, and its state is unchanged.
func TestOldReplicaRefusesANewCommandType(t *testing.T) {
	old := NewFSMAt(nil, int(CmdSetEgressAllow)-1)
	var heard []uint64
	old.OnUndecodable(func(index uint64, err error) { heard = append(heard, index) })
	if _, err := old.ApplyCommand(1, &InitCluster{At: t0, ClusterID: "c", ClusterName: "c", AdminName: "admin", AdminPasswordHash: testHash, DefaultWorkspaceID: testWS}); err != nil {
		t.Fatalf("an old command: %v", err)
	}
	before := stateJSON(t, old)
	_, err := old.ApplyCommand(2, &SetEgressAllow{At: t0, Ranges: []string{"10.0.0.0/8"}})
	if !errors.Is(err, ErrUnknownCommand) {
		t.Fatalf("a new command type on an old replica: %v, want ErrUnknownCommand", err)
	}
	if old.Undecodable() != 1 || len(heard) != 1 || heard[0] != 2 {
		t.Fatalf("undecodable %d, heard %v; want entry 2 counted and reported", old.Undecodable(), heard)
	}
	if after := stateJSON(t, old); after != strings.Replace(before, `"index":1`, `"index":2`, 1) {
		t.Fatalf("the refused entry changed the state:\n%s\n%s", before, after)
	}
	// The current release applies it.
	cur := NewFSM(nil)
	if _, err := cur.ApplyCommand(1, &InitCluster{At: t0, ClusterID: "c", ClusterName: "c", AdminName: "admin", AdminPasswordHash: testHash, DefaultWorkspaceID: testWS}); err != nil {
		t.Fatal(err)
	}
	if _, err := cur.ApplyCommand(2, &SetEgressAllow{At: t0, Ranges: []string{"10.0.0.0/8"}}); err != nil || cur.Undecodable() != 0 {
		t.Fatalf("current release: %v, %d undecodable", err, cur.Undecodable())
	}
}

// A damaged entry is undecodable too, on every release alike.
func TestDamagedEntryIsCounted(t *testing.T) {
	f := NewFSM(nil)
	r := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte{9, 9, '{'}}).(*Result)
	if !errors.Is(r.Err, ErrBadEnvelope) || f.Undecodable() != 1 {
		t.Fatalf("damaged entry: %v, %d undecodable", r.Err, f.Undecodable())
	}
}

// tagCmd stands for an existing command that grew two fields in a later
// protocol: Hint, which an older agent may ignore, and Limit, which it may
// not. (The real commands have no tagged field yet.)
type tagCmd struct {
	At    time.Time `json:"at"`
	Name  string    `json:"name"`
	Hint  string    `json:"hint,omitempty" proto:"61,ignorable"`
	Limit int       `json:"limit,omitempty" proto:"62"`
	Inner *tagInner `json:"inner,omitempty"`
}

type tagInner struct {
	Note string `json:"note,omitempty" proto:"63,ignorable"`
}

func (*tagCmd) Type() CommandType { return CmdUpdateSettings }

func decodeTag(entry []byte, proto int) (Command, error) {
	return decodeEntry(entry, proto, func(CommandType) (func() Command, bool) {
		return func() Command { return new(tagCmd) }, true
	})
}

func TestTaggedFieldsNeedTheirProtocol(t *testing.T) {
	for _, c := range []struct {
		name       string
		cmd        *tagCmd
		need, full int
		legacy     bool
	}{
		{"no new field", &tagCmd{Name: "a"}, int(CmdUpdateSettings), int(CmdUpdateSettings), true},
		{"an ignorable field", &tagCmd{Name: "a", Hint: "h"}, ProtocolFieldTags, 61, false},
		{"a field that matters", &tagCmd{Name: "a", Limit: 3}, 62, 62, false},
		{"both", &tagCmd{Name: "a", Hint: "h", Limit: 3}, 62, 62, false},
		{"a nested ignorable field", &tagCmd{Name: "a", Inner: &tagInner{Note: "n"}}, ProtocolFieldTags, 63, false},
	} {
		need, full, tagged := protocols(c.cmd)
		if need != c.need || full != c.full || tagged == c.legacy {
			t.Errorf("%s: need %d full %d tagged %v; want %d %d %v", c.name, need, full, tagged, c.need, c.full, !c.legacy)
		}
		if NeededProtocol(c.cmd) != c.need {
			t.Errorf("%s: NeededProtocol = %d", c.name, NeededProtocol(c.cmd))
		}
	}
}

// The replica decoder: a field the release does not know is accepted only
// when the entry says it may be ignored, and then it is dropped, as that
// release would; otherwise the entry is refused.
func TestOldReplicaDecodesTaggedFieldsAsItsReleaseWould(t *testing.T) {
	enc := func(c *tagCmd) []byte {
		t.Helper()
		b, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hint := enc(&tagCmd{At: t0, Name: "a", Hint: "h", Inner: &tagInner{Note: "n"}})
	limit := enc(&tagCmd{At: t0, Name: "a", Hint: "h", Limit: 3})

	// A release that knows every field decodes them all.
	got, err := decodeTag(hint, 63)
	if err != nil || got.(*tagCmd).Hint != "h" || got.(*tagCmd).Inner.Note != "n" {
		t.Fatalf("at 63: %+v, %v", got, err)
	}
	// One between: ignorable fields it does not know are dropped.
	got, err = decodeTag(hint, 61)
	if err != nil || got.(*tagCmd).Hint != "h" || got.(*tagCmd).Inner.Note != "" || got.(*tagCmd).Name != "a" {
		t.Fatalf("at 61: %+v, %v; want the hint kept and the note dropped", got, err)
	}
	got, err = decodeTag(hint, ProtocolFieldTags)
	if err != nil || got.(*tagCmd).Hint != "" || got.(*tagCmd).Name != "a" {
		t.Fatalf("at %d: %+v, %v; want both ignorable fields dropped", ProtocolFieldTags, got, err)
	}
	// A field that matters, unknown: refused.
	if _, err := decodeTag(limit, 61); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "needs protocol 62") {
		t.Fatalf("limit at 61: %v, want ErrProtocol naming 62", err)
	}
	if got, err := decodeTag(limit, 62); err != nil || got.(*tagCmd).Limit != 3 {
		t.Fatalf("limit at 62: %+v, %v", got, err)
	}
	// A release from before field tags does not read envelope 2 at all.
	for _, e := range [][]byte{hint, limit} {
		if _, err := decodeTag(e, LegacyProtocol); !errors.Is(err, ErrBadEnvelope) {
			t.Fatalf("legacy replica: %v, want ErrBadEnvelope", err)
		}
	}
	// Without the entry's permission an unknown field is refused, as
	// DisallowUnknownFields always did: a strict entry with a tagged field
	// set, decoded by a release that does not know it.
	strict := append([]byte{envelopeVersion, byte(CmdUpdateSettings)}, hint[6:]...)
	if _, err := decodeTag(strict, LegacyProtocol); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Fatalf("strict entry with an unknown field: %v", err)
	}
	// Damaged headers.
	if _, err := decodeTag(hint[:5], 63); !errors.Is(err, ErrBadEnvelope) {
		t.Fatalf("short envelope 2: %v", err)
	}
}

// testHash is a well-formed bcrypt hash for InitCluster.
const testHash = "$2a$10$abcdefghijklmnopqrstuuvwxyzabcdefghijklmnopqrstuvwxyz12"

func stateJSON(t *testing.T, f *FSM) string {
	t.Helper()
	var out string
	f.View(func(s *State) {
		doc, err := encodeSnapshot(s)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		out = string(b)
	})
	return out
}
