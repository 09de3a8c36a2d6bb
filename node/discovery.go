package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	goruntime "runtime"
	"strconv"
	"time"

	"github.com/dropmesh/dropmesh/node/discovery"
	"github.com/dropmesh/dropmesh/node/pki"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// DefaultMeshPort is the port of a node's discovery gateway on its private
// address: other nodes' forwarders reach its containers through it.
const DefaultMeshPort = 7948

// discoveryRebuild bounds how often the catalog is rebuilt: at most every
// so often on a burst of changes, and at least every discoveryRefresh (a
// container that changed address without a state change).
const (
	discoveryRebuild = 200 * time.Millisecond
	discoveryRefresh = 2 * time.Second
)

// startDiscovery starts service discovery (package discovery) when the
// config asks for it: "on", or "auto"/"" when running as root on Linux
// (it binds port 53 on each workspace network and adds a local route for
// the services' addresses). In auto mode a failure to start is logged and
// the agent runs without it: containers keep Docker's default bridge.
func (a *Agent) startDiscovery(ctx context.Context) error {
	mode := a.cfg.Discovery
	switch mode {
	case "off":
		return nil
	case "", "auto":
		if os.Geteuid() != 0 || goruntime.GOOS != "linux" {
			a.logger.Info("service discovery off: it needs root on Linux (services still reach stateful ones through injected addresses)")
			return nil
		}
	case "on":
	default:
		return fmt.Errorf("config: discovery %q: want auto, on or off", mode)
	}
	suffix := a.cfg.ContainerSuffix
	m, err := discovery.New(discovery.Config{
		MeshAddr:    net.JoinHostPort(a.cfg.AdvertiseIP, strconv.Itoa(a.meshPort())),
		MeshTLS:     a.meshTLS(),
		NetworkName: func(ws string) string { return "dropmesh-" + ws + suffix },
		Logger:      a.logger,
	}, discoveryNetworks{a.rt})
	if err != nil {
		if mode == "on" {
			return err
		}
		a.logger.Warn("service discovery off", "err", err)
		return nil
	}
	a.discovery = m
	a.goRun(ctx, "discovery", a.discoveryLoop)
	return nil
}

// meshTLS is the mutual TLS of the hop between nodes' forwarders and
// gateways: node certificates both ways, built as raft's are (raftTLS).
func (a *Agent) meshTLS() *discovery.MeshTLS {
	return &discovery.MeshTLS{
		Server: pki.ServerConfig(a.creds, a.verifier, tls.RequireAndVerifyClientCert),
		Client: func(nodeID string) *tls.Config { return pki.ClientConfig(a.creds, a.verifier, nodeID) },
		PeerID: a.verifier.VerifyPeerFrom,
		Serial: a.creds.Serial,
	}
}

func (a *Agent) meshPort() int {
	if a.cfg.MeshPort > 0 {
		return a.cfg.MeshPort
	}
	return DefaultMeshPort
}

