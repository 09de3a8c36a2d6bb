package bootstrap

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi/fakeapitest"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
	"github.com/dropmesh/dropmesh/scripts"
)

const (
	testDOToken = "dop_v1_0123456789abcdef0123456789abcdef"
	testCFToken = "cf-Zx9_token-0123456789"
	testDomain  = "example.test"
)

// cloudEnv is a fake DigitalOcean and Cloudflare whose droplets run agents
// in this process, a fake host standing in for the snapshot builder, and
// the options of a bootstrap against them.
type cloudEnv struct {
	fake    *fakeapi.Server
	url     string
	backend *agentBackend
	host    *fakeHost
	opts    Options
	out     *syncBuffer
}

func newCloudEnv(t *testing.T, nodes int, regions ...string) *cloudEnv {
	t.Helper()
	backend := newAgentBackend(t)
	fake, url := fakeapitest.Start(t, fakeapi.Options{Token: testDOToken, CFToken: testCFToken, Zones: []string{testDomain},
		ActionDelay: 5 * time.Millisecond, Backend: backend, IPAllocator: testIPs})
	t.Cleanup(backend.stopAll) // before the fake closes
	e := &cloudEnv{fake: fake, url: url, backend: backend, host: startFakeHost(t), out: &syncBuffer{}}
	e.host.Authorized = func(k ssh.PublicKey) bool {
		for _, rk := range fake.State().Keys {
			pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(rk.PublicKey))
			if err == nil && bytes.Equal(pk.Marshal(), k.Marshal()) {
				return true
			}
		}
		return false
	}
	e.opts = Options{
		Name: "demo", Domain: testDomain, Regions: regions, Nodes: nodes, DOToken: testDOToken, CFToken: testCFToken,
		StateDir: filepath.Join(t.TempDir(), "state"), Version: "v0.1.0-test", Binary: fakeBinary(t),
		DOBaseURL: url, CFBaseURL: url + fakeapi.CloudflarePath,
		BuilderTarget: func(cloudops.Droplet) SSHTarget { return SSHTarget{Addr: e.host.Addr, User: "root"} },
		Reach: func(seed cloudops.Droplet, uiHost string) []Endpoint {
			return []Endpoint{{URL: "http://" + seed.PublicIP + ":8080", Host: uiHost, Trusted: true}}
		},
		Out: e.out, Config: testConfig(),
	}
	return e
}

// counts are the cloud resources the tests count for duplicates.
type counts struct {
	Droplets, VPCs, Firewalls, Snapshots, Keys int
	DropletNames                               []string
	FirewallNames                              []string
}

func (e *cloudEnv) counts() counts {
	st := e.fake.State()
	var c counts
	for _, d := range st.Droplets {
		c.DropletNames = append(c.DropletNames, d.Name)
	}
	for _, v := range st.VPCs {
		if v.Name == VPCName("demo") { // the fake also makes a region's default VPC
			c.VPCs++
		}
	}
	for _, f := range st.Firewalls {
		c.FirewallNames = append(c.FirewallNames, f.Name)
	}
	slices.Sort(c.DropletNames)
	c.Droplets, c.Firewalls, c.Snapshots, c.Keys = len(st.Droplets), len(st.Firewalls), len(st.Snapshots), len(st.Keys)
	return c
}

