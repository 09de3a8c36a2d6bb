package localmode

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/bench/lincheck"
	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
)

// TestLinearizableReadsWhileTheLeaderIsPaused runs a local mesh (real
// agent processes) and a register workload on random nodes while the
// leader's process is paused (SIGSTOP) long enough for the others to
// elect a new leader, then resumed: the old leader must not answer from
// its old state, so the history of default reads and writes of one
// settings field must be linearizable.
func TestLinearizableReadsWhileTheLeaderIsPaused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node mesh and pauses its leader")
	}
	m := &mesh{t: t, bin: runtimetest.BuildStaticBinary(t, "github.com/dropmesh/dropmesh"), dir: t.TempDir()}
	t.Cleanup(func() { m.run(2*time.Minute, "local", "down", "--dir", m.dir) })
	m.up(3)
	env, err := os.ReadFile(filepath.Join(m.dir, EnvFile))
	if err != nil {
		t.Fatal(err)
	}
	var key string
	for _, line := range strings.Split(string(env), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "export DROPMESH_API_KEY="); ok {
			key = v
		}
	}
	caPEM, err := os.ReadFile(filepath.Join(m.dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	nodes := m.status()
	clients := map[string]*apiclient.Client{}
	for _, n := range nodes {
		cl, err := apiclient.New(apiclient.Config{Addrs: []string{n.API}, APIKey: key, CACert: caPEM, Timeout: 3 * time.Second, RetryFor: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		clients[n.ID] = cl
	}
	initial := "pause-init"
	if err := clients[nodes[0].ID].UpdateSettings(t.Context(), control.SettingsRequest{DropletSize: &initial}); err != nil {
		t.Fatal(err)
	}

	var h lincheck.History
	ctx, stop := context.WithTimeout(context.Background(), 20*time.Second)
	defer stop()
	var wg sync.WaitGroup
	for id := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(id), 7))
			for seq := 0; ctx.Err() == nil; seq++ {
				cl := clients[nodes[rng.IntN(len(nodes))].ID]
				octx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				start := time.Now()
				if rng.IntN(2) == 0 {
					v := fmt.Sprintf("p%d-%d", id, seq)
					err := cl.UpdateSettings(octx, control.SettingsRequest{DropletSize: &v})
					op := lincheck.Op{Client: id, Write: true, Value: v, Call: start, Return: time.Now()}
					switch code := apiclient.Code(err); {
					case err == nil:
						h.Add(op)
					case code == control.CodeNotLeader || code == control.CodeNoLeader || code == control.CodeInvalid:
					default:
						op.Unknown = true
						h.Add(op)
					}
				} else if s, err := cl.Settings(octx); err == nil {
					h.Add(lincheck.Op{Client: id, Value: s.DropletSize, Call: start, Return: time.Now()})
				}
				cancel()
			}
		}()
	}
	paused := 0
	for ctx.Err() == nil && paused < 3 {
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
		var leader NodeStatus
		for _, n := range m.status() {
			if n.Role == "leader" {
				leader = n
			}
		}
		if leader.PID == 0 {
			continue
		}
		if err := syscall.Kill(leader.PID, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		paused++
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
		if err := syscall.Kill(leader.PID, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		t.Logf("paused and resumed the leader %s", leader.ID)
	}
	wg.Wait()
	res := lincheck.Check(h.Ops(), initial, time.Minute)
	t.Logf("%d reads, %d writes, %d pauses: %s", res.Reads, res.Writes, paused, res.Verdict)
	if paused == 0 || res.Reads < 20 || res.Writes < 20 {
		t.Fatalf("a history too thin to mean anything: %d pauses, %+v", paused, res)
	}
	if !res.OK() {
		t.Fatalf("the history is %s, not linearizable (see %s)", res.Verdict, res.Visualization)
	}
}