// discoveryLoop keeps the discovery catalog up to date until ctx ends, then
// stops discovery.
func (a *Agent) discoveryLoop(ctx context.Context) {
	defer a.discovery.Close()
	tick := time.NewTicker(discoveryRefresh)
	defer tick.Stop()
	for {
		changed := a.fsm.Changed()
		if c, err := a.discoveryCatalog(ctx); err == nil {
			a.discovery.Update(c)
			a.discovery.Prune(ctx, a.workspaceHere(c))
		} else if ctx.Err() == nil {
			a.logger.Warn("discovery: catalog", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
		select { // let a burst of changes settle
		case <-ctx.Done():
			return
		case <-time.After(discoveryRebuild):
		}
	}
}

// discoveryCatalog is what discovery needs from the state and this node's
// containers: every service's ports and healthy (or degraded) instances,
// local ones at their container address, remote ones through their node's
// gateway, and the scope of every local container.
func (a *Agent) discoveryCatalog(ctx context.Context) (discovery.Catalog, error) {
	list, err := a.rt.List(ctx, a.ownLabels(nil))
	if err != nil {
		return discovery.Catalog{}, err
	}
	ips := map[string]netip.Addr{}
	cat := discovery.Catalog{Callers: map[netip.Addr]discovery.Scope{}}
	for _, c := range list {
		ip, err := netip.ParseAddr(c.IP)
		if err != nil || !c.Running {
			continue
		}
		ips[c.Name], ips[c.ID] = ip, ip
		cat.Callers[ip] = discovery.Scope{Workspace: c.Labels[runtime.LabelWorkspace], Project: c.Labels[runtime.LabelProject], Env: c.Labels[runtime.LabelEnv]}
	}
	meshPort := strconv.Itoa(a.meshPort())
	a.fsm.View(func(s *raftfsm.State) {
		for _, key := range raftfsm.SortedKeys(s.Services) {
			svc := s.Services[key]
			ds := discovery.Service{Scope: discovery.Scope{Workspace: svc.WorkspaceID, Project: svc.Project, Env: svc.Env}, Name: svc.Name}
			if svc.Spec.Port > 0 {
				ds.Ports = append([]int{svc.Spec.Port}, svc.Spec.Ports...)
			}
			for _, in := range s.ServiceInstances(key) {
				if in.Health != raftfsm.HealthHealthy && in.Health != raftfsm.HealthDegraded {
					continue
				}
				if in.Node == a.cfg.NodeID {
					ip, ok := ips[in.Container]
					if !ok {
						ip, ok = ips[in.ContainerID]
					}
					if ok {
						ds.Endpoints = append(ds.Endpoints, discovery.Endpoint{Node: in.Node, Local: true, IP: ip})
					}
					continue
				}
				if n, ok := s.Nodes[in.Node]; ok && n.PrivateIP != "" && n.Status == raftfsm.NodeActive {
					ds.Endpoints = append(ds.Endpoints, discovery.Endpoint{Node: in.Node, Peer: net.JoinHostPort(n.PrivateIP, meshPort)})
				}
			}
			cat.Services = append(cat.Services, ds)
		}
	})
	return cat, nil
}

// workspaceHere tells whether workspace ws has anything on this node: an
// instance in the state or a container (a cron run, one being replaced).
func (a *Agent) workspaceHere(c discovery.Catalog) func(ws string) bool {
	here := map[string]bool{}
	for _, sc := range c.Callers {
		here[sc.Workspace] = true
	}
	a.fsm.View(func(s *raftfsm.State) {
		for _, in := range s.Instances {
			if in.Node != a.cfg.NodeID {
				continue
			}
			if svc, ok := s.Services[in.Service]; ok {
				here[svc.WorkspaceID] = true
			}
		}
	})
	return func(ws string) bool { return here[ws] }
}

// attachNetwork puts a container on its workspace's network, with the
// network's discovery resolver and its project/env as search domain. It
// does nothing when discovery is off.
func (a *Agent) attachNetwork(ctx context.Context, cs *runtime.ContainerSpec, svc raftfsm.Service) error {
	if a.discovery == nil {
		return nil
	}
	att, err := a.discovery.Network(ctx, svc.WorkspaceID)
	if err != nil {
		return fmt.Errorf("workspace network of %s: %w", svc.Key, err)
	}
	cs.Network, cs.DNS = att.Network, []string{att.DNS}
	cs.DNSSearch = []string{discovery.SearchDomain(discovery.Scope{Workspace: svc.WorkspaceID, Project: svc.Project, Env: svc.Env})}
	return nil
}

// discoveryNetworks adapts the runtime's networks to discovery.Networks.
type discoveryNetworks struct{ rt *runtime.Runtime }

func (d discoveryNetworks) NetworkByName(ctx context.Context, name string) (discovery.NetworkInfo, bool, error) {
	info, ok, err := d.rt.NetworkByName(ctx, name)
	if err != nil || !ok {
		return discovery.NetworkInfo{}, ok, err
	}
	return toDiscoveryNetwork(info)
}

func (d discoveryNetworks) CreateNetwork(ctx context.Context, s discovery.NetworkSpec) (discovery.NetworkInfo, error) {
	info, err := d.rt.CreateNetwork(ctx, runtime.NetworkSpec{Name: s.Name, Subnet: s.Subnet.String(), Gateway: s.Gateway.String(),
		IPRange: s.Containers.String(), Labels: s.Labels})
	if errors.Is(err, runtime.ErrSubnetTaken) {
		return discovery.NetworkInfo{}, fmt.Errorf("%w: %v", discovery.ErrSubnetTaken, err)
	}
	if err != nil {
		return discovery.NetworkInfo{}, err
	}
	out, _, err := toDiscoveryNetwork(info)
	return out, err
}

func (d discoveryNetworks) RemoveNetwork(ctx context.Context, name string) error {
	return d.rt.RemoveNetwork(ctx, name)
}

func toDiscoveryNetwork(info runtime.NetworkInfo) (discovery.NetworkInfo, bool, error) {
	p, err := netip.ParsePrefix(info.Subnet)
	if err != nil {
		return discovery.NetworkInfo{}, false, fmt.Errorf("network %s: subnet %q: %w", info.Name, info.Subnet, err)
	}
	return discovery.NetworkInfo{Name: info.Name, Subnet: p, Bridge: info.Bridge}, true, nil
}