func TestBootstrapEndToEnd(t *testing.T) {
	e := newCloudEnv(t, 3, "nyc3", "sfo3")
	ctx := context.Background()
	res, err := Run(ctx, e.opts)
	if err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, e.out)
	}
	t.Logf("bootstrap output:\n%s", e.out)
	rec := res.Record

	// What the person sees.
	if m := missing(e.out.String(), "checking the Cloudflare zone of mesh.example.test... ok (zone example.test",
		"ensuring the VPC demo-vpc in nyc3... ok (vpc ", "ensuring the firewall demo-firewall... ok (firewall ",
		"ensuring the base snapshot "+rec.Snapshot+"...", "  running install-agent.sh", "  copying snapshot ",
		"creating the seed droplet demo-node-1 in nyc3... ok (created: droplet ", "waiting for the seed's agent... ok (node-1, version test",
		"handing the seed its cloud tokens and admin password... ok (tokens sealed on the seed",
		"checking the cluster the seed initialised", "ok (cluster ", "; tokens sealed)", "waiting for the cluster to grow to 3 nodes",
		"3/3 nodes alive: node-1, node-2, node-3", "dropmesh cluster \"demo\" is up: 3 nodes", "UI:       https://mesh.example.test",
		"login:    admin / "+res.AdminPassword, ". "+res.EnvFile); m != "" {
		t.Fatalf("output lacks %q:\n%s", m, e.out)
	}
	if !slices.Equal(res.Nodes, []string{"node-1", "node-2", "node-3"}) {
		t.Fatalf("nodes %v", res.Nodes)
	}

	// The cloud: one VPC, the cluster firewall without 22, the snapshot in
	// every region, three cluster droplets, no builder, no SSH key.
	c := e.counts()
	if c.VPCs != 1 || c.Keys != 0 || c.Snapshots != 1 || !slices.Equal(c.FirewallNames, []string{"demo-firewall"}) ||
		!slices.Equal(c.DropletNames, []string{"demo-node-1", "demo-node-2", "demo-node-3"}) {
		t.Fatalf("cloud after bootstrap: %+v", c)
	}
	st := e.fake.State()
	fw := st.Firewalls[0]
	var open []string
	for _, r := range fw.InboundRules {
		open = append(open, r.Protocol+"/"+r.PortRange+" from "+strings.Join(append(slices.Clone(r.Sources.Addresses), r.Sources.Tags...), ","))
	}
	slices.Sort(open)
	// The control ports admit the cluster's droplets by tag, not the VPC.
	tag := rec.Tag
	wantOpen := []string{"tcp/443 from 0.0.0.0/0,::/0", "tcp/7946 from " + tag, "tcp/7947 from " + tag, "tcp/7948 from " + tag,
		"tcp/80 from 0.0.0.0/0,::/0", "tcp/9999 from " + tag, "udp/7946 from " + tag}
	if !slices.Equal(open, wantOpen) {
		t.Fatalf("firewall inbound rules:\n%s\nwant:\n%s", strings.Join(open, "\n"), strings.Join(wantOpen, "\n"))
	}
	snap := st.Snapshots[0]
	if snap.Name != rec.Snapshot || !strings.HasPrefix(snap.Name, "dropmesh-base-v0.1.0-test-") || !slices.Contains(snap.Regions, "nyc3") || !slices.Contains(snap.Regions, "sfo3") {
		t.Fatalf("snapshot %s in %v", snap.Name, snap.Regions)
	}
	var seedD *fakeapi.StateDroplet
	for i := range st.Droplets {
		if st.Droplets[i].Name == "demo-node-1" {
			seedD = &st.Droplets[i]
		}
	}
	if seedD.VPCUUID != rec.VPCID || seedD.Image == nil || seedD.Image.Name != rec.Snapshot || !slices.Equal(seedD.Tags, []string{rec.Tag}) {
		t.Fatalf("seed droplet: vpc %s (want %s), image %+v, tags %v (want %s)", seedD.VPCUUID, rec.VPCID, seedD.Image, seedD.Tags, rec.Tag)
	}

	// The seed's user data starts its agent as the seed, with a one-time
	// bootstrap token and no secret: not the cloud tokens, the admin
	// password nor the cluster secret the seed made itself.
	var userData string
	for _, d := range e.fake.Droplets() {
		if d.Name == "demo-node-1" {
			userData = d.UserData
		}
	}
	env, err := scripts.ParseUserData(userData)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"DROPMESH_BOOTSTRAP": "true", "DROPMESH_NODE_ID": "node-1", "DROPMESH_CLUSTER_NAME": "demo", "DROPMESH_CLUSTER_ID": rec.ClusterID,
		"DROPMESH_DOMAIN": testDomain, "DROPMESH_NODES": "3", "DROPMESH_BASE_SNAPSHOT": rec.Snapshot, "DROPMESH_REGION": "nyc3",
		"DROPMESH_DROPLET_SIZE": DefaultSize, "DROPMESH_DO_BASE_URL": e.url, "DROPMESH_CF_BASE_URL": e.url + fakeapi.CloudflarePath,
	} {
		if env[k] != v {
			t.Errorf("seed user data %s=%q, want %q", k, env[k], v)
		}
	}
	if len(env["DROPMESH_BOOTSTRAP_TOKEN"]) != 64 {
		t.Errorf("seed user data has bootstrap token %q", env["DROPMESH_BOOTSTRAP_TOKEN"])
	}
	seed := e.backend.agent("demo-node-1")
	seedSecret, err := os.ReadFile(filepath.Join(seed.agent.Config().DataDir, "cluster-secret"))
	if err != nil {
		t.Fatalf("the seed made no cluster secret of its own: %v", err)
	}
	for what, secret := range map[string]string{"DigitalOcean token": testDOToken, "Cloudflare token": testCFToken,
		"admin password": res.AdminPassword, "cluster secret": strings.TrimSpace(string(seedSecret)), "API key": res.APIKey} {
		if strings.Contains(userData, secret) {
			t.Errorf("the fake cloud's stored user data of the seed holds the %s", what)
		}
	}
	for _, k := range []string{"DROPMESH_CLUSTER_SECRET", "DROPMESH_DO_TOKEN", "DROPMESH_CF_TOKEN", "DROPMESH_ADMIN_PASSWORD_FILE"} {
		if _, ok := env[k]; ok {
			t.Errorf("the seed's user data sets %s", k)
		}
	}
	if files, err := userDataFiles(userData); err != nil || len(files) != 1 {
		t.Fatalf("the seed's user data writes %d files (%v), want agent.env alone", len(files), err)
	}

	// The tokens are sealed in the state: the API shows them as set, the
	// replica holds v1: values, and no file of the seed has them in clear.
	keys := seed.agent.Keys()
	if res.APIKey != keys.APIKey {
		t.Fatal("the API key is not the seed's")
	}
	cl := &agentClient{hc: http.DefaultClient, endpoints: e.opts.Reach(cloudops.Droplet{PublicIP: seed.d.PublicIP}, "mesh."+testDomain), apiKey: keys.APIKey}
	var settings settingsAnswer
	if err := cl.call(ctx, http.MethodGet, "/v1/settings", nil, &settings); err != nil {
		t.Fatal(err)
	}
	if settings.DOToken != control.SecretSet || settings.CFToken != control.SecretSet {
		t.Fatalf("GET /v1/settings shows tokens %q and %q, want %q", settings.DOToken, settings.CFToken, control.SecretSet)
	}
	var sealed [2]raftfsm.Sealed
	var adminHash string
	seed.agent.View(func(s *raftfsm.State) {
		sealed = [2]raftfsm.Sealed{s.Settings.DOToken, s.Settings.CFToken}
		if u := s.Users[AdminUser]; u != nil {
			adminHash = u.PasswordHash
		}
	})
	for i, plain := range []string{testDOToken, testCFToken} {
		if !strings.HasPrefix(string(sealed[i]), "v1:") || strings.Contains(string(sealed[i]), plain) {
			t.Fatalf("token %d in the state is %q, want a v1: sealed value", i, sealed[i])
		}
		opened, err := raftfsm.Open(keys.Sealer, []string{raftfsm.LabelDOToken, raftfsm.LabelCFToken}[i], sealed[i])
		if err != nil || string(opened) != plain {
			t.Fatalf("token %d does not open to the plain token: %v", i, err)
		}
	}
	// No file of the seed (its data dir, the files its user data wrote)
	// holds a cloud token or the admin password in clear.
	leaks := grepDir(t, filepath.Join(e.backend.dir, "demo-node-1"), testDOToken, testCFToken, res.AdminPassword)
	if len(leaks) > 0 {
		t.Fatalf("plain tokens or the admin password on the seed's disk: %v", leaks)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(adminHash), []byte(res.AdminPassword)); err != nil {
		t.Fatalf("the seed's admin password is not the one the CLI made: %v", err)
	}

	// The state dir: private files, the env file for the CLI.
	if _, err := os.Stat(filepath.Join(e.opts.StateDir, BootstrapTokenFile)); !os.IsNotExist(err) {
		t.Errorf("the used bootstrap token is left in the state dir (%v)", err)
	}
	for _, f := range []string{APIKeyFile, AdminPasswordFile, EnvFile, RecordFile, KnownHostsFile} {
		st, err := os.Stat(filepath.Join(e.opts.StateDir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("state file %s: %v, mode %v; want 0600", f, err, st.Mode().Perm())
		}
	}
	if _, err := os.Stat(filepath.Join(e.opts.StateDir, BuilderKeyFile)); !os.IsNotExist(err) {
		t.Errorf("the builder's private key is left in the state dir (%v)", err)
	}
	envFile, err := os.ReadFile(res.EnvFile)
	if err != nil || !strings.Contains(string(envFile), "export DROPMESH_ADDR=https://mesh.example.test\n") ||
		!strings.Contains(string(envFile), "export DROPMESH_API_KEY="+keys.APIKey+"\n") {
		t.Fatalf("env file (%v):\n%s", err, envFile)
	}

	// The leader keeps mesh.DOMAIN on itself.
	testkit.WaitFor(t, 30*time.Second, "the UI host's A record", func() bool {
		for _, r := range e.fake.State().DNSRecords {
			if r.Name == "mesh."+testDomain && r.Type == "A" {
				return true
			}
		}
		return false
	})

	// The cluster firewall applies to every droplet of the cluster: the seed
	// runs the cluster id the bootstrap chose, so the firewall the leader
	// ensures is the bootstrap's (same name, tag and rules: never rewritten)
	// and the seed carries the tag of the droplets the leader adds.
	if settings.ClusterID != rec.ClusterID {
		t.Fatalf("the seed runs cluster %s, the bootstrap chose %s", settings.ClusterID, rec.ClusterID)
	}
	testkit.WaitFor(t, 20*time.Second, "the leader to ensure the cluster firewall", func() bool {
		var fw *raftfsm.Firewall
		seed.agent.View(func(s *raftfsm.State) { fw = s.Cloud.Firewall })
		return fw != nil && fw.ID == rec.FirewallID
	})
	if n := e.fake.Requests("PUT /v2/firewalls/{id}"); n != 0 {
		t.Fatalf("the leader rewrote the bootstrap's firewall (%d PUTs)", n)
	}
	st = e.fake.State()
	if len(st.Firewalls) != 1 || !slices.Equal(st.Firewalls[0].Tags, []string{rec.Tag}) {
		t.Fatalf("firewalls %+v, want one on tag %s", st.Firewalls, rec.Tag)
	}
	for _, d := range st.Droplets {
		if !slices.Contains(d.Tags, rec.Tag) {
			t.Errorf("droplet %s (tags %v) is outside the firewall on tag %s", d.Name, d.Tags, rec.Tag)
		}
		// The droplets the leader added boot from the base snapshot too, by
		// id: DigitalOcean takes a private snapshot by id only (a slug names
		// a public image).
		if d.Image == nil || d.Image.ID != rec.SnapshotID {
			t.Errorf("droplet %s was created from image %+v, not the base snapshot %d", d.Name, d.Image, rec.SnapshotID)
		}
	}

	// Run again: everything exists, nothing is made twice.
	before := e.counts()
	e.out = &syncBuffer{}
	e.opts.Out = e.out
	again, err := Run(ctx, e.opts)
	if err != nil {
		t.Fatalf("second bootstrap: %v\n%s", err, e.out)
	}
	if after := e.counts(); !equalCounts(before, after) {
		t.Fatalf("a second bootstrap changed the cloud: %+v -> %+v", before, after)
	}
	if again.AdminPassword != res.AdminPassword || again.APIKey != res.APIKey || again.Record.ClusterID != rec.ClusterID {
		t.Fatal("a second bootstrap changed the login, the key or the cluster id")
	}
	if m := missing(e.out.String(), "creating the seed droplet demo-node-1 in nyc3... ok (exists: droplet ",
		"handing the seed its cloud tokens and admin password... ok (claimed by an earlier run)"); m != "" {
		t.Fatalf("second run output lacks %q:\n%s", m, e.out)
	}
	if strings.Contains(e.out.String(), "running install-agent.sh") {
		t.Fatalf("a second bootstrap built the snapshot again:\n%s", e.out)
	}
}

