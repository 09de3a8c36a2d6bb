package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// NetworkSpec is a workspace network to create.
type NetworkSpec struct {
	Name       string
	Subnet     netip.Prefix
	Gateway    netip.Addr
	Containers netip.Prefix
	Labels     map[string]string
}

// NetworkInfo is an existing network.
type NetworkInfo struct {
	Name   string
	Subnet netip.Prefix
	// Bridge is the host's interface of the network.
	Bridge string
}

// Networks is what discovery needs of the container engine (node/runtime
// implements it).
type Networks interface {
	// NetworkByName finds a network; ok is false when there is none.
	NetworkByName(ctx context.Context, name string) (info NetworkInfo, ok bool, err error)
	// CreateNetwork creates a bridge network; an error wrapping
	// ErrSubnetTaken means the subnet overlaps another network.
	CreateNetwork(ctx context.Context, spec NetworkSpec) (NetworkInfo, error)
	// RemoveNetwork removes a network; it fails while containers are on it.
	RemoveNetwork(ctx context.Context, name string) error
}

// ErrSubnetTaken is a subnet that overlaps a network the engine has.
var ErrSubnetTaken = errors.New("subnet overlaps another network")

// Config configures a Manager. Every field but MeshTLS has a default.
type Config struct {
	// Pool is where workspace networks take their /23 from. It must not
	// overlap the private network. Default 10.213.0.0/16 (128 networks).
	Pool netip.Prefix
	// NetworkName names the network of a workspace on this node
	// (default "dropmesh-<ws>").
	NetworkName func(ws string) string
	// MeshAddr is this node's gateway address (private IP and port); ""
	// runs no gateway (a single node).
	MeshAddr string
	// MeshTLS is the mutual TLS between this node's forwarders and other
	// nodes' gateways (required with MeshAddr).
	MeshTLS *MeshTLS
	// DNSPort is the port of the DNS servers on the gateways (0: 53, where
	// containers ask; tests use -1: an ephemeral port).
	DNSPort int
	// Upstream are the resolvers for names that are not services (default:
	// the host's /etc/resolv.conf).
	Upstream []string
	// DialTimeout bounds a connection to an instance (default 3s).
	DialTimeout time.Duration
	// PrepareBridge makes the Services range of a plan local on the
	// network's bridge, so the forwarders can listen on its addresses
	// (default: `ip route replace local RANGE dev BRIDGE`; needs root).
	PrepareBridge func(ctx context.Context, bridge string, services netip.Prefix) error
	Logger        *slog.Logger
}

// DefaultPool is Config.Pool's default.
var DefaultPool = netip.MustParsePrefix("10.213.0.0/16")

