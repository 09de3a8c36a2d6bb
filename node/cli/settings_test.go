package cli

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// settings returns the settings in the fake's state.
func (h *harness) settings() raftfsm.Settings {
	var out raftfsm.Settings
	h.fake.View(func(s *raftfsm.State) {
		out = s.Settings
		out.Regions = slices.Clone(s.Settings.Regions)
		if s.Settings.Backup.Spaces != nil {
			sp := *s.Settings.Backup.Spaces
			out.Backup.Spaces = &sp
		}
	})
	return out
}

// applySettings changes the fake's settings directly, for what the API
// cannot set (sealed values made elsewhere, the base snapshot).
func (h *harness) applySettings(c *raftfsm.UpdateSettings) {
	h.t.Helper()
	c.At = time.Now()
	if _, err := h.fake.Apply(c); err != nil {
		h.t.Fatal(err)
	}
}

// lastSettingsRequest is the last PATCH /v1/settings the fake was given.
func (h *harness) lastSettingsRequest() control.SettingsRequest {
	h.t.Helper()
	calls := h.fake.Calls()
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].Method == "UpdateSettings" {
			return calls[i].Arg.(control.SettingsRequest)
		}
	}
	h.t.Fatal("no UpdateSettings call")
	return control.SettingsRequest{}
}

