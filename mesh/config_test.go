package mesh

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name  string
		tweak func(*Config)
		want  error
	}{
		{"no node id", func(c *Config) { c.NodeID = "" }, ErrInvalidConfig},
		{"bad node id", func(c *Config) { c.NodeID = "Node_1" }, ErrInvalidConfig},
		{"meta id differs", func(c *Config) { c.Meta.ID = "other" }, ErrInvalidConfig},
		{"invalid meta", func(c *Config) { c.Meta.Raft = "no-port" }, ErrInvalidMeta},
		{"oversized meta", func(c *Config) {
			c.Meta.API, c.Meta.UI, c.Meta.Edge = longHost(200)+":1", longHost(200)+":2", longHost(200)+":3"
		}, ErrMetaTooLarge},
		{"bad bind address", func(c *Config) { c.BindAddr = "localhost" }, ErrInvalidConfig},
		{"bad bind port", func(c *Config) { c.BindPort = 70000 }, ErrInvalidConfig},
		{"bad advertise address", func(c *Config) { c.AdvertiseAddr = "x" }, ErrInvalidConfig},
		{"no cluster name", func(c *Config) { c.ClusterName = "" }, ErrInvalidConfig},
		{"long cluster name", func(c *Config) { c.ClusterName = strings.Repeat("c", 256) }, ErrInvalidConfig},
		{"no key", func(c *Config) { c.Keys = nil }, ErrInvalidConfig},
		{"short key", func(c *Config) { c.Keys = [][]byte{make([]byte, 16)} }, ErrInvalidConfig},
		{"zero probe interval", func(c *Config) { c.ProbeInterval = 0 }, ErrInvalidConfig},
		{"probe timeout not below interval", func(c *Config) { c.ProbeTimeout = c.ProbeInterval }, ErrInvalidConfig},
		{"negative push/pull", func(c *Config) { c.PushPullInterval = -time.Second }, ErrInvalidConfig},
		{"zero suspicion mult", func(c *Config) { c.SuspicionMult = 0 }, ErrInvalidConfig},
		{"zero event buffer", func(c *Config) { c.EventBuffer = 0 }, ErrInvalidConfig},
		{"backoff max below backoff", func(c *Config) { c.JoinBackoffMax = c.JoinBackoff / 2 }, ErrInvalidConfig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t, "n1", nodeIP(8, 1))
			tc.tweak(&c)
			m, err := New(c)
			if err == nil {
				_ = m.Shutdown()
				t.Fatal("New accepted the config")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("New = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDefaultConfigValid(t *testing.T) {
	c := DefaultConfig()
	c.NodeID, c.Keys = "n1", [][]byte{testKey(1)}
	if err := c.validate(); err != nil {
		t.Fatalf("DefaultConfig with id and key: %v", err)
	}
	if c.Meta.ID != "n1" {
		t.Errorf("Meta.ID not defaulted to the node id: %q", c.Meta.ID)
	}
}

// TestNewBindsAndShutsDownCleanly: a Mesh binds its address, is alone and
// alive, and Shutdown releases the port and closes Events.
func TestNewBindsAndShutsDownCleanly(t *testing.T) {
	c := testConfig(t, "solo", nodeIP(8, 2))
	m := startMesh(t, c)
	if got := m.Members(); len(got) != 1 || got[0].ID != "solo" || got[0].Status != StatusAlive || got[0].Meta != c.Meta {
		t.Fatalf("Members = %+v", got)
	}
	if m.HealthScore() != 0 {
		t.Errorf("HealthScore = %d on a fresh node", m.HealthScore())
	}
	port := portOf(t, m.self)
	if err := m.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := m.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	for range m.Events() { // ends: Shutdown closed the channel
	}
	c.BindPort = port
	again := startMesh(t, c)
	if again.self != m.self {
		t.Errorf("restart bound %s, want %s", again.self, m.self)
	}
}
