package scripts

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestRenderUserDataGolden(t *testing.T) {
	got, err := RenderUserData(UserData{NodeID: "node-4", ClusterName: "demo", Env: []string{
		"DROPMESH_NODE_ID=node-4", "DROPMESH_JOIN=10.110.0.2:7946,10.110.0.3:7946",
		"DROPMESH_CLUSTER_SECRET=0f0f", "DROPMESH_REGION=nyc3",
	}})
	if err != nil {
		t.Fatal(err)
	}
	golden := "testdata/cloud-init.golden"
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("user data differs from %s (run with -update):\n%s", golden, got)
	}
	env, err := ParseUserData(got)
	if err != nil {
		t.Fatal(err)
	}
	if env["DROPMESH_NODE_ID"] != "node-4" || env["DROPMESH_JOIN"] != "10.110.0.2:7946,10.110.0.3:7946" || len(env) != 4 {
		t.Fatalf("parsed %v", env)
	}
}

func TestRenderUserDataRefusesUnsafeValues(t *testing.T) {
	for _, line := range []string{"A=b c", "A=$(reboot)", "A=`x`", "a=b", "A=\"q\"", "A=x;y", "A=x\ny"} {
		if _, err := RenderUserData(UserData{Env: []string{line}}); err == nil {
			t.Fatalf("%q accepted", line)
		}
	}
	if _, err := ParseUserData("#cloud-config\nruncmd: []\n"); err == nil {
		t.Fatal("user data without agent.env parsed")
	}
}
