package node

import (
	"strings"
	"testing"
	"time"
)

// TestDeadServerTimeoutFlag: --dead-server-timeout defaults to 10 minutes,
// is read from DROPMESH_DEAD_SERVER_TIMEOUT (a bare number is seconds), and
// a zero or negative value is refused.
func TestDeadServerTimeoutFlag(t *testing.T) {
	f := AgentCommand("test", Options{})[0].Flags()
	fl := f.Lookup("dead-server-timeout")
	if fl == nil {
		t.Fatal("no --dead-server-timeout flag")
	}
	if fl.DefValue != (10 * time.Minute).String() {
		t.Errorf("default %s, want 10m0s", fl.DefValue)
	}
	env := map[string]string{"DROPMESH_DEAD_SERVER_TIMEOUT": "90"}
	if err := applyEnv(f, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if got := fl.Value.String(); got != "1m30s" {
		t.Errorf("from the environment: %s, want 1m30s", got)
	}
	env["DROPMESH_DEAD_SERVER_TIMEOUT"] = "soon"
	fresh := AgentCommand("test", Options{})[0].Flags()
	if err := applyEnv(fresh, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "DROPMESH_DEAD_SERVER_TIMEOUT") {
		t.Errorf("bad value: err = %v, want one naming DROPMESH_DEAD_SERVER_TIMEOUT", err)
	}

	for _, d := range []time.Duration{0, -time.Minute} {
		cfg := DefaultConfig()
		cfg.BindIP, cfg.DataDir = "127.0.0.1", t.TempDir()
		cfg.DeadServerTimeout = d
		if err := cfg.complete(); err == nil || !strings.Contains(err.Error(), "dead server timeout") {
			t.Errorf("dead server timeout %v: err = %v, want a refusal", d, err)
		}
	}
	cfg := DefaultConfig()
	cfg.BindIP, cfg.DataDir = "127.0.0.1", t.TempDir()
	if err := cfg.complete(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
}
