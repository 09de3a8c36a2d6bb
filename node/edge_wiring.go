package node

import (
	"fmt"

	"github.com/dropmesh/dropmesh/cloudops"
)

// clusterFirewallSpec is the cloud firewall the leader keeps on the
// cluster's droplets: cloudops.ClusterFirewall, with ports 80 and 443
// limited to Cloudflare's published ranges when EdgeCloudflareOnly is set
// (every public record proxied: the edge is then reachable only through
// Cloudflare, and a DNS-only host not at all).
func (a *Agent) clusterFirewallSpec(name, tag string) (cloudops.FirewallSpec, error) {
	spec := cloudops.ClusterFirewall(name, tag, cloudops.Ports{API: a.cfg.APIPort, Gossip: a.cfg.GossipPort, Raft: a.cfg.RaftPort, Mesh: a.cfg.MeshPort})
	if !a.cfg.EdgeCloudflareOnly {
		return spec, nil
	}
	cf, err := cloudops.CloudflareRanges()
	if err != nil {
		return cloudops.FirewallSpec{}, fmt.Errorf("firewall %s: %w", name, err)
	}
	return cloudops.WithWebSources(spec, cf), nil
}
