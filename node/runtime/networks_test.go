package runtime_test

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
)

// TestWorkspaceNetwork creates a bridge network with a given layout, puts
// a container on it with its own resolver and search domain, and reads
// the container's address back; a second network on the same subnet is
// refused with ErrSubnetTaken.
func TestWorkspaceNetwork(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, 2*time.Minute)
	name := runtimetest.TestContainerName(t) + "-net"
	var info runtime.NetworkInfo
	var subnet netip.Prefix
	for i := range 64 {
		subnet = netip.MustParsePrefix(fmt.Sprintf("10.214.%d.0/24", (int(time.Now().UnixNano())+i)%256))
		gw := subnet.Addr().Next()
		var err error
		info, err = rt.CreateNetwork(ctx, runtime.NetworkSpec{Name: name, Subnet: subnet.String(), Gateway: gw.String(),
			IPRange: netip.PrefixFrom(subnet.Addr(), 25).String(), Labels: runtimetest.TestLabels(t)})
		if errors.Is(err, runtime.ErrSubnetTaken) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	if info.ID == "" {
		t.Fatal("no free test subnet")
	}
	t.Cleanup(func() { _ = rt.RemoveNetwork(ctx, name) })
	if info.Subnet != subnet.String() || info.Bridge != "br-"+info.ID[:12] {
		t.Fatalf("network = %+v; want subnet %s", info, subnet)
	}
	if got, ok, err := rt.NetworkByName(ctx, name); err != nil || !ok || got != info {
		t.Fatalf("NetworkByName = %+v %v %v", got, ok, err)
	}
	if list, err := rt.ListNetworks(ctx, runtimetest.TestLabels(t)); err != nil || len(list) != 1 || list[0] != info {
		t.Fatalf("ListNetworks by the test's labels = %+v, %v; want just %s", list, err, name)
	}
	if _, ok, err := rt.NetworkByName(ctx, name+"-none"); err != nil || ok {
		t.Fatalf("a missing network: %v %v", ok, err)
	}
	if _, err := rt.CreateNetwork(ctx, runtime.NetworkSpec{Name: name + "-2", Subnet: subnet.String(), Labels: runtimetest.TestLabels(t)}); !errors.Is(err, runtime.ErrSubnetTaken) {
		_ = rt.RemoveNetwork(ctx, name+"-2")
		t.Fatalf("an overlapping subnet: %v; want ErrSubnetTaken", err)
	}

	gw := subnet.Addr().Next().String()
	c := startApp(t, runtime.ContainerSpec{Network: name, DNS: []string{gw}, DNSSearch: []string{"shop.prod.internal"}})
	ip, err := netip.ParseAddr(c.IP)
	if err != nil || !netip.PrefixFrom(subnet.Addr(), 25).Contains(ip) {
		t.Fatalf("container address %q outside the network's container range", c.IP)
	}
	cj, err := rt.Docker().ContainerInspect(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(cj.HostConfig.NetworkMode) != name || len(cj.HostConfig.DNS) != 1 || cj.HostConfig.DNS[0] != gw || cj.HostConfig.DNSSearch[0] != "shop.prod.internal" {
		t.Fatalf("host config: mode %s dns %v search %v", cj.HostConfig.NetworkMode, cj.HostConfig.DNS, cj.HostConfig.DNSSearch)
	}
	if _, err := rt.CreateAndStart(ctx, runtime.ContainerSpec{Name: runtimetest.TestContainerName(t), Image: c.Image, DNS: []string{"not-an-ip"}}); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("a bad DNS server: %v; want ErrInvalid", err)
	}
}