// shown is the value `settings` prints for label ("" when it has no such line).
func shown(out, label string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, label+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// sealed makes a sealed value with a key of the test's own: the state only
// checks its shape.
func sealed(t *testing.T, plain string) raftfsm.Sealed {
	t.Helper()
	block, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	s, err := raftfsm.Seal(aead, "test", []byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSettingsShow(t *testing.T) {
	h := newHarness(t)
	domain, uiHost, size, snap := "example.com", "mesh.example.com", "s-2vcpu-4gb", "dropmesh-base-1.2.0-abc"
	desired, health, grace := 3, raftfsm.Duration(30*time.Second), raftfsm.Duration(5*time.Minute)
	cf := sealed(t, "cf-plain-token")
	h.applySettings(&raftfsm.UpdateSettings{Domain: &domain, UIHost: &uiHost, Regions: []string{"nyc3", "fra1"}, DropletSize: &size,
		BaseSnapshot: &snap, DesiredNodes: &desired, HealthInterval: &health, DeadNodeGrace: &grace, CFToken: &cf,
		Backup: &raftfsm.BackupSettings{Enabled: true, Keep: 24, Dir: "/var/lib/dropmesh/backups", Spaces: &raftfsm.SpacesTarget{
			Endpoint: "https://fra1.digitaloceanspaces.com", Region: "fra1", Bucket: "my-backups", Prefix: "dropmesh",
			AccessKey: "DO00ACCESS", SecretKey: sealed(t, "spaces-plain-secret")}}})

	r := h.run("settings")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("settings: %+v", r)
	}
	for label, want := range map[string]string{
		"domain": "example.com", "UI host": "mesh.example.com", "regions": "nyc3, fra1", "droplet size": "s-2vcpu-4gb",
		"base snapshot": "dropmesh-base-1.2.0-abc", "desired nodes": "3", "health interval": "30s", "dead-node grace": "5m0s",
		"DigitalOcean token": "not set", "Cloudflare token": "set",
		"backups": "enabled", "backup interval": "default (24h0m0s)", "backup keep": "24", "backup dir": "/var/lib/dropmesh/backups",
		"backup Spaces endpoint": "https://fra1.digitaloceanspaces.com", "backup Spaces region": "fra1",
		"backup Spaces bucket": "my-backups", "backup Spaces prefix": "dropmesh", "backup Spaces secret key": "set",
	} {
		if got := shown(r.stdout, label); got != want {
			t.Errorf("%s: shown as %q, want %q", label, got, want)
		}
	}
	if strings.Contains(r.stdout, "plain") || strings.Contains(r.stdout, "sealed:") {
		t.Errorf("settings shows a secret:\n%s", r.stdout)
	}

	r = h.run("settings", "--json")
	var st raftfsm.Settings
	if r.code != 0 || r.stderr != "" || json.Unmarshal([]byte(r.stdout), &st) != nil {
		t.Fatalf("settings --json: %+v", r)
	}
	if st.Domain != domain || !slices.Equal(st.Regions, []string{"nyc3", "fra1"}) || st.BaseSnapshot != snap || st.DeadNodeGrace != grace ||
		st.DOToken != "" || st.CFToken != "set" || st.Backup.Dir != "/var/lib/dropmesh/backups" || st.Backup.Spaces == nil ||
		st.Backup.Spaces.Bucket != "my-backups" || st.Backup.Spaces.SecretKey != "set" {
		t.Fatalf("settings --json: %+v", st)
	}
	if strings.Contains(r.stdout, "plain") || strings.Contains(r.stdout, "sealed:") {
		t.Errorf("settings --json shows a secret:\n%s", r.stdout)
	}
}

func TestSettingsSetChangesOnlyTheFlagsGiven(t *testing.T) {
	h := newHarness(t)
	size := "s-1vcpu-2gb"
	h.applySettings(&raftfsm.UpdateSettings{DropletSize: &size, Regions: []string{"nyc3"}})

	r := h.run("settings", "set", "--domain", "example.org", "--desired-nodes", "5", "--regions", "nyc3,fra1", "--health-interval", "30s",
		"--base-snapshot", "dropmesh-base-2", "--dead-node-grace", "10m")
	want := "domain: - → example.org\n" +
		"regions: nyc3 → nyc3, fra1\n" +
		"base snapshot: - → dropmesh-base-2\n" +
		"desired nodes: 0 → 5\n" +
		"health interval: default (each agent's own) → 30s\n" +
		"dead-node grace: default → 10m0s\n"
	if r.code != 0 || r.stderr != "" || r.stdout != want {
		t.Fatalf("set: code %d stdout %q stderr %q; want %q", r.code, r.stdout, r.stderr, want)
	}
	st := h.settings()
	if st.Domain != "example.org" || st.DesiredNodes != 5 || !slices.Equal(st.Regions, []string{"nyc3", "fra1"}) ||
		st.HealthInterval.D() != 30*time.Second || st.DropletSize != size || st.UIHost != "" || st.Backup != (raftfsm.BackupSettings{}) {
		t.Fatalf("settings after set: %+v", st)
	}
	// Only what was given went out.
	if req := h.lastSettingsRequest(); req.DropletSize != nil || req.UIHost != nil || req.Backup != nil || req.DOToken != nil {
		t.Fatalf("request: %+v", req)
	}

	// The same value again changes nothing, and says so.
	r = h.run("settings", "set", "--ui-host", "")
	if r.code != 0 || r.stdout != "nothing changed: the settings already had these values\n" {
		t.Fatalf("set to the same value: %+v", r)
	}
}

func TestSettingsBackupFlagsKeepTheOtherBackupFields(t *testing.T) {
	h := newHarness(t)
	r := h.run("settings", "set", "--backup-enabled", "--backup-interval", "1h", "--backup-keep", "24", "--backup-dir", "/var/lib/dropmesh/backups")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("enable backups: %+v", r)
	}
	for _, w := range []string{"backups: disabled → enabled\n", "backup interval: default (24h0m0s) → 1h0m0s\n", "backup keep: default (7) → 24\n",
		"backup dir: - → /var/lib/dropmesh/backups\n"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("enable backups: stdout %q lacks %q", r.stdout, w)
		}
	}
	want := raftfsm.BackupSettings{Enabled: true, Interval: raftfsm.Duration(time.Hour), Keep: 24, Dir: "/var/lib/dropmesh/backups"}
	if got := h.settings().Backup; got != want {
		t.Fatalf("backup settings %+v, want %+v", got, want)
	}

	r = h.run("settings", "set", "--backup-keep", "48")
	if r.code != 0 || r.stdout != "backup keep: 24 → 48\n" {
		t.Fatalf("change the keep: %+v", r)
	}
	want.Keep = 48
	if got := h.settings().Backup; got != want {
		t.Fatalf("after --backup-keep: %+v, want %+v", got, want)
	}

	r = h.run("settings", "set", "--backup-enabled=false")
	if r.code != 0 || r.stdout != "backups: enabled → disabled\n" {
		t.Fatalf("disable: %+v", r)
	}
	want.Enabled = false
	if got := h.settings().Backup; got != want {
		t.Fatalf("after --backup-enabled=false: %+v, want %+v", got, want)
	}
}

