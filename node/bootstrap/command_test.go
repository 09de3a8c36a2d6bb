package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/cloudops"
)

func writeToken(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Bad input gets a clear error before anything is made: the state dir is
// not even created.
func TestCommandRefusesBadInputAndMakesNothing(t *testing.T) {
	good := writeToken(t, "dop_v1_0123456789abcdef\n")
	bin := fakeBinary(t)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no tokens", []string{"--domain", "example.com", "--region", "nyc3"}, "--do-token-file: required"},
		{"missing token file", []string{"--do-token-file", "/nonexistent", "--cf-token-file", good, "--domain", "example.com", "--region", "nyc3"}, "no such file"},
		{"two tokens in a file", []string{"--do-token-file", writeToken(t, "a b"), "--cf-token-file", good, "--domain", "example.com", "--region", "nyc3"}, "exactly one token"},
		{"empty token", []string{"--do-token-file", writeToken(t, "\n"), "--cf-token-file", good, "--domain", "example.com", "--region", "nyc3"}, "exactly one token"},
		{"token with a quote", []string{"--do-token-file", writeToken(t, `abcdefgh"x`), "--cf-token-file", good, "--domain", "example.com", "--region", "nyc3"}, "does not hold one API token"},
		{"no domain", []string{"--do-token-file", good, "--cf-token-file", good, "--region", "nyc3"}, "--domain: required"},
		{"bad domain", []string{"--do-token-file", good, "--cf-token-file", good, "--domain", "exa mple.com", "--region", "nyc3"}, "--domain"},
		{"no region", []string{"--do-token-file", good, "--cf-token-file", good, "--domain", "example.com"}, "--region: required"},
		{"bad region", []string{"--do-token-file", good, "--cf-token-file", good, "--domain", "example.com", "--region", "new-york"}, "--region"},
		{"region twice", []string{"--do-token-file", good, "--cf-token-file", good, "--domain", "example.com", "--region", "nyc3,nyc3"}, "given twice"},
		{"bad name", []string{"--do-token-file", good, "--cf-token-file", good, "--domain", "example.com", "--region", "nyc3", "--name", "My_Cluster"}, "--name"},
		{"bad size", []string{"--do-token-file", good, "--cf-token-file", good, "--domain", "example.com", "--region", "nyc3", "--size", "HUGE;"}, "--size"},
		{"no nodes", []string{"--do-token-file", good, "--cf-token-file", good, "--domain", "example.com", "--region", "nyc3", "--nodes", "-1"}, "--nodes -1"},
		{"binary not Linux", []string{"--do-token-file", good, "--cf-token-file", good, "--domain", "example.com", "--region", "nyc3", "--binary", good}, "not a Linux executable"},
		{"arguments", []string{"extra"}, "unknown command"},
	} {
		t.Run(c.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			args := append(c.args, "--state-dir", state)
			if !strings.Contains(strings.Join(c.args, " "), "--binary") {
				args = append(args, "--binary", bin)
			}
			cmd := Command("v1")
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs(args)
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("bootstrap %v: %v, want an error with %q", c.args, err, c.want)
			}
			if _, err := os.Stat(state); !os.IsNotExist(err) {
				t.Fatalf("bad input made the state dir (%v)", err)
			}
		})
	}
}

func TestSnapshotNameIsAValidName(t *testing.T) {
	sum := "0123456789abcdef"
	for version, want := range map[string]string{
		"v1.2.3":                 "dropmesh-base-v1.2.3-01234567",
		"V1.2.3+Dirty":           "dropmesh-base-v1.2.3-dirty-01234567",
		"":                       "dropmesh-base-dev-01234567",
		"..":                     "dropmesh-base-dev-01234567",
		strings.Repeat("x", 100): "dropmesh-base-" + strings.Repeat("x", 41) + "-01234567",
	} {
		if got := snapshotName(version, sum); got != want || len(got) > 64 {
			t.Errorf("snapshotName(%q) = %q, want %q", version, got, want)
		}
	}
}

// Outside a test, the API key only travels over HTTPS: the seed's public
// address (plain HTTP) only gets GET /ping.
func TestDefaultEndpointsKeepTheKeyOnHTTPS(t *testing.T) {
	o := Options{Domain: "example.com"}
	eps := o.endpoints(cloudops.Droplet{PublicIP: "203.0.113.5"})
	if len(eps) != 2 || eps[0].URL != "https://mesh.example.com" || !eps[0].Trusted ||
		eps[1].URL != "http://203.0.113.5" || eps[1].Host != "mesh.example.com" || eps[1].Trusted {
		t.Fatalf("endpoints %+v", eps)
	}
	c := &agentClient{hc: http.DefaultClient, endpoints: eps[1:], apiKey: "k"}
	if err := c.call(context.Background(), http.MethodGet, "/v1/cluster", nil, nil); !errors.Is(err, errNoTrustedEndpoint) {
		t.Fatalf("an authenticated call over plain HTTP: %v", err)
	}
}
