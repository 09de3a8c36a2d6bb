package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/discovery"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/scripts/guardtest"
)

// capBits are the bit numbers (as CapEff shows them) of the capabilities the tests look at.
var capBits = map[string]uint{"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6,
	"SETUID": 7, "NET_BIND_SERVICE": 10, "NET_RAW": 13}

// capEff is the CapEff text of the named capabilities.
func capEff(t *testing.T, names []string) string {
	t.Helper()
	var m uint64
	for _, n := range names {
		b, ok := capBits[n]
		if !ok {
			t.Fatalf("capBits has no %s", n)
		}
		m |= 1 << b
	}
	return fmt.Sprintf("%016x", m)
}

// privs runs the test app's "privs" tool in a container and returns its
// report lines by key ("CapEff", "NoNewPrivs", "raw", "setuid0").
func privs(t *testing.T, id string) map[string]string {
	t.Helper()
	rt, _ := dockerFixture(t)
	res, err := rt.Exec(testCtx(t, time.Minute), id, []string{"/testapp", "privs"})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("privs in %s: %v exit %d: %s", id, err, res.ExitCode, res.Output)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(res.Output), "\n") {
		k, v, _ := strings.Cut(line, " ")
		out[k] = v
	}
	return out
}

// TestContainerConfined attacks a container from inside: as root it keeps
// only DefaultCapabilities, cannot open a raw socket, and has
// no_new_privs; as a user it cannot become root. A spec's CapAdd adds
// exactly the capability asked for.
func TestContainerConfined(t *testing.T) {
	t.Parallel()
	root := startApp(t, runtime.ContainerSpec{})
	got := privs(t, root.ID)
	want := capEff(t, runtime.DefaultCapabilities)
	if got["CapEff"] != want {
		t.Errorf("root's CapEff = %s; want %s (%v)", got["CapEff"], want, runtime.DefaultCapabilities)
	}
	if got["NoNewPrivs"] != "1" {
		t.Errorf("NoNewPrivs = %q; want 1", got["NoNewPrivs"])
	}
	if !strings.HasPrefix(got["raw"], "denied") {
		t.Errorf("root opened a raw socket (%q): NET_RAW is not dropped", got["raw"])
	}

	user := startApp(t, runtime.ContainerSpec{User: "1000:1000"})
	got = privs(t, user.ID)
	if got["CapEff"] != "0000000000000000" || !strings.HasPrefix(got["setuid0"], "denied") || got["NoNewPrivs"] != "1" {
		t.Errorf("user 1000: %v; want no capabilities, setuid(0) denied, no_new_privs", got)
	}

	// The same probe sees a capability that was granted: the checks above can fail.
	raw := startApp(t, runtime.ContainerSpec{CapAdd: []string{"cap_net_raw"}})
	got = privs(t, raw.ID)
	if got["raw"] != "ok" || got["CapEff"] != capEff(t, append(slices.Clone(runtime.DefaultCapabilities), "NET_RAW")) {
		t.Errorf("with CapAdd NET_RAW: %v; want a raw socket and CapEff with bit 13", got)
	}
}

// TestContainerLimits reads the limits back from Docker: the defaults for
// a spec without any, the spec's own otherwise; a capability Linux does
// not have (or ALL) is refused before any call.
func TestContainerLimits(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, time.Minute)
	def := runtime.DefaultConfig()
	for _, tc := range []struct {
		spec      runtime.ContainerSpec
		mem, cpus int64
	}{
		{runtime.ContainerSpec{}, def.DefaultMemoryBytes, def.DefaultNanoCPUs},
		{runtime.ContainerSpec{MemoryBytes: 1 << 30, NanoCPUs: 2e9}, 1 << 30, 2e9},
	} {
		c := startApp(t, tc.spec)
		cj, err := rt.Docker().ContainerInspect(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		hc := cj.HostConfig
		if hc.Memory != tc.mem || hc.NanoCPUs != tc.cpus || hc.PidsLimit == nil || *hc.PidsLimit != def.PidsLimit {
			t.Errorf("limits: memory %d cpus %d pids %v; want %d %d %d", hc.Memory, hc.NanoCPUs, hc.PidsLimit, tc.mem, tc.cpus, def.PidsLimit)
		}
		added := make([]string, len(hc.CapAdd))
		for i, c := range hc.CapAdd {
			added[i] = strings.TrimPrefix(c, "CAP_") // Docker keeps them as CAP_X
		}
		if !slices.Equal(hc.CapDrop, []string{"ALL"}) || !slices.Equal(added, runtime.Capabilities(nil)) ||
			!slices.Contains(hc.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("confinement: drop %v add %v security %v", hc.CapDrop, hc.CapAdd, hc.SecurityOpt)
		}
	}
	for _, bad := range []string{"ALL", "cap_all", "NET RAW", ""} {
		if _, err := runtime.DeadRuntime(t).CreateAndStart(ctx, runtime.ContainerSpec{Name: "dmtest-cap", Image: "x", CapAdd: []string{bad}}); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("CapAdd %q: %v; want ErrInvalid", bad, err)
		}
	}
}

