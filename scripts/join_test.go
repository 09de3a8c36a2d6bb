package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	testToken = "djt1.0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	testCAFP  = "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	// testSecret is a cluster secret, which join.sh no longer takes.
	testSecret = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

func TestJoinWritesTheConfigAndStartsTheAgent(t *testing.T) {
	h := newHost(t)
	bin := fakeDropmesh(t, "v1")
	out, code := h.run(t, "join.sh", testToken+"\n", "--join", "10.110.0.2:7946,10.110.0.3:7946", "--binary", bin,
		"--ca-fingerprint", strings.ToUpper(testCAFP[len("sha256:"):]),
		"--cluster-name", "demo", "--node-id", "web-1", "--advertise", "10.110.0.9", "--public-ip", "203.0.113.9", "--region", "nyc3")
	if code != 0 {
		t.Fatalf("join.sh: exit %d\n%s", code, out)
	}
	env := h.file(t, "etc/dropmesh/agent.env")
	for _, line := range []string{
		"DROPMESH_CLUSTER_NAME=demo", "DROPMESH_JOIN_TOKEN=" + testToken, "DROPMESH_CA_FINGERPRINT=" + testCAFP,
		"DROPMESH_JOIN=10.110.0.2:7946,10.110.0.3:7946", "DROPMESH_NODE_ID=web-1", "DROPMESH_ADVERTISE=10.110.0.9",
		"DROPMESH_PUBLIC_IP=203.0.113.9", "DROPMESH_REGION=nyc3",
	} {
		if !strings.Contains(env, "\n"+line+"\n") {
			t.Errorf("agent.env lacks %s:\n%s", line, env)
		}
	}
	if strings.Contains(env, "CLUSTER_SECRET") {
		t.Error("agent.env names a cluster secret")
	}
	if _, err := os.Stat(filepath.Join(h.Root, "etc/dropmesh/cluster-secret")); !os.IsNotExist(err) {
		t.Errorf("join.sh wrote a cluster secret file (%v)", err)
	}
	if m := h.mode(t, "etc/dropmesh/agent.env"); m != 0o600 {
		t.Errorf("/etc/dropmesh/agent.env has mode %v, want 0600", m)
	}
	if h.file(t, "etc/systemd/system/dropmesh-agent.service") != readFile(t, "systemd/dropmesh-agent.service") {
		t.Error("the agent unit was not installed")
	}
	// The host guard, as the base snapshot has it.
	if h.file(t, "usr/local/lib/dropmesh/metadata-guard") != readFile(t, "metadata-guard.sh") || h.mode(t, "usr/local/lib/dropmesh/metadata-guard") != 0o755 ||
		h.file(t, "etc/systemd/system/dropmesh-metadata-guard.service") != readFile(t, "systemd/dropmesh-metadata-guard.service") {
		t.Error("the host guard was not installed")
	}
	if h.file(t, "usr/local/bin/dropmesh") != readFile(t, bin) {
		t.Error("the binary was not installed")
	}
	log := h.standInLog(t)
	for _, want := range []string{"systemctl enable --quiet dropmesh-metadata-guard.service", "systemctl restart dropmesh-metadata-guard.service",
		"systemctl daemon-reload", "systemctl enable --quiet dropmesh-metadata.service dropmesh-agent.service",
		"systemctl restart dropmesh-metadata.service dropmesh-agent.service"} {
		if !strings.Contains(log, want+"\n") {
			t.Errorf("join did not run %q:\n%s", want, log)
		}
	}
	if strings.Index(log, "restart dropmesh-metadata-guard.service") > strings.Index(log, "restart dropmesh-metadata.service dropmesh-agent.service") {
		t.Errorf("the agent started before the host guard:\n%s", log)
	}

	// Again, with the token from a file: the same result (idempotent).
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("  "+testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = h.run(t, "join.sh", "", "--join", "10.110.0.2:7946", "--join-token-file", tokenFile, "--ca-fingerprint", testCAFP, "--no-start")
	if code != 0 {
		t.Fatalf("join.sh --join-token-file: exit %d\n%s", code, out)
	}
	if env := h.file(t, "etc/dropmesh/agent.env"); !strings.Contains(env, "DROPMESH_JOIN=10.110.0.2:7946\n") || strings.Contains(env, "DROPMESH_NODE_ID") ||
		!strings.Contains(env, "DROPMESH_JOIN_TOKEN="+testToken+"\n") {
		t.Errorf("agent.env after the second join:\n%s", env)
	}
}

func TestJoinRefusesBadInputAndChangesNothing(t *testing.T) {
	seedEnv := "DROPMESH_BOOTSTRAP=true\nDROPMESH_NODE_ID=node-1\n"
	for _, c := range []struct {
		name, stdin string
		args        []string
		seed        bool
		want        string
	}{
		{"token on the command line", testToken, []string{"--join", "10.0.0.2:7946", "--ca-fingerprint", testCAFP, "--join-token", testToken}, false, "never given on the command line"},
		{"token= on the command line", testToken, []string{"--join", "10.0.0.2:7946", "--ca-fingerprint", testCAFP, "--join-token=" + testToken}, false, "never given on the command line"},
		{"a cluster secret", testSecret, []string{"--join", "10.0.0.2:7946", "--secret-file", "/dev/stdin"}, false, "join token now, not the cluster secret"},
		{"short token", "abc123", []string{"--join", "10.0.0.2:7946", "--ca-fingerprint", testCAFP}, false, "16 to 512 characters"},
		{"token with shell code", "$(reboot)aaaaaaaaaaaaaaaa", []string{"--join", "10.0.0.2:7946", "--ca-fingerprint", testCAFP}, false, "16 to 512 characters"},
		{"no token", "", []string{"--join", "10.0.0.2:7946", "--ca-fingerprint", testCAFP}, false, "16 to 512 characters"},
		{"no CA fingerprint", testToken, []string{"--join", "10.0.0.2:7946"}, false, "--ca-fingerprint is required"},
		{"bad CA fingerprint", testToken, []string{"--join", "10.0.0.2:7946", "--ca-fingerprint", "sha256:abc"}, false, "64 hex digits"},
		{"no join", testToken, []string{"--ca-fingerprint", testCAFP}, false, "--join is required"},
		{"bad join", testToken, []string{"--join", "10.0.0.2;reboot:7946", "--ca-fingerprint", testCAFP}, false, "not HOST:PORT"},
		{"join without port", testToken, []string{"--join", "10.0.0.2", "--ca-fingerprint", testCAFP}, false, "not HOST:PORT"},
		{"bad node id", testToken, []string{"--join", "10.0.0.2:7946", "--ca-fingerprint", testCAFP, "--node-id", "Web_1"}, false, "--node-id"},
		{"bad advertise", testToken, []string{"--join", "10.0.0.2:7946", "--ca-fingerprint", testCAFP, "--advertise", "10.0.0.x"}, false, "--advertise"},
		{"bad cluster name", testToken, []string{"--join", "10.0.0.2:7946", "--ca-fingerprint", testCAFP, "--cluster-name", "$(id)"}, false, "--cluster-name"},
		{"unknown flag", testToken, []string{"--join", "10.0.0.2:7946", "--frobnicate"}, false, "unknown argument"},
		{"a seed", testToken, []string{"--join", "10.0.0.2:7946", "--ca-fingerprint", testCAFP}, true, "cluster's seed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t)
			if err := os.MkdirAll(filepath.Join(h.Root, "usr/local/bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(h.Root, "usr/local/bin/dropmesh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			if c.seed {
				if err := os.MkdirAll(filepath.Join(h.Root, "etc/dropmesh"), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(h.Root, "etc/dropmesh/agent.env"), []byte(seedEnv), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before := h.tree(t)
			out, code := h.run(t, "join.sh", c.stdin, c.args...)
			if code == 0 || !strings.Contains(out, c.want) {
				t.Fatalf("join.sh %v: exit %d, want an error with %q:\n%s", c.args, code, c.want, out)
			}
			if after := h.tree(t); strings.Join(after, ",") != strings.Join(before, ",") {
				t.Fatalf("join.sh changed files: %v -> %v", before, after)
			}
			if c.seed && h.file(t, "etc/dropmesh/agent.env") != seedEnv {
				t.Fatal("the seed's agent.env changed")
			}
			if log := h.standInLog(t); log != "" {
				t.Fatalf("join.sh ran commands: %s", log)
			}
		})
	}
}

func TestJoinNeedsDocker(t *testing.T) {
	h := newHost(t)
	// A PATH with the tools join.sh uses, but no docker.
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"head", "tr", "grep", "mkdir", "chmod", "mktemp", "cat", "mv", "install", "dirname", "id", "sed", "systemctl"} {
		src := filepath.Join(h.Bin, tool)
		if _, err := os.Stat(src); err != nil {
			if src, err = exec.LookPath(tool); err != nil {
				t.Skipf("no %s", tool)
			}
		}
		if err := os.Symlink(src, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	out, code := h.runPath(t, "join.sh", testToken, bin, "--join", "10.0.0.2:7946", "--ca-fingerprint", testCAFP, "--binary", fakeDropmesh(t, "v1"))
	if code == 0 || !strings.Contains(out, "Docker is not installed") {
		t.Fatalf("join without docker: exit %d\n%s", code, out)
	}
	if tree := h.tree(t); len(tree) != 0 {
		t.Fatalf("join without docker changed files: %v", tree)
	}
}
