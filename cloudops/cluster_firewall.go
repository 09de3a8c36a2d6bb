package cloudops

import (
	"slices"
	"strconv"
)

// Ports are the agent's control ports, which only the cluster's own
// droplets may reach.
type Ports struct {
	API    int // agent API, default 9999
	Gossip int // memberlist, tcp and udp, default 7946
	Raft   int // raft transport, default 7947
	Mesh   int // service discovery's node-to-node forwarder, default 7948
}

// DefaultPorts returns 9999, 7946, 7947 and 7948.
func DefaultPorts() Ports { return Ports{API: 9999, Gossip: 7946, Raft: 7947, Mesh: 7948} }

// everywhere is every IPv4 and IPv6 address, as firewall sources.
func everywhere() []string { return []string{"0.0.0.0/0", "::/0"} }

// ClusterFirewall is the cloud firewall of a cluster, applied to the
// droplets tagged clusterTag: HTTP and HTTPS from anywhere; the agent API,
// gossip (tcp and udp), raft and the discovery forwarder only from droplets carrying clusterTag
// (DigitalOcean's sources.tags), not from the VPC's range, which other
// droplets of the account (and whatever runs on them) share; no SSH; all
// egress allowed. Zero ports take DefaultPorts. Validation happens in
// EnsureFirewall, so a bad tag is refused there.
func ClusterFirewall(name, clusterTag string, p Ports) FirewallSpec {
	d := DefaultPorts()
	if p.API == 0 {
		p.API = d.API
	}
	if p.Gossip == 0 {
		p.Gossip = d.Gossip
	}
	if p.Raft == 0 {
		p.Raft = d.Raft
	}
	if p.Mesh == 0 {
		p.Mesh = d.Mesh
	}
	members := func(proto string, port int) FirewallRule {
		return FirewallRule{Protocol: proto, Ports: strconv.Itoa(port), Tags: []string{clusterTag}}
	}
	return FirewallSpec{
		Name: name,
		Tags: []string{clusterTag},
		Inbound: []FirewallRule{
			{Protocol: "tcp", Ports: "80", Addresses: everywhere()},
			{Protocol: "tcp", Ports: "443", Addresses: everywhere()},
			members("tcp", p.API),
			members("tcp", p.Gossip),
			members("udp", p.Gossip),
			members("tcp", p.Raft),
			members("tcp", p.Mesh),
		},
		Outbound: []FirewallRule{
			{Protocol: "tcp", Ports: "all", Addresses: everywhere()},
			{Protocol: "udp", Ports: "all", Addresses: everywhere()},
			{Protocol: "icmp", Addresses: everywhere()},
		},
	}
}

// WithSSH returns a copy of spec that also lets sources (nil: anywhere)
// reach port 22, for the base snapshot build only.
func WithSSH(spec FirewallSpec, sources []string) FirewallSpec {
	if len(sources) == 0 {
		sources = everywhere()
	}
	out := spec
	out.Tags = slices.Clone(spec.Tags)
	out.Inbound = append(slices.Clone(spec.Inbound), FirewallRule{Protocol: "tcp", Ports: "22", Addresses: slices.Clone(sources)})
	out.Outbound = slices.Clone(spec.Outbound)
	return out
}