// TestWorkspacesIsolated attacks one workspace from another's container,
// on a guarded host (package scripts/guardtest: a Docker engine of the
// test's own in a network namespace, with the host guard of
// scripts/metadata-guard.sh applied there, as on a droplet). The test
// re-runs itself inside that host, where discovery runs as on a node: the
// attacker reaches its neighbour by address and by its discovery name
// (the DNS server on the gateway, the forwarder on the virtual address),
// and cannot open a connection to the other workspace's container, neither
// by its address nor through the port it publishes on the node's private
// address, which the host itself reaches, and which answers the attacker
// once the guard's hooks are removed.
func TestWorkspacesIsolated(t *testing.T) {
	t.Parallel()
	if !guardtest.Inside() {
		h := guardtest.Start(t)
		out, err := h.Command(testCtx(t, 10*time.Minute), "^TestWorkspacesIsolated$").CombinedOutput()
		t.Logf("inside the guarded host (%s):\n%s", strings.TrimSpace(h.GuardOutput), out)
		if err != nil || !strings.Contains(string(out), "--- PASS: TestWorkspacesIsolated") {
			t.Fatalf("inside the guarded host: %v", err)
		}
		return
	}
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, 5*time.Minute)
	prefix := runtimetest.TestContainerName(t)
	m, err := discovery.New(discovery.Config{NetworkName: func(ws string) string { return prefix + "-" + ws }}, discoveryNets{rt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	scopeA := discovery.Scope{Workspace: "aaaaaa", Project: "shop", Env: "prod"}
	attach := func(ws string) discovery.Attachment {
		att, err := m.Network(ctx, ws)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rt.RemoveNetwork(testCtx(t, time.Minute), att.Network) })
		return att
	}
	a, b := attach(scopeA.Workspace), attach("bbbbbb")
	onA := runtime.ContainerSpec{Network: a.Network, DNS: []string{a.DNS}, DNSSearch: []string{discovery.SearchDomain(scopeA)}}
	attacker := startApp(t, onA)
	neighbour := startApp(t, onA)
	victim := startApp(t, runtime.ContainerSpec{Network: b.Network, PublishIP: guardtest.PrivateIP})
	published := fmt.Sprintf("%s:%d", guardtest.PrivateIP, victim.HostPort)
	m.Update(discovery.Catalog{
		Services: []discovery.Service{{Scope: scopeA, Name: "web", Ports: []int{runtimetest.TestAppPort},
			Endpoints: []discovery.Endpoint{{Node: "n1", Local: true, IP: netip.MustParseAddr(neighbour.IP)}}}},
		Callers: map[netip.Addr]discovery.Scope{netip.MustParseAddr(attacker.IP): scopeA},
	})
	// The host reaches the published port: the probe below can fail.
	if code, body := runtimetest.HTTPGet("http://" + published + "/"); code != 200 {
		t.Fatalf("the host cannot reach the published port %s: %d %s", published, code, body)
	}
	probe := func(addr string) runtime.ExecResult {
		res, err := rt.Exec(ctx, attacker.ID, []string{"/testapp", "probe", addr})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	vip, ok := m.ServiceAddr(scopeA.Workspace, "shop/prod/web")
	if !ok {
		t.Fatal("web has no virtual address")
	}
	for _, addr := range []string{fmt.Sprintf("%s:%d", neighbour.IP, runtimetest.TestAppPort), fmt.Sprintf("%s:%d", vip, runtimetest.TestAppPort), fmt.Sprintf("web:%d", runtimetest.TestAppPort)} {
		if res := probe(addr); res.ExitCode != 0 {
			t.Errorf("same workspace, %s: %s", addr, res.Output)
		}
	}
	for _, addr := range []string{fmt.Sprintf("%s:%d", victim.IP, runtimetest.TestAppPort), published} {
		if res := probe(addr); res.ExitCode == 0 || !strings.HasPrefix(res.Output, "fail") {
			t.Errorf("another workspace's container answered at %s: %s", addr, res.Output)
		}
	}
	// Without the guard's hooks the published port answers (Docker's own
	// isolation between bridges still stops the direct address): the
	// guard is what closes it.
	guardtest.Unguard(t)
	if res := probe(published); res.ExitCode != 0 {
		t.Errorf("without the guard, the published port %s does not answer either: the probe proves nothing: %s", published, res.Output)
	}
}

// discoveryNets adapts the runtime's networks to discovery.Networks, as
// the agent does.
type discoveryNets struct{ rt *runtime.Runtime }

func (d discoveryNets) NetworkByName(ctx context.Context, name string) (discovery.NetworkInfo, bool, error) {
	info, ok, err := d.rt.NetworkByName(ctx, name)
	if err != nil || !ok {
		return discovery.NetworkInfo{}, ok, err
	}
	sub, err := netip.ParsePrefix(info.Subnet)
	return discovery.NetworkInfo{Name: info.Name, Subnet: sub, Bridge: info.Bridge}, err == nil, err
}

func (d discoveryNets) CreateNetwork(ctx context.Context, s discovery.NetworkSpec) (discovery.NetworkInfo, error) {
	info, err := d.rt.CreateNetwork(ctx, runtime.NetworkSpec{Name: s.Name, Subnet: s.Subnet.String(), Gateway: s.Gateway.String(),
		IPRange: s.Containers.String(), Labels: s.Labels})
	if errors.Is(err, runtime.ErrSubnetTaken) {
		return discovery.NetworkInfo{}, fmt.Errorf("%w: %v", discovery.ErrSubnetTaken, err)
	}
	if err != nil {
		return discovery.NetworkInfo{}, err
	}
	return discovery.NetworkInfo{Name: info.Name, Subnet: s.Subnet, Bridge: info.Bridge}, nil
}

func (d discoveryNets) RemoveNetwork(ctx context.Context, name string) error {
	return d.rt.RemoveNetwork(ctx, name)
}
