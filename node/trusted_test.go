package node

import (
	"net/netip"
	"strings"
	"testing"
)

func TestTrustedNets(t *testing.T) {
	nets, err := parseTrustedNets(" 10.110.0.5/20, 127.0.0.0/8,")
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) != 2 || nets[0] != netip.MustParsePrefix("10.110.0.0/20") || nets[1] != netip.MustParsePrefix("127.0.0.0/8") {
		t.Fatalf("parsed %v", nets)
	}
	for _, bad := range []string{"10.110.0.0", "10.110.0.0/33", "vpc", "10.0.0.0/8;rm"} {
		if _, err := parseTrustedNets(bad); err == nil || !strings.Contains(err.Error(), "--trusted-nets") {
			t.Errorf("%q: %v, want a refusal naming the flag", bad, err)
		}
	}

	// Skipping the key needs the networks it may be skipped from.
	cfg := DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.BindIP, cfg.AdvertiseIP = "node-1", t.TempDir(), "127.0.0.1", "127.0.0.1"
	cfg.RequireAuthAlways = false
	if err := cfg.complete(); err == nil || !strings.Contains(err.Error(), "trusted-nets") {
		t.Fatalf("require-auth-always=false without networks: %v", err)
	}
	cfg.TrustedNets = nets
	if err := cfg.complete(); err != nil {
		t.Fatalf("with networks: %v", err)
	}
}
