package cloud

import (
	"context"
	"fmt"
	"strings"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// VPCRange is the private range of every cluster's VPC.
const VPCRange = "10.110.0.0/20"

// Network is what the shape needs of DigitalOcean (cloudops.DigitalOcean).
type Network interface {
	EnsureVPC(ctx context.Context, name, region, ipRange string) (cloudops.VPC, error)
	EnsureFirewall(ctx context.Context, spec cloudops.FirewallSpec) (cloudops.Firewall, error)
}

// ClusterTag is the DigitalOcean tag on every droplet of the cluster; the
// firewall applies by it.
func ClusterTag(s raftfsm.Settings) string {
	return "dropmesh-" + s.ClusterName + "-" + s.ClusterID[:min(8, len(s.ClusterID))]
}

// Shape ensures the cluster's VPC and firewall, once per leadership and
// settings (regions, cluster id), each through an intent.
type Shape struct {
	src     Source
	intents *Intents
	ports   cloudops.Ports
	// cloudflareOnly limits the droplets' 80 and 443 to Cloudflare's
	// published ranges (every public record proxied).
	cloudflareOnly bool
	done           string // settings fingerprint the shape was ensured for
}

// NewShape makes the shape part of the cloud duty; ports are the agents'
// ports the firewall opens inside the VPC, cloudflareOnly limits the web
// ports to Cloudflare's ranges (the agent's --edge-cloudflare-only).
func NewShape(src Source, intents *Intents, ports cloudops.Ports, cloudflareOnly bool) *Shape {
	return &Shape{src: src, intents: intents, ports: ports, cloudflareOnly: cloudflareOnly}
}

// FirewallSpec is the cloud firewall the leader keeps on the cluster's
// droplets: cloudops.ClusterFirewall, with ports 80 and 443 limited to
// Cloudflare's published ranges when the shape is cloudflareOnly (the edge
// is then reachable only through Cloudflare, and a DNS-only host not at all).
func (sh *Shape) FirewallSpec(name, tag string) (cloudops.FirewallSpec, error) {
	spec := cloudops.ClusterFirewall(name, tag, sh.ports)
	if !sh.cloudflareOnly {
		return spec, nil
	}
	cf, err := cloudops.CloudflareRanges()
	if err != nil {
		return cloudops.FirewallSpec{}, fmt.Errorf("firewall %s: %w", name, err)
	}
	return cloudops.WithWebSources(spec, cf), nil
}

// Round ensures the VPC, then the firewall, unless done for these settings.
func (sh *Shape) Round(ctx context.Context, do Network) error {
	var st raftfsm.Settings
	sh.src.View(func(s *raftfsm.State) { st = s.Settings })
	if len(st.Regions) == 0 || st.ClusterID == "" {
		return nil
	}
	fp := st.ClusterID + strings.Join(st.Regions, ",")
	if sh.done == fp {
		return nil
	}
	name := st.ClusterName + "-vpc"
	err := sh.intents.Run(ctx, raftfsm.IntentEnsureVPC, name, nil, func(ctx context.Context) (raftfsm.CloudChanges, error) {
		v, err := do.EnsureVPC(ctx, name, st.Regions[0], VPCRange)
		if err != nil {
			return raftfsm.CloudChanges{}, err
		}
		return raftfsm.CloudChanges{VPC: &raftfsm.VPC{ID: v.ID, Name: v.Name, Region: v.Region, IPRange: v.IPRange}}, nil
	})
	if err != nil {
		return err
	}
	fwName := st.ClusterName + "-firewall"
	err = sh.intents.Run(ctx, raftfsm.IntentEnsureFirewall, fwName, nil, func(ctx context.Context) (raftfsm.CloudChanges, error) {
		spec, err := sh.FirewallSpec(fwName, ClusterTag(st))
		if err != nil {
			return raftfsm.CloudChanges{}, err
		}
		fw, err := do.EnsureFirewall(ctx, spec)
		if err != nil {
			return raftfsm.CloudChanges{}, err
		}
		return raftfsm.CloudChanges{Firewall: &raftfsm.Firewall{ID: fw.ID, Name: fw.Name}}, nil
	})
	if err != nil {
		return err
	}
	sh.done = fp
	return nil
}
