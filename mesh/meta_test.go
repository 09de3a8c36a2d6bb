package mesh

import (
	"errors"
	"strings"
	"testing"
)

func TestNodeMetaValidate(t *testing.T) {
	good := NodeMeta{ID: "node-1", DropletID: 42, Region: "nyc3", PublicIP: "203.0.113.7", PrivateIP: "10.0.0.7",
		API: "10.0.0.7:9999", UI: "10.0.0.7:8080", Raft: "10.0.0.7:7947", Edge: "[2001:db8::1]:443", Version: "v1.2.3-4-gabc", Proto: 12, Keys: "0123456789ab,ba9876543210"}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid meta refused: %v", err)
	}
	b, err := encodeMeta(good)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeMeta(b)
	if err != nil || back != good {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
	bad := map[string]func(*NodeMeta){
		"empty id":        func(m *NodeMeta) { m.ID = "" },
		"upper id":        func(m *NodeMeta) { m.ID = "Node" },
		"negative drop":   func(m *NodeMeta) { m.DropletID = -1 },
		"region":          func(m *NodeMeta) { m.Region = "NYC 3" },
		"public ip":       func(m *NodeMeta) { m.PublicIP = "203.0.113" },
		"private ip":      func(m *NodeMeta) { m.PrivateIP = "x" },
		"api no port":     func(m *NodeMeta) { m.API = "10.0.0.7" },
		"raft port 0":     func(m *NodeMeta) { m.Raft = "10.0.0.7:0" },
		"edge port range": func(m *NodeMeta) { m.Edge = "10.0.0.7:65536" },
		"ui shell chars":  func(m *NodeMeta) { m.UI = "$(reboot):80" },
		"version":         func(m *NodeMeta) { m.Version = "v1 ; rm" },
		"negative proto":  func(m *NodeMeta) { m.Proto = -1 },
		"key id":          func(m *NodeMeta) { m.Keys = "0123456789ab,XYZ" },
		"empty key id":    func(m *NodeMeta) { m.Keys = "0123456789ab," },
		"too many keys":   func(m *NodeMeta) { m.Keys = strings.TrimSuffix(strings.Repeat("0123456789ab,", 9), ",") },
	}
	for name, f := range bad {
		m := good
		f(&m)
		if err := m.Validate(); !errors.Is(err, ErrInvalidMeta) {
			t.Errorf("%s: Validate = %v, want ErrInvalidMeta", name, err)
		}
	}
}

func TestMetaSizeLimit(t *testing.T) {
	m := NodeMeta{ID: strings.Repeat("a", 63), API: longHost(250) + ":1", Raft: longHost(250) + ":2"}
	if _, err := encodeMeta(m); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("encodeMeta(oversized) = %v, want ErrMetaTooLarge", err)
	}
	if _, err := decodeMeta([]byte(`{"id":"` + strings.Repeat("a", MaxMetaSize) + `"}`)); !errors.Is(err, ErrInvalidMeta) {
		t.Fatalf("decodeMeta(oversized) = %v", err)
	}
}

// FuzzDecodeMeta: gossip metadata is untrusted; decoding never panics, and
// whatever it accepts validates and re-encodes within the size limit.
func FuzzDecodeMeta(f *testing.F) {
	for _, s := range []string{
		`{"id":"n1"}`, `{"id":"n1","raft":"10.0.0.1:7947","proto":3}`, ``, `null`, `[]`, `{"id":1}`,
		`{"id":"n1"}garbage`, `{"id":"n1","droplet":-5}`, "\x00\xff", `{"id":"n1","api":"[::1]:80"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidMeta) {
				t.Fatalf("error %v does not wrap ErrInvalidMeta", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted meta does not validate: %v", err)
		}
		if _, err := encodeMeta(m); err != nil {
			t.Fatalf("accepted meta does not re-encode: %v", err)
		}
	})
}
