package cloudops

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"time"

	"github.com/digitalocean/godo"
)

// VPC is a DigitalOcean virtual private cloud: the private network the
// cluster's droplets talk over.
type VPC struct {
	ID        string
	Name      string
	Region    string
	IPRange   string
	Default   bool
	CreatedAt time.Time
}

// VPCs is what the leader does with VPCs.
type VPCs interface {
	// EnsureVPC returns the VPC called name, creating it if needed. One of
	// that name in another region or with another range (ipRange "" accepts
	// any) is an error matching ErrConflict: a VPC cannot be moved.
	EnsureVPC(ctx context.Context, name, region, ipRange string) (VPC, error)
}

func vpcFrom(v *godo.VPC) VPC {
	return VPC{ID: v.ID, Name: v.Name, Region: v.RegionSlug, IPRange: v.IPRange, Default: v.Default, CreatedAt: v.CreatedAt}
}

// EnsureVPC implements VPCs.
func (do *DigitalOcean) EnsureVPC(ctx context.Context, name, region, ipRange string) (VPC, error) {
	op := fmt.Sprintf("ensure vpc %q", name)
	if do.err != nil {
		return VPC{}, fmt.Errorf("%s: %w", op, do.err)
	}
	if err := checkVPC(name, region, ipRange); err != nil {
		return VPC{}, fmt.Errorf("%s: %w", op, err)
	}
	var out VPC
	err := again(ctx, do.retry, do.log, op, func() error {
		vs, err := listAll(ctx, do.cfg.PageSize, do.c.VPCs.List)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if v.Name != name {
				continue
			}
			out = vpcFrom(v)
			if out.Region != region || (ipRange != "" && out.IPRange != ipRange) {
				return fmt.Errorf("%w: it exists in %s with range %s, wanted %s with %q", ErrConflict, out.Region, out.IPRange, region, ipRange)
			}
			return nil
		}
		v, _, err := do.c.VPCs.Create(ctx, &godo.VPCCreateRequest{Name: name, RegionSlug: region, IPRange: ipRange,
			Description: "dropmesh cluster network"})
		if err != nil {
			return err
		}
		out = vpcFrom(v)
		do.log.Info("vpc created", "vpc", name, "id", out.ID, "region", region, "range", out.IPRange)
		return nil
	})
	if err != nil {
		return VPC{}, opError(op, err)
	}
	return out, nil
}

// vpcNameRe is DigitalOcean's pattern for VPC names (no '_', unlike
// firewalls).
var vpcNameRe = regexp.MustCompile(`^[a-zA-Z0-9.-]{1,255}$`)

func checkVPC(name, region, ipRange string) error {
	if !vpcNameRe.MatchString(name) {
		return invalid("vpc name %q: use letters, digits, '.' and '-'", name)
	}
	if err := checkRegion(region); err != nil {
		return err
	}
	if ipRange == "" {
		return nil
	}
	p, err := netip.ParsePrefix(ipRange)
	if err != nil || !p.Addr().Is4() || !p.Addr().IsPrivate() || p.Bits() < 16 || p.Bits() > 28 || p.Masked() != p {
		return invalid("ip range %q: use a private IPv4 network between /16 and /28, like 10.110.0.0/20", ipRange)
	}
	return nil
}
