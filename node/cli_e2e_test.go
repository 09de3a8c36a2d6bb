package node

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/node/cli"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// runCLI runs the dropmesh CLI in this process against the given agents,
// verifying them with the cluster CA in caFile.
func runCLI(t *testing.T, caFile string, addrs []string, key string, args ...string) (string, int) {
	t.Helper()
	root := &cobra.Command{Use: "dropmesh", SilenceUsage: true, SilenceErrors: true}
	cli.AddCommands(root, "test")
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append(args, "--addr", strings.Join(addrs, ","), "--api-key", key, "--cacert", caFile))
	code := cli.Execute(root, &errOut)
	return out.String() + errOut.String(), code
}

func TestCLIAgainstAThreeNodeCluster(t *testing.T) {
	c := startCluster(t, 3, nil)
	leader := c.leader()
	waitFor(t, 20*time.Second, "three voters", func() bool {
		return allVoters(voters(t, leader.agent), "node-1", "node-2", "node-3")
	})
	var follower *testNode
	for _, n := range c.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	key := leader.agent.Keys().APIKey
	ca := c.caFile()
	// Through a follower only: reads from its replica, writes forwarded to the leader.
	addrs := []string{follower.agent.APIAddr()}

	out, code := runCLI(t, ca, addrs, key, "status", "--json")
	if code != 0 {
		t.Fatalf("status: %d %s", code, out)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	if !strings.Contains(out, leader.cfg.NodeID) {
		t.Fatalf("status does not name the leader:\n%s", out)
	}

	if out, code := runCLI(t, ca, addrs, key, "workspaces", "create", "acme"); code != 0 {
		t.Fatalf("workspaces create: %d %s", code, out)
	}
	c.waitState(leader, 5*time.Second, "the workspace on the leader", func(s *raftfsm.State) bool { return s.WorkspaceByName("acme") != nil })

	spec := "project: shop\nenv: prod\nservice: web\nimage: nginx:1.27\nport: 80\nhosts: [shop.example.test]\n"
	dir := t.TempDir()
	if err := writeFile(dir+"/web.yaml", spec); err != nil {
		t.Fatal(err)
	}
	if out, code := runCLI(t, ca, addrs, key, "deploy", "-f", dir+"/web.yaml", "--detach"); code != 0 {
		t.Fatalf("deploy --detach: %d %s", code, out)
	}
	// The follower's replica follows the leader within a heartbeat.
	waitFor(t, 5*time.Second, "the service in `services --json`", func() bool {
		out, code = runCLI(t, ca, addrs, key, "services", "--json")
		return code == 0 && strings.Contains(out, "shop")
	})

	// Bad input: a clear message, a non-zero exit, nothing changed.
	before := leader.agent.fsm.Index()
	if err := writeFile(dir+"/bad.yaml", "project: shop\nservice: we;b\nimage: x\nport: 80\n"); err != nil {
		t.Fatal(err)
	}
	out, code = runCLI(t, ca, addrs, key, "deploy", "-f", dir+"/bad.yaml", "--detach")
	if code == 0 || !strings.Contains(out, "service") {
		t.Fatalf("bad deploy: %d %s", code, out)
	}
	if after := leader.agent.fsm.Index(); after != before {
		t.Fatalf("a refused deploy moved the state from %d to %d", before, after)
	}
	if out, code := runCLI(t, ca, addrs, key, "undeploy", "shop/prod/web"); code != 0 {
		t.Fatalf("undeploy: %d %s", code, out)
	}
	if out, code := runCLI(t, ca, addrs, "wrong-key", "status"); code == 0 || !strings.Contains(strings.ToLower(out), "api key") {
		t.Fatalf("wrong key: %d %s", code, out)
	}
}
