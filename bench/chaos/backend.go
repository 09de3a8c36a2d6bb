package chaos

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/scripts"
)

// Backend runs the fake cloud's droplets as agent containers on the
// cluster's Docker network, the way local mode runs them as processes: the
// agent's settings come from the droplet's cloud-init user data, and the
// backend adds what belongs to this machine (addresses, the edge, the
// container suffix). A power-cycle kills the container and starts it again;
// delete and power-off stop it.
type Backend struct {
	c *Cluster

	mu       sync.Mutex
	droplets map[int]*Node
}

var _ fakeapi.DropletBackend = (*Backend)(nil)

// Start creates and starts the droplet's agent (and its data disk).
func (b *Backend) Start(ctx context.Context, d fakeapi.BackedDroplet) error {
	env, err := scripts.ParseUserData(d.UserData)
	if err != nil {
		return fmt.Errorf("droplet %s: %w", d.Name, err)
	}
	id := env["DROPMESH_NODE_ID"]
	if id == "" {
		return fmt.Errorf("droplet %s: its user data names no node", d.Name)
	}
	c := b.c
	n := &Node{ID: id, IP: d.PrivateIP, DropletID: d.ID, Container: c.prefix + "-" + id, Disk: c.prefix + "-" + id + "-disk", Volume: c.prefix + "-" + id + "-data"}
	b.mu.Lock()
	if old, ok := b.droplets[d.ID]; ok {
		n = old
	}
	b.droplets[d.ID] = n
	b.mu.Unlock()

	if err := c.ensureDisk(ctx, n); err != nil {
		return err
	}
	if _, err := c.docker.cli.ContainerInspect(ctx, n.Container); err == nil {
		return c.docker.cli.ContainerStart(ctx, n.Container, container.StartOptions{})
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("droplet %s: %w", d.Name, err)
	}
	overrides := map[string]string{
		"DROPMESH_ADVERTISE": d.PrivateIP, "DROPMESH_PUBLIC_IP": d.PublicIP,
		// Containers the agent runs are published on the host's address on
		// this network, which every agent and the test process reach.
		"DROPMESH_PUBLISH_IP": c.Gateway, "DROPMESH_EDGE": "proxy", "DROPMESH_EDGE_PORT": "80",
		"DROPMESH_DROPLET_ID": strconv.Itoa(d.ID), "DROPMESH_REGION": d.Region,
		"DROPMESH_CONTAINER_SUFFIX": "." + id, "DROPMESH_DRAIN_DELAY": "300ms", "DROPMESH_DATA_DIR": "/var/lib/dropmesh",
	}
	for k, v := range overrides {
		env[k] = v
	}
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	cfg := &container.Config{Image: c.agentImage, Cmd: []string{"agent"}, Env: list, Hostname: id,
		Labels: map[string]string{LabelRun: c.run, LabelRole: "agent", "dropmesh.chaos.node": id}}
	host := &container.HostConfig{
		NetworkMode: container.NetworkMode(c.networkName),
		Mounts: []mount.Mount{
			{Type: mount.TypeBind, Source: c.socket, Target: "/var/run/docker.sock"},
			{Type: mount.TypeVolume, Source: n.Volume, Target: "/var/lib/dropmesh"},
		},
	}
	nets := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		c.networkName: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: d.PrivateIP}},
	}}
	if _, err := c.docker.cli.ContainerCreate(ctx, cfg, host, nets, nil, n.Container); err != nil {
		return fmt.Errorf("droplet %s: create agent container: %w", d.Name, err)
	}
	if err := c.docker.cli.ContainerStart(ctx, n.Container, container.StartOptions{}); err != nil {
		return fmt.Errorf("droplet %s: start agent container: %w", d.Name, err)
	}
	c.logf("droplet %d %s: agent %s started at %s", d.ID, d.Name, id, d.PrivateIP)
	return nil
}

// Restart is a power-cycle: the agent dies at once (even when paused) and
// starts again on the same disk.
func (b *Backend) Restart(ctx context.Context, id int) error {
	n, err := b.node(id)
	if err != nil {
		return err
	}
	b.c.history.AddFault("power-cycle", n.ID, "note", "the leader power-cycled the droplet")
	return b.c.kill(ctx, n, true)
}

// Stop stops the agent gracefully.
func (b *Backend) Stop(ctx context.Context, id int) error {
	n, err := b.node(id)
	if err != nil {
		return err
	}
	timeout := 20
	err = b.c.docker.cli.ContainerStop(ctx, n.Container, container.StopOptions{Timeout: &timeout})
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

func (b *Backend) node(id int) (*Node, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.droplets[id]
	if !ok {
		return nil, fmt.Errorf("droplet %d has no agent container", id)
	}
	return n, nil
}

// nodes returns every droplet's node, by droplet id.
func (b *Backend) nodes() []*Node {
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := make([]int, 0, len(b.droplets))
	for id := range b.droplets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]*Node, len(ids))
	for i, id := range ids {
		out[i] = b.droplets[id]
	}
	return out
}