func equalCounts(a, b counts) bool {
	return a.Droplets == b.Droplets && a.VPCs == b.VPCs && a.Firewalls == b.Firewalls && a.Snapshots == b.Snapshots &&
		a.Keys == b.Keys && slices.Equal(a.DropletNames, b.DropletNames) && slices.Equal(a.FirewallNames, b.FirewallNames)
}

// grepDir lists the files under dir holding any of needles.
func grepDir(t *testing.T, dir string, needles ...string) []string {
	t.Helper()
	var hits []string
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				hits = append(hits, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// assertNoDuplicates checks that the cloud holds at most one of each thing a
// bootstrap of demo makes, and nothing of the builder.
func (e *cloudEnv) assertNoDuplicates(t *testing.T, after string) counts {
	t.Helper()
	c := e.counts()
	unique := func(names []string, allowed ...string) bool {
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] || !slices.Contains(allowed, n) {
				return false
			}
			seen[n] = true
		}
		return true
	}
	if c.VPCs > 1 || c.Snapshots > 1 || c.Keys != 0 || !unique(c.FirewallNames, "demo-firewall") ||
		!unique(c.DropletNames, "demo-node-1", "demo-node-2") {
		t.Fatalf("after %s: duplicates or builder leftovers in the cloud: %+v\n%s", after, c, e.out)
	}
	return c
}

