package node

import (
	"strings"
	"testing"
)

// TestCLIDeploySaysUnchanged: `dropmesh deploy -f` of a spec already
// deployed says so, exits 0 at once and commits nothing; a changed spec
// deploys a new generation.
func TestCLIDeploySaysUnchanged(t *testing.T) {
	c := startCluster(t, 1, nil)
	leader := c.leader()
	addrs, key := []string{leader.agent.APIAddr()}, leader.agent.Keys().APIKey
	ca := c.caFile()
	dir := t.TempDir()
	write := func(tag string) {
		spec := "project: shop\nenv: prod\nservice: web\nimage: nginx:" + tag + "\nport: 80\nsecrets: {SESSION_KEY: s3cret-s3cret}\n"
		if err := writeFile(dir+"/web.yaml", spec); err != nil {
			t.Fatal(err)
		}
	}
	write("1.27")
	if out, code := runCLI(t, ca, addrs, key, "deploy", "-f", dir+"/web.yaml", "--detach"); code != 0 || !strings.Contains(out, "deploying shop/prod/web generation 1") {
		t.Fatalf("first deploy: %d %s", code, out)
	}
	deploys := deployCount(leader.agent)
	// Without --detach: an unchanged spec has nothing to wait for.
	out, code := runCLI(t, ca, addrs, key, "deploy", "-f", dir+"/web.yaml")
	if code != 0 || !strings.Contains(out, "unchanged shop/prod/web generation 1") {
		t.Fatalf("second deploy: %d %s", code, out)
	}
	if got := deployCount(leader.agent); got != deploys {
		t.Fatalf("an unchanged deploy committed %d deploys", got-deploys)
	}
	write("1.28")
	if out, code := runCLI(t, ca, addrs, key, "deploy", "-f", dir+"/web.yaml", "--detach"); code != 0 || !strings.Contains(out, "deploying shop/prod/web generation 2") {
		t.Fatalf("changed deploy: %d %s", code, out)
	}
}
