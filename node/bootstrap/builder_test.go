package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/godo"
	"golang.org/x/crypto/ssh"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi/fakeapitest"
	"github.com/dropmesh/dropmesh/node/testkit"
)

// builderEnv is a fake cloud, a fake host standing in for every builder
// droplet, and a Builder wired to both.
type builderEnv struct {
	fake   *fakeapi.Server
	do     *cloudops.DigitalOcean
	host   *fakeHost
	b      *Builder
	state  string
	out    *syncBuffer
	binary string

	mu        sync.Mutex
	sshOpenAt []bool // at each login: did a firewall open 22 to the builder's tag?
}

func newBuilderEnv(t *testing.T) *builderEnv {
	t.Helper()
	fake, url := fakeapitest.Start(t, fakeapi.Options{Token: "do-test-token", ActionDelay: 5 * time.Millisecond})
	do := cloudops.NewDigitalOcean(cloudops.DOConfig{Token: "do-test-token", BaseURL: url, PollInterval: 10 * time.Millisecond,
		Retry: testConfig().Retry})
	e := &builderEnv{fake: fake, do: do, host: startFakeHost(t), state: t.TempDir(), out: &syncBuffer{}, binary: fakeBinary(t)}
	// The "droplet" accepts the keys registered with the cloud, as
	// DigitalOcean puts a droplet's keys in root's authorized_keys.
	e.host.Authorized = func(k ssh.PublicKey) bool {
		st := fake.State()
		open := false
		for _, fw := range st.Firewalls {
			for _, r := range fw.InboundRules {
				if r.PortRange == "22" && slices.Contains(fw.Tags, namesFor("demo").tag) {
					open = true
				}
			}
		}
		e.mu.Lock()
		e.sshOpenAt = append(e.sshOpenAt, open)
		e.mu.Unlock()
		for _, rk := range st.Keys {
			pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(rk.PublicKey))
			if err == nil && bytes.Equal(pk.Marshal(), k.Marshal()) {
				return true
			}
		}
		return false
	}
	if err := os.MkdirAll(filepath.Join(e.host.Root, "root/.ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.host.Root, "root/.ssh/authorized_keys"), []byte("ssh-ed25519 AAAA builder\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.b = &Builder{Cloud: do, Hosts: NewHostKeys(filepath.Join(e.state, KnownHostsFile)), KeyPath: filepath.Join(e.state, BuilderKeyFile),
		Target: func(cloudops.Droplet) SSHTarget { return SSHTarget{Addr: e.host.Addr, User: "root"} },
		Binary: e.binary, Config: testConfig(), out: newProgress(e.out)}
	return e
}

// assertNoBuilder checks that nothing of a builder is left: no droplet, no
// SSH key, no firewall, no private key file.
func (e *builderEnv) assertNoBuilder(t *testing.T) {
	t.Helper()
	st := e.fake.State()
	if len(st.Droplets) != 0 {
		t.Errorf("%d droplets left: %+v", len(st.Droplets), st.Droplets[0].Name)
	}
	if len(st.Keys) != 0 {
		t.Errorf("%d SSH keys left: %s", len(st.Keys), st.Keys[0].Name)
	}
	if len(st.Firewalls) != 0 {
		t.Errorf("%d firewalls left: %s", len(st.Firewalls), st.Firewalls[0].Name)
	}
	if _, err := os.Stat(e.b.KeyPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the builder's private key is still at %s (%v)", e.b.KeyPath, err)
	}
}

func TestBuilderBuildsTheSnapshotOverSSHAndRemovesTheBuilder(t *testing.T) {
	e := newBuilderEnv(t)
	spec := SnapshotSpec{Name: "dropmesh-base-test-1234abcd", Regions: []string{"nyc3", "sfo3", "ams3"}, Cluster: "demo"}
	snap, err := e.b.Ensure(context.Background(), spec)
	if err != nil {
		t.Fatalf("Ensure: %v\n%s", err, e.out)
	}
	slices.Sort(snap.Regions)
	if !slices.Equal(snap.Regions, []string{"ams3", "nyc3", "sfo3"}) {
		t.Fatalf("snapshot in %v, want all three regions", snap.Regions)
	}
	st := e.fake.State()
	if len(st.Snapshots) != 1 || st.Snapshots[0].Name != spec.Name {
		t.Fatalf("snapshots %+v, want one named %s", st.Snapshots, spec.Name)
	}
	e.assertNoBuilder(t)

	// SSH was open while the builder was logged into, and only then.
	e.mu.Lock()
	opens := slices.Clone(e.sshOpenAt)
	e.mu.Unlock()
	if len(opens) == 0 || slices.Contains(opens, false) {
		t.Fatalf("logins saw port 22 open: %v, want open at every login", opens)
	}
	if got := e.host.Logins(); len(got) == 0 || got[0] != "root" {
		t.Fatalf("logins %v, want root", got)
	}

	// The binary and the unit landed where the install script puts them.
	root := e.host.Root
	if !sameFile(t, e.binary, filepath.Join(root, "usr/local/bin/dropmesh")) {
		t.Fatal("the installed binary differs from the uploaded one")
	}
	for _, unit := range []string{"dropmesh-agent.service", "dropmesh-metadata.service", "dropmesh-metadata-guard.service"} {
		if !sameFile(t, filepath.Join("../../scripts/systemd", unit), filepath.Join(root, "etc/systemd/system", unit)) {
			t.Fatalf("%s differs from scripts/systemd/%s", unit, unit)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "root/.ssh/authorized_keys")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("authorized_keys still in the snapshot (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(e.host.Home, remoteDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the upload dir is still on the builder (%v)", err)
	}
	log := e.host.StandInLog(t)
	if m := missing(log, "apt-get -o DPkg::Lock::Timeout=300 -qq install -y --no-install-recommends ca-certificates curl docker.io nginx logrotate",
		"systemctl disable --quiet --now nginx.service", "systemctl enable --quiet dropmesh-metadata.service dropmesh-agent.service",
		"systemctl enable --quiet dropmesh-metadata-guard.service", "cloud-init clean --logs", "sync"); m != "" {
		t.Fatalf("the install did not run %q; stand-ins logged:\n%s", m, log)
	}
	out := e.out.String()
	if m := missing(out, "making the builder's SSH key... ok (ssh-ed25519", "registering the SSH key... ok (key ",
		"opening SSH to the builder only (firewall demo-builder-ssh)... ok", "creating the builder droplet demo-builder in nyc3... ok",
		"connecting over SSH to root@"+e.host.Addr+"... ok (host key SHA256:", "uploading the dropmesh binary... ok",
		"| install-agent: done", "powering the builder off... ok", "taking the snapshot "+spec.Name+"... ok",
		"copying snapshot ", " to sfo3... ok", "deleting the builder droplet, its SSH key and its firewall... ok"); m != "" {
		t.Fatalf("progress lacks %q:\n%s", m, out)
	}
	// The host key was pinned.
	known, err := os.ReadFile(e.b.Hosts.path)
	if err != nil || !strings.Contains(string(known), "droplet-") {
		t.Fatalf("no pinned host key (%v): %q", err, known)
	}
}

func TestBuilderShutsTheDropletDownBeforeTheSnapshot(t *testing.T) {
	e := newBuilderEnv(t)
	e.host.Authorized = func(ssh.PublicKey) bool { return true }
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := e.b.Ensure(context.Background(), SnapshotSpec{Name: "base-x", Regions: []string{"nyc3"}, Cluster: "demo"})
		if err != nil {
			t.Errorf("Ensure: %v\n%s", err, e.out)
		}
	}()
	// The builder droplet is deleted once the snapshot is taken, so its
	// action list is watched while it exists: the longest list seen must be
	// in order, and must have had the shutdown before any snapshot.
	var longest []string
	testkit.WaitFor(t, 30*time.Second, "the builder to finish", func() bool {
		for _, d := range e.fake.State().Droplets {
			var seen []string
			for _, a := range d.Actions {
				seen = append(seen, a.Type)
			}
			if len(seen) > len(longest) {
				longest = seen
			}
		}
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
	want := []string{"create", "shutdown", "snapshot"}
	if len(longest) < 2 || len(longest) > len(want) || !slices.Equal(longest, want[:len(longest)]) {
		t.Fatalf("builder actions %v, want create, shutdown, snapshot", longest)
	}
	if !slices.ContainsFunc(e.fake.State().Snapshots, func(s godo.Snapshot) bool { return s.Name == "base-x" }) {
		t.Fatalf("no snapshot base-x; snapshots %+v", e.fake.State().Snapshots)
	}
}

func TestBuilderReusesAnExistingSnapshot(t *testing.T) {
	e := newBuilderEnv(t)
	spec := SnapshotSpec{Name: "dropmesh-base-reuse", Regions: []string{"nyc3"}, Cluster: "demo"}
	first, err := e.b.Ensure(context.Background(), spec)
	if err != nil {
		t.Fatalf("Ensure: %v\n%s", err, e.out)
	}
	creates := e.fake.Requests("POST /v2/droplets")
	logins := len(e.host.Logins())
	spec.Regions = append(spec.Regions, "fra1")
	second, err := e.b.Ensure(context.Background(), spec)
	if err != nil {
		t.Fatalf("second Ensure: %v\n%s", err, e.out)
	}
	if second.ID != first.ID || !slices.Contains(second.Regions, "fra1") {
		t.Fatalf("second Ensure gave snapshot %d in %v, want %d also in fra1", second.ID, second.Regions, first.ID)
	}
	if got := e.fake.Requests("POST /v2/droplets"); got != creates {
		t.Fatalf("a second build created droplets (%d creates, had %d)", got, creates)
	}
	if got := len(e.host.Logins()); got != logins {
		t.Fatalf("a second build logged in over SSH")
	}
	if n := len(e.fake.State().Snapshots); n != 1 {
		t.Fatalf("%d snapshots, want 1", n)
	}
}

// A build cut short after it registered its key: once the snapshot exists,
// the next Ensure deletes the key it finds, and registers none to find it.
func TestBuilderSweepsAnInterruptedBuildsKeyWithoutRegisteringOne(t *testing.T) {
	e := newBuilderEnv(t)
	ctx := context.Background()
	spec := SnapshotSpec{Name: "dropmesh-base-sweep", Regions: []string{"nyc3"}, Cluster: "demo"}
	if _, err := e.b.Ensure(ctx, spec); err != nil {
		t.Fatalf("Ensure: %v\n%s", err, e.out)
	}
	// What the interrupted build left: its private key and its registered key.
	signer, fresh, err := loadOrCreateKey(e.b.KeyPath)
	if err != nil || !fresh {
		t.Fatalf("builder key: fresh %v, %v", fresh, err)
	}
	left, err := e.do.CreateSSHKey(ctx, keyName(namesFor(spec.Cluster), signer), authorizedKey(signer))
	if err != nil {
		t.Fatal(err)
	}
	creates := e.fake.Requests("POST /v2/account/keys")
	if _, err := e.b.Ensure(ctx, spec); err != nil {
		t.Fatalf("Ensure after an interrupted build: %v\n%s", err, e.out)
	}
	if got := e.fake.Requests("POST /v2/account/keys"); got != creates {
		t.Fatalf("the sweep registered %d SSH keys", got-creates)
	}
	if m := missing(e.out.String(), fmt.Sprintf("removing a builder left from an earlier run... ok (ssh key %d)", left.ID)); m != "" {
		t.Fatalf("progress lacks %q:\n%s", m, e.out)
	}
	e.assertNoBuilder(t)

	// Only the private key is left (its public key never registered): the
	// sweep removes the file and touches no key in the account.
	if _, _, err := loadOrCreateKey(e.b.KeyPath); err != nil {
		t.Fatal(err)
	}
	keyRequests := func() int {
		return e.fake.Requests("POST /v2/account/keys") + e.fake.Requests("DELETE /v2/account/keys/{id}")
	}
	before := keyRequests()
	if _, err := e.b.Ensure(ctx, spec); err != nil {
		t.Fatalf("Ensure after a build cut short before its key: %v\n%s", err, e.out)
	}
	if got := keyRequests(); got != before {
		t.Fatalf("the second sweep created or deleted %d keys", got-before)
	}
	e.assertNoBuilder(t)
}

func TestBuilderCleansUpWhenSSHIsRefused(t *testing.T) {
	e := newBuilderEnv(t)
	e.host.Refuse.Store(true)
	_, err := e.b.Ensure(context.Background(), SnapshotSpec{Name: "base-refused", Regions: []string{"nyc3"}, Cluster: "demo"})
	if err == nil || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("Ensure with SSH refused: %v, want it to give up", err)
	}
	e.assertNoBuilder(t)
	if n := len(e.fake.State().Snapshots); n != 0 {
		t.Fatalf("%d snapshots after a failed build", n)
	}
	if !strings.Contains(e.out.String(), "deleting the builder droplet, its SSH key and its firewall... ok (droplet ") {
		t.Fatalf("progress does not show the clean-up:\n%s", e.out)
	}
}

func TestBuilderCleansUpWhenTheInstallFails(t *testing.T) {
	e := newBuilderEnv(t)
	// apt-get fails on this "droplet".
	if err := os.WriteFile(filepath.Join(filepath.Dir(e.host.Log), "bin", "apt-get"), []byte("#!/bin/sh\necho 'E: Unable to locate package docker.io' >&2\nexit 100\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := e.b.Ensure(context.Background(), SnapshotSpec{Name: "base-broken", Regions: []string{"nyc3"}, Cluster: "demo"})
	if err == nil || !strings.Contains(err.Error(), "running install-agent.sh") || !strings.Contains(err.Error(), "exited with status 100") {
		t.Fatalf("Ensure with a failing apt-get: %v", err)
	}
	if !strings.Contains(e.out.String(), "| E: Unable to locate package docker.io") {
		t.Fatalf("the install's output is not shown:\n%s", e.out)
	}
	e.assertNoBuilder(t)
}

func TestBuilderRefusesAChangedHostKey(t *testing.T) {
	e := newBuilderEnv(t)
	// The first droplet of a fresh fake is 300000001: pin another key for it,
	// as if an earlier connection to this droplet had seen that one.
	other := startFakeHost(t)
	if err := e.b.Hosts.Callback("droplet-300000001")("x", nil, other.HostKey.PublicKey()); err != nil {
		t.Fatal(err)
	}
	_, err := e.b.Ensure(context.Background(), SnapshotSpec{Name: "base-mitm", Regions: []string{"nyc3"}, Cluster: "demo"})
	if !errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("Ensure against a changed host key: %v, want ErrHostKeyChanged", err)
	}
	if got := e.host.Commands(); len(got) != 0 {
		t.Fatalf("commands ran on a host with the wrong key: %v", got)
	}
	e.assertNoBuilder(t)
}