func TestSettingsBackupToSpaces(t *testing.T) {
	h := newHarness(t)
	secret := writeFile(t, t.TempDir(), "spaces-secret", "spaces-plain-secret\n")
	r := h.run("settings", "set", "--backup-enabled", "--backup-spaces-endpoint", "https://fra1.digitaloceanspaces.com",
		"--backup-spaces-region", "fra1", "--backup-spaces-bucket", "my-backups", "--backup-spaces-prefix", "dropmesh",
		"--backup-spaces-access-key", "DO00ACCESS", "--backup-spaces-secret-key-file", secret)
	if r.code != 0 || !strings.Contains(r.stdout, "backup Spaces bucket: - → my-backups\n") || !strings.Contains(r.stdout, "backup Spaces secret key: replaced\n") {
		t.Fatalf("set Spaces: %+v", r)
	}
	if strings.Contains(r.stdout+r.stderr, "plain") {
		t.Fatalf("set shows the secret: %+v", r)
	}
	// The secret goes to the leader in plain text, for it to seal.
	req := h.lastSettingsRequest()
	if req.SpacesSecret == nil || *req.SpacesSecret != "spaces-plain-secret" || req.Backup == nil || req.Backup.Spaces == nil ||
		*req.Backup.Spaces != (raftfsm.SpacesTarget{Endpoint: "https://fra1.digitaloceanspaces.com", Region: "fra1", Bucket: "my-backups", Prefix: "dropmesh", AccessKey: "DO00ACCESS"}) {
		t.Fatalf("request: %+v", req)
	}

	// With a secret key stored (the fake does not seal it: store one), the
	// backup settings cannot be written back without giving it again.
	sp := *h.settings().Backup.Spaces
	sp.SecretKey = sealed(t, "spaces-plain-secret")
	h.applySettings(&raftfsm.UpdateSettings{Backup: &raftfsm.BackupSettings{Enabled: true, Spaces: &sp}})
	before := h.fake.StateJSON()
	r = h.run("settings", "set", "--backup-keep", "3")
	if r.code != 2 || !strings.HasPrefix(r.stderr, `dropmesh: the backups go to the Spaces bucket "my-backups", whose secret key the API does not give back`) {
		t.Fatalf("keep without the secret: %+v", r)
	}
	if h.fake.StateJSON() != before {
		t.Fatal("a refused change changed the settings")
	}
	r = h.run("settings", "set", "--backup-keep", "3", "--backup-spaces-secret-key-file", secret)
	if r.code != 0 || !strings.Contains(r.stdout, "backup keep: default (7) → 3\n") {
		t.Fatalf("keep with the secret: %+v", r)
	}
	if req := h.lastSettingsRequest(); req.Backup.Keep != 3 || req.Backup.Spaces.Bucket != "my-backups" || !req.Backup.Enabled ||
		req.SpacesSecret == nil || *req.SpacesSecret != "spaces-plain-secret" {
		t.Fatalf("request: %+v", req)
	}
}

func TestSettingsTokenFromFile(t *testing.T) {
	h := newHarness(t)
	file := writeFile(t, t.TempDir(), "do-token", "  dop_v1_plaintoken\n")
	r := h.run("settings", "set", "--do-token-file", file)
	if r.code != 0 || r.stderr != "" || r.stdout != "DigitalOcean token: replaced\n" {
		t.Fatalf("set token: %+v", r)
	}
	if req := h.lastSettingsRequest(); req.DOToken == nil || *req.DOToken != "dop_v1_plaintoken" || req.CFToken != nil {
		t.Fatalf("request: %+v", req)
	}
	if st := h.settings(); !st.DOToken.Valid() || st.CFToken != "" {
		t.Fatalf("tokens after set: %q %q", st.DOToken, st.CFToken)
	}
	// Without a bucket, `settings` leaves the Spaces lines out.
	if r := h.run("settings"); r.code != 0 || shown(r.stdout, "DigitalOcean token") != "set" || strings.Contains(r.stdout, "plaintoken") ||
		strings.Contains(r.stdout, "Spaces") {
		t.Fatalf("settings: %+v", r)
	}
}

