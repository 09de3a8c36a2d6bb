package bootstrap

import (
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/node"
	"github.com/dropmesh/dropmesh/scripts"
)

func testSeedParams(t *testing.T) seedParams {
	t.Helper()
	s, err := node.NewClusterSecret()
	if err != nil {
		t.Fatal(err)
	}
	return seedParams{ClusterName: "demo", ClusterID: "0123456789abcdef", Secret: s, DOToken: "dop_v1_abc", CFToken: "cf_tok",
		Domain: "example.com", Nodes: 3, Snapshot: "dropmesh-base-v1-12345678", Region: "nyc3", Size: "s-1vcpu-2gb",
		AdminPassword: "pw23456789abcdefghjk"}
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
	if len(env) != len(seedEnv(p)) || env["DROPMESH_BOOTSTRAP"] != "true" || env["DROPMESH_CLUSTER_SECRET"] != p.Secret.String() ||
		env["DROPMESH_ADMIN_PASSWORD_FILE"] != SeedAdminPasswordPath {
		t.Fatalf("agent.env: %v", env)
	}
	if _, ok := env["DROPMESH_DO_BASE_URL"]; ok {
		t.Fatal("a base URL without a fake")
	}
	files, err := userDataFiles(ud)
	if err != nil {
		t.Fatal(err)
	}
	if files[SeedAdminPasswordPath] != p.AdminPassword+"\n" || len(files) != 2 {
		t.Fatalf("write_files: %q", files)
	}
	if !strings.Contains(ud, "permissions: \"0600\"\n    content: |\n      "+p.AdminPassword) {
		t.Fatalf("the password file is not private:\n%s", ud)
	}
}

func TestSeedUserDataRefusesUnsafeValues(t *testing.T) {
	for name, mut := range map[string]func(*seedParams){
		"token with a space":       func(p *seedParams) { p.DOToken = "dop v1" },
		"token with a quote":       func(p *seedParams) { p.CFToken = `x"; reboot; "` },
		"password with a newline":  func(p *seedParams) { p.AdminPassword = "a\nruncmd: [reboot]" },
		"empty password":           func(p *seedParams) { p.AdminPassword = "" },
		"base URL with shell code": func(p *seedParams) { p.DOBaseURL = "http://x/$(id)" },
	} {
		p := testSeedParams(t)
		mut(&p)
		if ud, err := seedUserData(p); err == nil {
			t.Errorf("%s: accepted:\n%s", name, ud)
		}
	}
	if _, err := addFile("#cloud-config\nruncmd: []\n", "/x", "y"); err == nil {
		t.Error("user data without write_files accepted a file")
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