func TestBootstrapRerunAfterAFailureAtEachStep(t *testing.T) {
	e := newCloudEnv(t, 2, "nyc3", "sfo3")
	ctx := context.Background()
	reach := e.opts.Reach
	blockGrowth := fakeapi.Fault{Method: "POST", PathPrefix: "/v2/droplets", Status: 500}
	var vpcFaulted int // POST /v2/vpcs answered by the injected fault
	steps := []struct {
		name  string
		fault *fakeapi.Fault
		setup func()
		// keepFaults leaves the faults of the previous step in place.
		keepFaults bool
		after      func()
		want       string
	}{
		{name: "zone lookup", fault: &fakeapi.Fault{Method: "GET", PathPrefix: "/client/v4/zones", Status: 500}, want: "checking the Cloudflare zone"},
		{name: "VPC", fault: &fakeapi.Fault{Method: "POST", PathPrefix: "/v2/vpcs", Status: 500}, want: "ensuring the VPC",
			after: func() { vpcFaulted = e.fake.Requests("POST /v2/vpcs") }},
		{name: "cluster firewall", fault: &fakeapi.Fault{Method: "POST", PathPrefix: "/v2/firewalls", Status: 500}, want: "ensuring the firewall"},
		{name: "builder key", fault: &fakeapi.Fault{Method: "POST", PathPrefix: "/v2/account/keys", Status: 429}, want: "registering the SSH key"},
		{name: "builder droplet", fault: &fakeapi.Fault{Method: "POST", PathPrefix: "/v2/droplets", Status: 503}, want: "creating the builder droplet"},
		{name: "SSH refused", setup: func() { e.host.Refuse.Store(true) }, want: "connecting over SSH"},
		{name: "power-off and snapshot", fault: &fakeapi.Fault{Method: "POST", PathPrefix: "/v2/droplets/", Status: 500}, want: "powering the builder off"},
		{name: "snapshot transfer", fault: &fakeapi.Fault{Method: "POST", PathPrefix: "/v2/images/", Status: 500}, want: "copying snapshot"},
		{name: "seed droplet", fault: &fakeapi.Fault{Method: "POST", PathPrefix: "/v2/droplets", Status: 500}, want: "creating the seed droplet"},
		{name: "seed's agent unreachable", setup: func() {
			e.opts.Config.AgentTimeout = 500 * time.Millisecond
			e.opts.Reach = func(cloudops.Droplet, string) []Endpoint {
				return []Endpoint{{URL: "http://127.0.0.1:1", Trusted: true}}
			}
			// The seed's leader must not grow the cluster before the next
			// step fails its growth: droplet creation fails from the moment
			// the seed (created by this run) boots.
			e.backend.setOnStart(func(d fakeapi.BackedDroplet) {
				if d.Name == "demo-node-1" {
					if err := e.fake.InjectFault(blockGrowth); err != nil {
						t.Error(err)
					}
				}
			})
		}, after: func() { e.backend.setOnStart(nil) }, want: "waiting for the seed's agent"},
		{name: "growth", keepFaults: true, setup: func() { e.opts.Config.GrowTimeout = time.Second },
			after: func() {
				if c := e.counts(); !slices.Equal(c.DropletNames, []string{"demo-node-1"}) {
					t.Fatalf("growth: droplets %v while their creation fails", c.DropletNames)
				}
			}, want: "waiting for the cluster to grow to 2 nodes"},
	}
	reset := func() {
		e.host.Refuse.Store(false)
		e.opts.Config.AgentTimeout = testConfig().AgentTimeout
		e.opts.Config.GrowTimeout = testConfig().GrowTimeout
		e.opts.Reach = reach
		e.out = &syncBuffer{}
		e.opts.Out = e.out
	}
	for _, s := range steps {
		if !s.keepFaults {
			e.fake.ClearFaults()
		}
		reset()
		if s.fault != nil {
			if err := e.fake.InjectFault(*s.fault); err != nil {
				t.Fatal(err)
			}
		}
		if s.setup != nil {
			s.setup()
		}
		_, err := Run(ctx, e.opts)
		if err == nil || !strings.Contains(err.Error(), s.want) {
			t.Fatalf("%s: bootstrap gave %v, want a failure at %q\n%s", s.name, err, s.want, e.out)
		}
		// A failure never leaves the builder behind, nor makes anything twice.
		e.assertNoDuplicates(t, "a failure at "+s.name)
		if s.after != nil {
			s.after()
		}
		t.Logf("%s: failed as injected: %v", s.name, err)
	}
	e.fake.ClearFaults()
	reset()
	if _, err := Run(ctx, e.opts); err != nil {
		t.Fatalf("bootstrap after the failures: %v\n%s", err, e.out)
	}
	c := e.assertNoDuplicates(t, "the successful run")
	if c.VPCs != 1 || c.Snapshots != 1 || !slices.Equal(c.FirewallNames, []string{"demo-firewall"}) ||
		!slices.Equal(c.DropletNames, []string{"demo-node-1", "demo-node-2"}) {
		t.Fatalf("cloud after failures and a successful run: %+v", c)
	}
	// The VPC was created once: every request after the faulted ones found it.
	if vpcFaulted == 0 {
		t.Fatal("the VPC step sent no create to fault")
	}
	if n := e.fake.Requests("POST /v2/vpcs"); n != vpcFaulted+1 {
		t.Fatalf("%d VPC creates: %d faulted, want exactly one more", n, vpcFaulted)
	}
	if st := e.fake.State(); !slices.Contains(st.Snapshots[0].Regions, "sfo3") {
		t.Fatalf("snapshot regions %v after the failed transfer was retried", st.Snapshots[0].Regions)
	}
}