func TestSettingsSetBadInputChangesNothing(t *testing.T) {
	h := newHarness(t)
	size := "s-1vcpu-2gb"
	h.applySettings(&raftfsm.UpdateSettings{DropletSize: &size, Regions: []string{"nyc3"}})
	dir := t.TempDir()
	twoWords := writeFile(t, dir, "two", "tok en\n")
	empty := writeFile(t, dir, "empty", "\n")
	good := writeFile(t, dir, "good", "dop_v1_good\n")
	before := h.fake.StateJSON()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		// Mistakes in the command line: nothing reaches the cluster.
		{[]string{"settings", "set"}, 2, "dropmesh: give at least one setting to change (see dropmesh settings set --help)\n"},
		{[]string{"settings", "set", "--health-interval", "soon"}, 2, `dropmesh: invalid argument "soon" for "--health-interval" flag: time: invalid duration "soon"` + "\n"},
		{[]string{"settings", "set", "--backup-interval", "1 hour"}, 2, `dropmesh: invalid argument "1 hour" for "--backup-interval" flag`},
		{[]string{"settings", "set", "--desired-nodes", "many"}, 2, `dropmesh: invalid argument "many" for "--desired-nodes" flag`},
		{[]string{"settings", "set", "--regions", "New York"}, 2, `dropmesh: --regions: region "New York"`},
		{[]string{"settings", "set", "--domain", "example.org", "extra"}, 2, `dropmesh: unknown command "extra" for "dropmesh settings set"`},
		{[]string{"settings", "set", "--backup-spaces-secret-key-file", good}, 2, "dropmesh: --backup-spaces-secret-key-file: no Spaces bucket to use it for"},
		// Unreadable files: nothing is sent, not even the other flags.
		{[]string{"settings", "set", "--domain", "example.org", "--do-token-file", dir + "/missing"}, 1,
			"dropmesh: --do-token-file: open " + dir + "/missing: no such file or directory\n"},
		{[]string{"settings", "set", "--cf-token-file", twoWords}, 1, "dropmesh: --cf-token-file: " + twoWords + " must hold exactly one token\n"},
		{[]string{"settings", "set", "--cf-token-file", empty}, 1, "dropmesh: --cf-token-file: " + empty + " must hold exactly one token\n"},
		// The cluster's refusals, word for word; the whole change is refused.
		{[]string{"settings", "set", "--domain", "example.org", "--desired-nodes", "-1"}, 1, "dropmesh: desired_nodes -1: want 0 to 1000\n"},
		{[]string{"settings", "set", "--dead-node-grace", "-1m"}, 1, "dropmesh: dead_node_grace -1m0s: negative\n"},
		{[]string{"settings", "set", "--health-interval", "2h"}, 1, "dropmesh: health_interval 2h0m0s: want 100ms to 1h\n"},
		{[]string{"settings", "set", "--backup-enabled"}, 1, "dropmesh: backup: enabled without a dir or a Spaces bucket\n"},
		{[]string{"settings", "set", "--backup-dir", "backups"}, 1, `dropmesh: backup.dir "backups": want an absolute path` + "\n"},
		{[]string{"settings", "set", "--backup-interval", "10s", "--backup-dir", "/var/backups"}, 1, "dropmesh: backup.interval 10s: at least 1m\n"},
	} {
		r := h.run(tc.args...)
		if r.code != tc.code || !strings.HasPrefix(r.stderr, tc.msg) || r.stdout != "" {
			t.Errorf("%v: code %d stdout %q stderr %q; want code %d and %q", tc.args, r.code, r.stdout, r.stderr, tc.code, tc.msg)
		}
		if after := h.fake.StateJSON(); after != before {
			t.Fatalf("%v changed the state:\n%s\nwant\n%s", tc.args, after, before)
		}
	}
	// Only the refusals of the cluster itself were sent.
	if n := h.fake.CallCount("UpdateSettings"); n != 6 {
		t.Fatalf("%d settings changes reached the cluster, want 6: %v", n, h.fake.Calls())
	}
}

// TestSettingsEgressAllow: an admin allows a private range and removes it
// again; loopback, link-local and public ranges are refused by the CLI
// before anything is sent.
func TestSettingsEgressAllow(t *testing.T) {
	h := newHarness(t)
	r := h.run("settings", "set", "--egress-allow", "10.10.0.0/16,192.168.5.0/24")
	if r.code != 0 || !strings.Contains(r.stdout, "egress allow: - → 10.10.0.0/16, 192.168.5.0/24") {
		t.Fatalf("set: %+v", r)
	}
	if st := h.settings(); !slices.Equal(st.EgressAllow, []string{"10.10.0.0/16", "192.168.5.0/24"}) {
		t.Fatalf("settings: %v", st.EgressAllow)
	}
	for _, bad := range []string{"127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/0", "nonsense"} {
		r := h.run("settings", "set", "--egress-allow", bad)
		if r.code == 0 || !strings.Contains(r.stderr, "--egress-allow") {
			t.Fatalf("--egress-allow %s: %+v", bad, r)
		}
	}
	r = h.run("settings", "set", "--egress-allow", "")
	if r.code != 0 || len(h.settings().EgressAllow) != 0 {
		t.Fatalf("clear: %+v %v", r, h.settings().EgressAllow)
	}
}
