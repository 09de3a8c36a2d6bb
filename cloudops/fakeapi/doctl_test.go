package fakeapi

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/godo"
)

// doctlInstall is how to get DigitalOcean's CLI, for the skip message.
const doctlInstall = "go install github.com/digitalocean/doctl/cmd/doctl@latest"

// seedCloud gives the fake one of everything doctl lists: a droplet, a
// firewall on its tag, a snapshot and (with the droplet) the default VPC.
func seedCloud(t *testing.T, c *godo.Client) godo.Droplet {
	t.Helper()
	d := createDroplet(t, c, "node-1")
	if _, _, err := c.Firewalls.Create(ctx(t), &godo.FirewallRequest{Name: "c1-firewall", Tags: []string{"c1"},
		InboundRules:  []godo.InboundRule{{Protocol: "tcp", PortRange: "9999", Sources: &godo.Sources{Tags: []string{"c1"}}}},
		OutboundRules: []godo.OutboundRule{{Protocol: "tcp", PortRange: "all", Destinations: &godo.Destinations{Addresses: []string{"0.0.0.0/0"}}}}}); err != nil {
		t.Fatal(err)
	}
	a, _, err := c.DropletActions.Snapshot(ctx(t), d.ID, "base-1")
	if err != nil {
		t.Fatal(err)
	}
	waitAction(t, c, a.ID)
	return d
}

// TestWhatDoctlReads makes, with godo (which doctl is built on), the calls
// behind the doctl commands of TestDoctl, so they are covered where doctl
// is not installed.
func TestWhatDoctlReads(t *testing.T) {
	_, url := start(t, Options{ActionDelay: 20 * time.Millisecond})
	c := doClient(t, url, DefaultToken)
	d := seedCloud(t, c)
	all := &godo.ListOptions{Page: 1, PerPage: 200} // doctl asks for 200 a page
	if ds, _, err := c.Droplets.List(ctx(t), all); err != nil || len(ds) != 1 || ds[0].Name != "node-1" {
		t.Fatalf("droplet list: %+v %v", ds, err)
	}
	if a, _, err := c.Account.Get(ctx(t)); err != nil || a.UUID == "" {
		t.Fatalf("account get: %+v %v", a, err)
	}
	if rs, _, err := c.Regions.List(ctx(t), all); err != nil || len(rs) == 0 {
		t.Fatalf("region list: %v", err)
	}
	if ss, _, err := c.Sizes.List(ctx(t), all); err != nil || len(ss) == 0 {
		t.Fatalf("size list: %v", err)
	}
	if fs, _, err := c.Firewalls.List(ctx(t), all); err != nil || len(fs) != 1 || fs[0].Name != "c1-firewall" {
		t.Fatalf("firewall list: %+v %v", fs, err)
	}
	if ss, _, err := c.Snapshots.List(ctx(t), all); err != nil || len(ss) != 1 || ss[0].Name != "base-1" {
		t.Fatalf("snapshot list: %+v %v", ss, err)
	}
	if vs, _, err := c.VPCs.List(ctx(t), all); err != nil || len(vs) != 1 || !vs[0].Default {
		t.Fatalf("vpcs list: %+v %v", vs, err)
	}
	a, _, err := c.DropletActions.Reboot(ctx(t), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	// --wait polls the droplet's action until it is done.
	waitFor(t, 5*time.Second, "the reboot", func() bool {
		got, _, err := c.DropletActions.Get(ctx(t), d.ID, a.ID)
		return err == nil && got.Status == "completed"
	})
}

// TestDoctl runs DigitalOcean's own CLI against the fake: the way to look
// at local mode's cloud. It is gated on a doctl binary being present (the
// issue asks for exactly that): doctl is neither a Debian package nor served
// by the Go module proxy this project's machines reach, so no install step
// can bring it. TestWhatDoctlReads makes the same calls with godo, so the
// answers doctl reads are checked on every run.
func TestDoctl(t *testing.T) {
	bin, err := exec.LookPath("doctl")
	if err != nil {
		t.Skipf("doctl is not on PATH (it cannot be installed on this project's machines); to run this test elsewhere: %s", doctlInstall)
	}
	_, url := start(t, Options{ActionDelay: 20 * time.Millisecond})
	c := doClient(t, url, DefaultToken)
	d := seedCloud(t, c)
	home := t.TempDir()
	cfg := filepath.Join(home, "doctl.yaml")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doctl := func(args ...string) []map[string]any {
		t.Helper()
		full := append([]string{"--api-url", url, "--access-token", DefaultToken, "--config", cfg, "--output", "json"}, args...)
		cmd := exec.CommandContext(ctx(t), bin, full...)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home)
		out, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("doctl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		// Lists are JSON arrays; "account get" is one object.
		var list []map[string]any
		if json.Unmarshal(out, &list) == nil {
			return list
		}
		var one map[string]any
		if err := json.Unmarshal(out, &one); err != nil {
			t.Fatalf("doctl %s: not JSON: %v\n%s", strings.Join(args, " "), err, out)
		}
		return []map[string]any{one}
	}
	names := func(items []map[string]any, key string) []string {
		var out []string
		for _, it := range items {
			out = append(out, stringOf(it[key]))
		}
		return out
	}
	if got := names(doctl("compute", "droplet", "list"), "name"); !slices.Equal(got, []string{"node-1"}) {
		t.Errorf("droplet list: %v", got)
	}
	if got := doctl("account", "get"); len(got) != 1 || got[0]["uuid"] != accountUUID {
		t.Errorf("account get: %v", got)
	}
	if got := names(doctl("compute", "region", "list"), "slug"); !slices.Contains(got, "nyc3") {
		t.Errorf("region list: %v", got)
	}
	if got := names(doctl("compute", "size", "list"), "slug"); !slices.Contains(got, "s-1vcpu-2gb") {
		t.Errorf("size list: %v", got)
	}
	if got := names(doctl("compute", "firewall", "list"), "name"); !slices.Equal(got, []string{"c1-firewall"}) {
		t.Errorf("firewall list: %v", got)
	}
	if got := names(doctl("compute", "snapshot", "list"), "name"); !slices.Equal(got, []string{"base-1"}) {
		t.Errorf("snapshot list: %v", got)
	}
	if got := doctl("vpcs", "list"); len(got) != 1 || got[0]["default"] != true {
		t.Errorf("vpcs list: %v", got)
	}
	acts := doctl("compute", "droplet-action", "reboot", strconv.Itoa(d.ID), "--wait")
	if len(acts) != 1 || acts[0]["status"] != "completed" || acts[0]["type"] != "reboot" {
		t.Errorf("droplet-action reboot --wait: %v", acts)
	}
}

// stringOf renders a decoded JSON value for comparisons.
func stringOf(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}
