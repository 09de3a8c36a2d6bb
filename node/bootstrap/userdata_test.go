package bootstrap

import (
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/node"
	"github.com/dropmesh/dropmesh/node/bootclaim"
	"github.com/dropmesh/dropmesh/scripts"
)

func testSeedParams(t *testing.T) seedParams {
	t.Helper()
	tok, err := bootclaim.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	return seedParams{ClusterName: "demo", ClusterID: "0123456789abcdef", BootstrapToken: tok,
		Domain: "example.com", Nodes: 3, Snapshot: "dropmesh-base-v1-12345678", Region: "nyc3", Size: "s-1vcpu-2gb"}
}

func TestSeedUserDataStartsTheSeed(t *testing.T) {
	p := testSeedParams(t)
	ud, err := seedUserData(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ud, "#cloud-config\n") {
		t.Fatalf("user data does not start with #cloud-config:\n%s", ud)
	}
	env, err := scripts.ParseUserData(ud)
	if err != nil {
		t.Fatal(err)
	}
	if len(env) != len(seedEnv(p)) || env["DROPMESH_BOOTSTRAP"] != "true" || env["DROPMESH_BOOTSTRAP_TOKEN"] != p.BootstrapToken {
		t.Fatalf("agent.env: %v", env)
	}
	if _, ok := env["DROPMESH_DO_BASE_URL"]; ok {
		t.Fatal("a base URL without a fake")
	}
	files, err := userDataFiles(ud)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("write_files: %q; want agent.env alone", files)
	}
}

func TestSeedUserDataRefusesUnsafeValues(t *testing.T) {
	for name, mut := range map[string]func(*seedParams){
		"short token":              func(p *seedParams) { p.BootstrapToken = "abc" },
		"token with shell code":    func(p *seedParams) { p.BootstrapToken = "$(reboot)" + p.BootstrapToken[9:] },
		"base URL with shell code": func(p *seedParams) { p.DOBaseURL = "http://x/$(id)" },
		"domain with a space":      func(p *seedParams) { p.Domain = "a b" },
	} {
		p := testSeedParams(t)
		mut(&p)
		if ud, err := seedUserData(p); err == nil {
			t.Errorf("%s: accepted:\n%s", name, ud)
		}
	}
}

// Every setting the seed's user data gives is an agent flag (DROPMESH_<FLAG>),
// or the agent would silently ignore it.
func TestSeedEnvNamesAreAgentFlags(t *testing.T) {
	p := testSeedParams(t)
	p.DOBaseURL, p.CFBaseURL = "http://127.0.0.1:1", "http://127.0.0.1:1/client/v4/"
	cmd := node.AgentCommand("test", node.Options{})[0]
	for _, line := range seedEnv(p) {
		name, _, _ := strings.Cut(line, "=")
		flag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "DROPMESH_"), "_", "-"))
		if cmd.Flags().Lookup(flag) == nil {
			t.Errorf("%s is no agent flag (--%s)", name, flag)
		}
	}
}