func (c *Config) defaults() error {
	if !c.Pool.IsValid() {
		c.Pool = DefaultPool
	}
	if _, err := planAt(c.Pool, 0); err != nil {
		return err
	}
	if c.NetworkName == nil {
		c.NetworkName = func(ws string) string { return "dropmesh-" + ws }
	}
	if c.MeshAddr != "" {
		if err := c.MeshTLS.validate(); err != nil {
			return err
		}
	}
	if c.Upstream == nil {
		c.Upstream = hostResolvers("/etc/resolv.conf")
	}
	switch {
	case c.DNSPort == 0:
		c.DNSPort = 53
	case c.DNSPort < 0:
		c.DNSPort = 0
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 3 * time.Second
	}
	if c.PrepareBridge == nil {
		c.PrepareBridge = routeLocal
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// routeLocal makes every address of services local on the bridge (Linux's
// "AnyIP"), so listeners can bind them and containers reach them.
func routeLocal(ctx context.Context, bridge string, services netip.Prefix) error {
	out, err := exec.CommandContext(ctx, "ip", "route", "replace", "local", services.String(), "dev", bridge, "table", "local").CombinedOutput()
	if err != nil {
		return fmt.Errorf("discovery: route %s to %s: %w (%s)", services, bridge, err, out)
	}
	return nil
}

// Attachment is how a container joins its workspace network.
type Attachment struct {
	// Network is the Docker network to put it on.
	Network string
	// DNS is its resolver (the network's gateway).
	DNS string
	// DNSAddr is the resolver's address with its port (tests).
	DNSAddr string
	// Plan is the network's layout.
	Plan Plan
}

// network is one workspace network with its servers.
type network struct {
	plan      Plan
	att       Attachment
	vips      *vipTable
	udp, tcp  *dns.Server
	listeners map[string]*listener // "vip:port"
	upstreams map[string]*upstream // service key
}

// Manager runs discovery on one node: the workspace networks' DNS servers
// and forwarders, and the node's gateway. It is safe for concurrent use.
type Manager struct {
	cfg     Config
	nets    Networks
	dialer  *dialer
	catalog atomic.Pointer[Catalog]
	gateway *Gateway

	mu       sync.Mutex
	networks map[string]*network // by workspace
	closed   bool
	conns    sync.WaitGroup // forwarded connections
}

// New starts a Manager (and its gateway when cfg.MeshAddr is set).
func New(cfg Config, nets Networks) (*Manager, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, nets: nets, networks: map[string]*network{}, dialer: &dialer{timeout: cfg.DialTimeout}}
	m.catalog.Store(&Catalog{})
	if cfg.MeshAddr != "" {
		ln, err := net.Listen("tcp", cfg.MeshAddr)
		if err != nil {
			return nil, fmt.Errorf("discovery: gateway on %s: %w", cfg.MeshAddr, err)
		}
		m.gateway = &Gateway{ln: ln, tls: cfg.MeshTLS, catalog: m.catalog.Load, log: cfg.Logger, timeout: cfg.DialTimeout}
		go m.gateway.serve()
		// Dial other gateways from the address this node's certificate
		// names (the gateways check it).
		var local *net.TCPAddr
		if a := ln.Addr().(*net.TCPAddr); !a.IP.IsUnspecified() {
			local = &net.TCPAddr{IP: a.IP}
		}
		m.dialer.pool = newMeshPool(cfg.MeshTLS, local, cfg.DialTimeout, cfg.Logger)
	}
	return m, nil
}

// GatewayAddr is where this node's gateway listens ("" without one).
func (m *Manager) GatewayAddr() string {
	if m.gateway == nil {
		return ""
	}
	return m.gateway.Addr().String()
}

// Network makes sure workspace ws has its network on this node, with its
// DNS server, and returns how a container joins it.
func (m *Manager) Network(ctx context.Context, ws string) (Attachment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Attachment{}, errors.New("discovery: closed")
	}
	if n, ok := m.networks[ws]; ok {
		return n.att, nil
	}
	name := m.cfg.NetworkName(ws)
	info, ok, err := m.nets.NetworkByName(ctx, name)
	if err != nil {
		return Attachment{}, err
	}
	var plan Plan
	if ok {
		if plan, err = m.planOf(info); err != nil {
			return Attachment{}, err
		}
	} else {
		if plan, info, err = m.create(ctx, ws, name); err != nil {
			return Attachment{}, err
		}
	}
	plan.Workspace, plan.Name = ws, name
	if err := m.cfg.PrepareBridge(ctx, info.Bridge, plan.Services); err != nil {
		return Attachment{}, err
	}
	n := &network{plan: plan, vips: newVIPTable(plan), listeners: map[string]*listener{}, upstreams: map[string]*upstream{}}
	if err := m.startDNS(n); err != nil {
		return Attachment{}, err
	}
	m.networks[ws] = n
	m.reconcile(n, m.catalog.Load())
	return n.att, nil
}

// planOf checks that an existing network has a plan's layout.
func (m *Manager) planOf(info NetworkInfo) (Plan, error) {
	for i := range planCount(m.cfg.Pool) {
		p, _ := planAt(m.cfg.Pool, i)
		if p.Subnet == info.Subnet {
			return p, nil
		}
	}
	return Plan{}, fmt.Errorf("discovery: network %s has subnet %s, not one of %s; remove it and deploy again", info.Name, info.Subnet, m.cfg.Pool)
}

// create makes the network on the first free /23, starting from a hash of its name.
func (m *Manager) create(ctx context.Context, ws, name string) (Plan, NetworkInfo, error) {
	count := planCount(m.cfg.Pool)
	start := firstIndex(name, count)
	for i := range count {
		p, _ := planAt(m.cfg.Pool, (start+i)%count)
		info, err := m.nets.CreateNetwork(ctx, NetworkSpec{Name: name, Subnet: p.Subnet, Gateway: p.Gateway, Containers: p.Containers,
			Labels: map[string]string{"dropmesh.workspace": ws}})
		if errors.Is(err, ErrSubnetTaken) {
			continue
		}
		if err != nil {
			return Plan{}, NetworkInfo{}, err
		}
		return p, info, nil
	}
	return Plan{}, NetworkInfo{}, fmt.Errorf("discovery: no free /23 left in %s for workspace %s", m.cfg.Pool, ws)
}

func (m *Manager) startDNS(n *network) error {
	r := &resolver{plan: n.plan, catalog: m.catalog.Load, upstream: m.cfg.Upstream, log: m.cfg.Logger, client: &dns.Client{Timeout: 2 * time.Second},
		vip: n.vips.lookup}
	addr := net.JoinHostPort(n.plan.Gateway.String(), strconv.Itoa(m.cfg.DNSPort))
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("discovery: DNS on %s: %w", addr, err)
	}
	bound := pc.LocalAddr().String()
	ln, err := net.Listen("tcp", bound)
	if err != nil {
		pc.Close()
		return fmt.Errorf("discovery: DNS on %s/tcp: %w", bound, err)
	}
	var started sync.WaitGroup
	started.Add(2)
	n.udp = &dns.Server{PacketConn: pc, Handler: r, NotifyStartedFunc: started.Done}
	n.tcp = &dns.Server{Listener: ln, Handler: r, NotifyStartedFunc: started.Done}
	go func() { _ = n.udp.ActivateAndServe() }()
	go func() { _ = n.tcp.ActivateAndServe() }()
	started.Wait() // so that Close can shut them down
	n.att = Attachment{Network: n.plan.Name, DNS: n.plan.Gateway.String(), DNSAddr: bound, Plan: n.plan}
	return nil
}

