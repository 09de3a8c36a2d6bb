package mesh

import (
	"testing"
	"time"
)

// TestProbeRTTReported: with OnProbeRTT set, every answered direct probe
// is reported with the peer's id and a round trip within the probe timeout;
// without it, nothing is installed (the other tests run that way).
func TestProbeRTTReported(t *testing.T) {
	type probe struct {
		peer string
		rtt  time.Duration
	}
	got := make(chan probe, 64)
	c := startCluster(t, 13, 3, func(cfg *Config) {
		if cfg.NodeID == "n0" {
			cfg.OnProbeRTT = func(peer string, rtt time.Duration) {
				select {
				case got <- probe{peer, rtt}:
				default: // the test has seen enough
				}
			}
		}
	})
	if c.cfgs[0].memberlistConfig(nil, testLogger(t)).Ping == nil {
		t.Fatal("OnProbeRTT set but no ping delegate installed")
	}
	if c.cfgs[1].memberlistConfig(nil, testLogger(t)).Ping != nil {
		t.Fatal("ping delegate installed without OnProbeRTT")
	}
	peers := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for len(peers) < 2 {
		select {
		case p := <-got:
			if p.peer != "n1" && p.peer != "n2" {
				t.Fatalf("probe of %q reported, want n1 or n2", p.peer)
			}
			// memberlist only reports acks that came within ProbeTimeout;
			// allow for the timer's own scheduling on a busy machine.
			if p.rtt <= 0 || p.rtt > c.cfgs[0].ProbeInterval {
				t.Fatalf("probe of %s: rtt %v, want (0, %v]", p.peer, p.rtt, c.cfgs[0].ProbeInterval)
			}
			peers[p.peer] = true
		case <-deadline:
			t.Fatalf("after 10s, probes reported for %v only; want n1 and n2", peers)
		}
	}
}
