package discovery

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"sync"
)

// Plan is the address layout of one workspace network on one node: a /23
// whose lower /24 Docker gives to containers and whose upper /24 holds the
// services' virtual addresses, never given to a container.
type Plan struct {
	// Workspace is the workspace id; Name the Docker network's name.
	Workspace, Name string
	Subnet          netip.Prefix
	// Gateway is the bridge's own address: the containers' DNS server.
	Gateway netip.Addr
	// Containers is the range Docker assigns container addresses from.
	Containers netip.Prefix
	// Services is the range of virtual service addresses.
	Services netip.Prefix
}

// planAt is the index-th /23 of pool (a /16 or wider prefix).
func planAt(pool netip.Prefix, index int) (Plan, error) {
	if !pool.Addr().Is4() || pool.Bits() > 22 {
		return Plan{}, fmt.Errorf("discovery pool %s: want an IPv4 prefix of /22 or wider", pool)
	}
	count := 1 << (23 - pool.Bits())
	if index < 0 || index >= count {
		return Plan{}, fmt.Errorf("discovery pool %s: no network %d (it has %d)", pool, index, count)
	}
	b := pool.Masked().Addr().As4()
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n += uint32(index) << 9
	at := func(off uint32) netip.Addr {
		v := n + off
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	return Plan{
		Subnet:     netip.PrefixFrom(at(0), 23),
		Gateway:    at(1),
		Containers: netip.PrefixFrom(at(0), 24),
		Services:   netip.PrefixFrom(at(256), 24),
	}, nil
}

// planCount is how many networks pool holds.
func planCount(pool netip.Prefix) int { return 1 << (23 - pool.Bits()) }

// firstIndex is where the search for a free network for name starts, so
// that a network keeps its subnet across agent restarts when it can.
func firstIndex(name string, count int) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % uint32(count))
}

// vipTable gives each service of one network a stable virtual address in
// the plan's Services range. It is safe for concurrent use (the DNS
// server reads it while the catalog changes).
type vipTable struct {
	mu    sync.Mutex
	base  netip.Addr
	byKey map[string]netip.Addr
	used  map[netip.Addr]bool
}

func newVIPTable(p Plan) *vipTable {
	return &vipTable{base: p.Services.Addr(), byKey: map[string]netip.Addr{}, used: map[netip.Addr]bool{}}
}

// vipSlots is how many addresses of the /24 are used (.1 to .254: .255 is
// the /23's broadcast address).
const vipSlots = 254

// addr returns the service's address, assigning one (from a hash of its
// key, then the next free one) on first use; ok is false when the range
// is full.
func (t *vipTable) addr(key string) (netip.Addr, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a, ok := t.byKey[key]; ok {
		return a, true
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	start := int(h.Sum32() % vipSlots)
	b := t.base.As4()
	for i := range vipSlots {
		b[3] = byte(1 + (start+i)%vipSlots)
		a := netip.AddrFrom4(b)
		if !t.used[a] {
			t.used[a], t.byKey[key] = true, a
			return a, true
		}
	}
	return netip.Addr{}, false
}

// lookup returns the service's address if it has one.
func (t *vipTable) lookup(key string) (netip.Addr, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.byKey[key]
	return a, ok
}

// keep forgets every service not in keys, freeing its address.
func (t *vipTable) keep(keys map[string]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, a := range t.byKey {
		if !keys[k] {
			delete(t.byKey, k)
			delete(t.used, a)
		}
	}
}