// Update replaces the catalog: names resolve to the new instances at once,
// and each network's forwarders follow (new services and ports get
// listeners, gone ones lose theirs; open connections stay).
func (m *Manager) Update(c Catalog) {
	c.Callers = maps.Clone(c.Callers)
	m.catalog.Store(&c)
	if m.dialer.pool != nil {
		peers := map[string]bool{}
		for _, s := range c.Services {
			for _, ep := range s.Endpoints {
				if !ep.Local {
					peers[ep.Node+"@"+ep.Peer] = true
				}
			}
		}
		m.dialer.pool.keep(peers)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.networks {
		m.reconcile(n, &c)
	}
}

// reconcile makes n's listeners match the catalog's services of its workspace.
func (m *Manager) reconcile(n *network, c *Catalog) {
	if m.closed {
		return
	}
	want := map[string]bool{}
	keys := map[string]bool{}
	for _, s := range c.Services {
		if s.Workspace != n.plan.Workspace {
			continue
		}
		key := s.Key()
		keys[key] = true
		vip, ok := n.vips.addr(key)
		if !ok {
			m.cfg.Logger.Warn("discovery: no virtual address left", "workspace", s.Workspace, "service", key)
			continue
		}
		up := n.upstreams[key]
		if up == nil {
			up = &upstream{ws: s.Workspace, key: key}
			n.upstreams[key] = up
		}
		eps := append([]Endpoint(nil), s.Endpoints...)
		up.endpoints.Store(&eps)
		for _, p := range s.Ports {
			addr := netip.AddrPortFrom(vip, uint16(p)).String()
			want[addr] = true
			if _, ok := n.listeners[addr]; ok {
				continue
			}
			ln, err := (&net.ListenConfig{KeepAlive: localKeepAlive}).Listen(context.Background(), "tcp", addr)
			if err != nil {
				m.cfg.Logger.Warn("discovery: listen", "addr", addr, "service", key, "err", err)
				continue
			}
			l := &listener{ln: ln, up: up, port: p, subnet: n.plan.Subnet, done: make(chan struct{})}
			n.listeners[addr] = l
			go l.serve(m.dialer, m.cfg.Logger, &m.conns)
		}
	}
	for addr, l := range n.listeners {
		if !want[addr] {
			l.ln.Close()
			delete(n.listeners, addr)
		}
	}
	for key := range n.upstreams {
		if !keys[key] {
			delete(n.upstreams, key)
		}
	}
	n.vips.keep(keys)
}

// Prune removes the networks of the workspaces for which keep is false:
// the Docker network first (the engine refuses while a container is on
// it, and then everything stays as it is), then its DNS server and
// forwarders. The agent calls it for workspaces with no instance on this
// node, so the pool's /23s are given back.
func (m *Manager) Prune(ctx context.Context, keep func(ws string) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for ws, n := range m.networks {
		if keep(ws) {
			continue
		}
		if err := m.nets.RemoveNetwork(ctx, n.plan.Name); err != nil {
			m.cfg.Logger.Debug("discovery: network kept", "network", n.plan.Name, "err", err)
			continue
		}
		n.stop()
		delete(m.networks, ws)
		m.cfg.Logger.Info("discovery: removed the network of a workspace with nothing on this node", "network", n.plan.Name)
	}
}

// stop shuts n's DNS server and listeners down.
func (n *network) stop() {
	_ = n.udp.Shutdown()
	_ = n.tcp.Shutdown()
	for _, l := range n.listeners {
		l.ln.Close()
		<-l.done
	}
}

// ServiceAddr is the virtual address of a service on workspace ws's
// network (tests and the benchmark).
func (m *Manager) ServiceAddr(ws, key string) (netip.Addr, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.networks[ws]
	if !ok {
		return netip.Addr{}, false
	}
	return n.vips.lookup(key)
}

// Close stops every server and listener and the mesh connections between
// nodes (cross-node streams with them); connections forwarded to local
// instances end when their peers close them.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	for _, n := range m.networks {
		n.stop()
	}
	m.networks = map[string]*network{}
	m.mu.Unlock()
	if m.gateway != nil {
		m.gateway.close()
		m.dialer.pool.close()
	}
	return nil
}
