package runtime_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
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

// testNetwork creates a bridge network on a free /24 for the test.
func testNetwork(t *testing.T, name string) {
	t.Helper()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, time.Minute)
	for i := range 64 {
		subnet := netip.MustParsePrefix(fmt.Sprintf("10.215.%d.0/24", (int(time.Now().UnixNano())+i)%256))
		_, err := rt.CreateNetwork(ctx, runtime.NetworkSpec{Name: name, Subnet: subnet.String(), Gateway: subnet.Addr().Next().String(), Labels: runtimetest.TestLabels(t)})
		if errors.Is(err, runtime.ErrSubnetTaken) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rt.RemoveNetwork(testCtx(t, time.Minute), name) })
		return
	}
	t.Fatal("no free test subnet")
}

// TestWorkspacesIsolated: a container on one workspace's network reaches
// a neighbour on its own network and cannot open a connection to a
// container on another workspace's network.
func TestWorkspacesIsolated(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	a, b := runtimetest.TestContainerName(t)+"-a", runtimetest.TestContainerName(t)+"-b"
	testNetwork(t, a)
	testNetwork(t, b)
	attacker := startApp(t, runtime.ContainerSpec{Network: a})
	neighbour := startApp(t, runtime.ContainerSpec{Network: a})
	victim := startApp(t, runtime.ContainerSpec{Network: b})
	ctx := testCtx(t, time.Minute)
	probe := func(ip string) runtime.ExecResult {
		res, err := rt.Exec(ctx, attacker.ID, []string{"/testapp", "probe", fmt.Sprintf("%s:%d", ip, runtimetest.TestAppPort)})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := probe(neighbour.IP); res.ExitCode != 0 {
		t.Fatalf("same workspace: %s", res.Output)
	}
	if res := probe(victim.IP); res.ExitCode == 0 || !strings.HasPrefix(res.Output, "fail") {
		t.Fatalf("another workspace's container %s answered: %s", victim.IP, res.Output)
	}
}
