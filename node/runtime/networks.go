package runtime

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
)

// ErrSubnetTaken is a network whose subnet overlaps one the engine has.
var ErrSubnetTaken = errors.New("subnet overlaps another network")

// NetworkSpec is a bridge network to create: one workspace's network on
// this node (the discovery package chooses its layout).
type NetworkSpec struct {
	Name string
	// Subnet, Gateway and IPRange (the part containers get addresses from)
	// in CIDR / address form.
	Subnet, Gateway, IPRange string
	Labels                   map[string]string
}

// NetworkInfo is an existing network.
type NetworkInfo struct {
	ID, Name string
	// Subnet is its first IPv4 subnet ("" when it has none).
	Subnet string
	// Bridge is the host's interface of the network.
	Bridge string
}

const bridgeNameOption = "com.docker.network.bridge.name"

func networkInfo(n network.Inspect) NetworkInfo {
	info := NetworkInfo{ID: n.ID, Name: n.Name, Bridge: n.Options[bridgeNameOption]}
	if info.Bridge == "" && len(n.ID) >= 12 {
		info.Bridge = "br-" + n.ID[:12]
	}
	for _, c := range n.IPAM.Config {
		if !strings.Contains(c.Subnet, ":") {
			info.Subnet = c.Subnet
			break
		}
	}
	return info
}

// NetworkByName finds a network by its exact name; ok is false when there
// is none.
func (r *Runtime) NetworkByName(ctx context.Context, name string) (NetworkInfo, bool, error) {
	if err := checkName("network", name, containerNamePattern); err != nil {
		return NetworkInfo{}, false, err
	}
	n, err := r.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return NetworkInfo{}, false, nil
	}
	if err != nil {
		return NetworkInfo{}, false, fmt.Errorf("inspect network %s: %w", name, err)
	}
	if n.Name != name { // an id prefix, not the name
		return NetworkInfo{}, false, nil
	}
	return networkInfo(n), true, nil
}

// CreateNetwork creates a bridge network with the given layout. A subnet
// that overlaps another network is an error wrapping ErrSubnetTaken, so
// the caller can try the next one.
func (r *Runtime) CreateNetwork(ctx context.Context, s NetworkSpec) (NetworkInfo, error) {
	if err := checkName("network", s.Name, containerNamePattern); err != nil {
		return NetworkInfo{}, err
	}
	if err := checkLabels(s.Labels); err != nil {
		return NetworkInfo{}, fmt.Errorf("network %s: %w", s.Name, err)
	}
	labels := map[string]string{LabelManaged: "true"}
	for k, v := range s.Labels {
		labels[k] = v
	}
	created, err := r.cli.NetworkCreate(ctx, s.Name, network.CreateOptions{
		Driver: "bridge",
		IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: s.Subnet, Gateway: s.Gateway, IPRange: s.IPRange}}},
		Labels: labels,
	})
	if err != nil {
		if strings.Contains(err.Error(), "overlaps") {
			return NetworkInfo{}, fmt.Errorf("create network %s on %s: %w (%v)", s.Name, s.Subnet, ErrSubnetTaken, err)
		}
		if cerrdefs.IsConflict(err) || strings.Contains(err.Error(), "already exists") {
			if info, ok, ierr := r.NetworkByName(ctx, s.Name); ierr == nil && ok {
				return info, nil // another agent of this engine made it first
			}
		}
		return NetworkInfo{}, fmt.Errorf("create network %s: %w", s.Name, err)
	}
	n, err := r.cli.NetworkInspect(ctx, created.ID, network.InspectOptions{})
	if err != nil {
		return NetworkInfo{}, fmt.Errorf("inspect network %s: %w", s.Name, err)
	}
	return networkInfo(n), nil
}

// RemoveNetwork removes a network; one that is gone already is not an error.
func (r *Runtime) RemoveNetwork(ctx context.Context, name string) error {
	err := r.cli.NetworkRemove(ctx, name)
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("remove network %s: %w", name, err)
}

// ListNetworks returns the networks carrying all the given labels (an
// empty value matches any value), sorted by name.
func (r *Runtime) ListNetworks(ctx context.Context, labels map[string]string) ([]NetworkInfo, error) {
	if err := checkLabels(labels); err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	list, err := r.cli.NetworkList(ctx, network.ListOptions{Filters: labelFilters(labels)})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	out := make([]NetworkInfo, 0, len(list))
	for _, n := range list {
		out = append(out, networkInfo(n))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
