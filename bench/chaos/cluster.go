package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/pki"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/raftfsm"
	"github.com/dropmesh/dropmesh/scripts"
)

// Names of the fake cloud's world.
const (
	// Zone is the fake Cloudflare zone the services' hosts live in.
	Zone = "chaos.test"
	// Region is every droplet's region.
	Region = "nyc3"
	// ClusterName is the agents' cluster name.
	ClusterName = "chaos"
	// diskHelperPackage is the program of the data-disk containers.
	diskHelperPackage = "github.com/dropmesh/dropmesh/bench/chaos/testdata/diskhelper"
	// fillPath is the file that fills a node's data disk, as the disk
	// container sees the volume.
	fillPath = "/data/chaos-fill"
	// sweepAge is how old a run's leftovers must be before another run
	// removes them (younger ones may be a run in progress).
	sweepAge = 2 * time.Hour
)

// Node is one agent of the cluster: a fake droplet backed by a container.
type Node struct {
	ID        string
	IP        string
	DropletID int
	// Container is the agent's container, Disk the container holding its
	// data volume (a tmpfs) mounted and filling it on demand.
	Container, Disk, Volume string
}

// API is the node's agent API address.
// baseImage is the custom image the chaos droplets boot from (the fake
// cloud refuses images it does not know, as DigitalOcean does).
const baseImage = "dropmesh-chaos-base"

func (n *Node) API() string { return net.JoinHostPort(n.IP, fmt.Sprint(clusterconf.DefaultAPIPort)) }

// Cluster is a dropmesh cluster of agent containers on a private Docker
// network, with the fake cloud served by this process on the network's
// gateway. NewCluster starts it; it is torn down when the test ends.
type Cluster struct {
	t       testing.TB
	cfg     Config
	history *History

	run, prefix string
	docker      *dockerHost
	socket      string

	networkID, networkName string
	// Subnet is the network's range; Gateway is the host's address on it.
	Subnet  netip.Prefix
	Gateway string

	agentImage, diskImage string

	fake    *fakeapi.Server
	FakeURL string
	token   string
	backend *Backend

	// APIKey is the agents' API key, derived from the cluster secret.
	APIKey string
	secret clusterconf.ClusterSecret
	// caPEM is the cluster CA's certificate, copied from the seed's data
	// dir: clients verify the agents' API with it, as the CLI does.
	caPEM []byte

	mu      sync.Mutex
	nodes   []*Node
	clients map[string]*apiclient.Client
	closed  bool
}

// NewCluster builds the agent image (no pull: the static binary in FROM
// scratch, as scripts/build-image.sh does), the network and the fake
// cloud, then creates cfg.Nodes droplets through the fake DigitalOcean API:
// the first with --bootstrap, the others joining it. It returns once a
// leader serves the API and every node is an alive voter.
func NewCluster(t testing.TB, cfg Config, h *History) *Cluster {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d, err := newDockerHost(ctx)
	if err != nil {
		t.Fatalf("the chaos suite needs a Docker engine: %v", err)
	}
	t.Cleanup(func() { d.cli.Close() })
	socket, err := d.socketPath()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.sweep(ctx, sweepAge); err != nil {
		t.Logf("sweeping old chaos runs: %v", err)
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	run := hex.EncodeToString(b[:])
	c := &Cluster{t: t, cfg: cfg, history: h, run: run, prefix: "dmchaos-" + run, docker: d, socket: socket,
		clients: map[string]*apiclient.Client{}}
	c.backend = &Backend{c: c, droplets: map[int]*Node{}}
	c.buildImages(ctx)
	// Cleanups run last registered first: the fake cloud stops, then close
	// removes the containers, and only then the images go.
	t.Cleanup(c.close)

	c.networkName = c.prefix
	if c.networkID, c.Subnet, err = d.createNetwork(ctx, c.networkName, run); err != nil {
		t.Fatal(err)
	}
	c.Gateway = nthIP(c.Subnet, 1)
	c.startFakeCloud(ctx)

	if c.secret, err = clusterconf.NewClusterSecret(); err != nil {
		t.Fatal(err)
	}
	keys, err := clusterconf.DeriveKeys(c.secret)
	if err != nil {
		t.Fatal(err)
	}
	c.APIKey = keys.APIKey

	do := cloudops.NewDigitalOcean(cloudops.DOConfig{Token: c.token, BaseURL: c.FakeURL, PollInterval: 50 * time.Millisecond})
	seed := c.createDroplet(ctx, do, 1, nil)
	c.waitFor(ctx, 90*time.Second, "the seed's cluster CA", func() error {
		var err error
		c.caPEM, err = c.docker.copyFile(ctx, seed.Container, "/var/lib/dropmesh/"+clusterconf.TLSDir+"/"+pki.CAFile)
		return err
	})
	c.waitFor(ctx, 90*time.Second, "the seed to lead", func() error {
		info, err := c.clusterInfo(ctx, seed, 2*time.Second)
		if err != nil {
			return err
		}
		if info.Leader.ID != seed.ID {
			return fmt.Errorf("leader %q", info.Leader.ID)
		}
		return nil
	})
	var wg sync.WaitGroup
	errs := make([]error, cfg.Nodes+1)
	for i := 2; i <= cfg.Nodes; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.tryCreateDroplet(ctx, do, i, []string{net.JoinHostPort(seed.IP, fmt.Sprint(clusterconf.DefaultGossipPort))})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx, 2*time.Minute); err != nil {
		c.dumpLogs(40)
		t.Fatal(err)
	}
	if err := c.WaitMembership(ctx, time.Minute); err != nil {
		c.dumpLogs(40)
		t.Fatal(err)
	}
	c.logf("cluster up: %d agents on %s, fake cloud at %s", cfg.Nodes, c.Subnet, c.FakeURL)
	return c
}

// repoRoot finds the module root above the test's directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// buildImages builds the agent image with scripts/build-image.sh from a
// static binary, and the disk helper's image.
func (c *Cluster) buildImages(ctx context.Context) {
	t := c.t
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := runtimetest.BuildStaticBinary(t, "github.com/dropmesh/dropmesh")
	c.agentImage = "dmchaos-agent:" + c.run
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "build-image.sh"), "--binary", bin, "--tag", c.agentImage, "--version", "chaos-"+c.run)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the agent image: %v\n%s", err, out)
	}
	rt := runtimetest.NewTestRuntime(t)
	t.Cleanup(func() { runtimetest.RemoveTestImage(t, rt, c.agentImage) })
	c.diskImage = "dmchaos-disk:" + c.run
	if _, err := rt.BuildFromBinary(ctx, runtimetest.BuildStaticBinary(t, diskHelperPackage), c.diskImage, []string{"/diskhelper", "hold"}, 0); err != nil {
		t.Fatalf("build the disk helper image: %v", err)
	}
	t.Cleanup(func() { runtimetest.RemoveTestImage(t, rt, c.diskImage) })
}

// startFakeCloud serves the fake DigitalOcean and Cloudflare API on the
// network's gateway, where the agents reach it.
func (c *Cluster) startFakeCloud(ctx context.Context) {
	t := c.t
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	c.token = "chaos" + hex.EncodeToString(b[:])
	opts := fakeapi.DefaultOptions()
	opts.Token, opts.Zones, opts.Backend = c.token, []string{Zone}, c.backend
	opts.Images = append(opts.Images, baseImage)
	opts.IPAllocator = func(n int) (string, string) { ip := nthIP(c.Subnet, 10+n); return ip, ip }
	opts.Logger = slog.New(slog.DiscardHandler)
	fake, err := fakeapi.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	c.fake = fake
	var l net.Listener
	c.waitFor(ctx, 10*time.Second, "the gateway address to listen on", func() error {
		var err error
		l, err = net.Listen("tcp", net.JoinHostPort(c.Gateway, "0"))
		return err
	})
	c.FakeURL = "http://" + l.Addr().String()
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = fake.Close()
	})
}

// nodeID is node i's id: unique per run, because agents sharing one Docker
// engine tell their containers apart by node id.
func (c *Cluster) nodeID(i int) string { return fmt.Sprintf("chaos-%s-%d", c.run, i) }

// createDroplet creates droplet i through the fake DigitalOcean API with
// user data that starts its agent: the seed (joins empty) bootstraps and
// gets the fake cloud's tokens; the others join.
func (c *Cluster) createDroplet(ctx context.Context, do *cloudops.DigitalOcean, i int, joins []string) *Node {
	n, err := c.tryCreateDroplet(ctx, do, i, joins)
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

func (c *Cluster) tryCreateDroplet(ctx context.Context, do *cloudops.DigitalOcean, i int, joins []string) (*Node, error) {
	id := c.nodeID(i)
	env := []string{
		"DROPMESH_NODE_ID=" + id,
		"DROPMESH_CLUSTER_NAME=" + ClusterName,
		"HEALTH_CHECK_INTERVAL=" + c.cfg.HealthInterval.String(),
	}
	if len(joins) == 0 {
		env = append(env,
			"DROPMESH_CLUSTER_SECRET="+c.secret.String(),
			"DROPMESH_BOOTSTRAP=true",
			"DROPMESH_LOCAL_MODE=true", // the fake cloud: poll it fast
			"DROPMESH_DOMAIN="+Zone,
			"DROPMESH_DO_BASE_URL="+c.FakeURL,
			"DROPMESH_CF_BASE_URL="+c.FakeURL+fakeapi.CloudflarePath,
			"DROPMESH_DO_TOKEN="+c.token,
			"DROPMESH_CF_TOKEN="+c.token,
			// No replacement droplets during a run: a silent node stays
			// rebooting rather than being replaced.
			"DROPMESH_DEAD_NODE_GRACE=1h",
		)
	} else {
		// As a droplet the leader creates: a one-time join token for this
		// node and the CA fingerprint, nothing secret.
		cl, err := c.anyClient(c.Nodes())
		if err != nil {
			return nil, err
		}
		tok, err := cl.CreateJoinToken(ctx, control.JoinTokenRequest{Node: id, Purpose: "chaos"})
		if err != nil {
			return nil, fmt.Errorf("join token for %s: %w", id, err)
		}
		env = append(env, "DROPMESH_JOIN="+strings.Join(joins, ","), "DROPMESH_JOIN_TOKEN="+tok.Token, "DROPMESH_CA_FINGERPRINT="+tok.CAFingerprint)
	}
	ud, err := scripts.RenderUserData(scripts.UserData{NodeID: id, ClusterName: ClusterName, Env: env})
	if err != nil {
		return nil, err
	}
	d, err := do.CreateDroplet(ctx, cloudops.DropletSpec{Name: ClusterName + "-" + id, Region: Region, Size: "s-1vcpu-2gb",
		ImageSlug: baseImage, Tags: []string{"dropmesh-chaos-" + c.run}, UserData: ud})
	if err != nil {
		return nil, fmt.Errorf("create droplet %s: %w", id, err)
	}
	if _, err := do.WaitForDropletStatus(ctx, d.ID, cloudops.StatusActive); err != nil {
		return nil, fmt.Errorf("droplet %s: %w", id, err)
	}
	c.fake.WaitIdle() // the backend has started the container
	var n *Node
	for _, x := range c.backend.nodes() {
		if x.ID == id {
			n = x
		}
	}
	if n == nil {
		return nil, fmt.Errorf("droplet %s is active but has no agent container (see the backend errors)", id)
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	slices.SortFunc(c.nodes, func(a, b *Node) int { return strings.Compare(a.ID, b.ID) })
	c.mu.Unlock()
	return n, nil
}

// Nodes returns the cluster's nodes, by id.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nodes)
}

// Node returns the node with id.
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.Nodes() {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Client is an API client of one node that makes exactly one attempt per
// call (no failover, no retry), so that the record says where each
// request went and what it got.
func (c *Cluster) Client(n *Node) *apiclient.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[n.ID]; ok {
		return cl
	}
	cl, err := apiclient.New(apiclient.Config{Addrs: []string{n.API()}, APIKey: c.APIKey, CACert: c.caPEM, Timeout: c.cfg.OpTimeout, RetryFor: time.Nanosecond})
	if err != nil {
		panic(err) // an IP and a port: cannot fail
	}
	c.clients[n.ID] = cl
	return cl
}

// AnyClient is an API client of every node with the usual failover and
// retries, for the reads after the heal.
func (c *Cluster) AnyClient() (*apiclient.Client, error) {
	return c.anyClient(c.Nodes())
}

// anyClient is AnyClient for some nodes.
func (c *Cluster) anyClient(nodes []*Node) (*apiclient.Client, error) {
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.API())
	}
	return apiclient.New(apiclient.Config{Addrs: addrs, APIKey: c.APIKey, CACert: c.caPEM, Timeout: 10 * time.Second})
}

// clusterInfo asks one node for its view of the cluster, once.
func (c *Cluster) clusterInfo(ctx context.Context, n *Node, timeout time.Duration) (control.ClusterInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.Client(n).Cluster(ctx)
}

// Leader returns the node that says it leads (nil when none does).
func (c *Cluster) Leader(ctx context.Context) *Node {
	for _, n := range c.Nodes() {
		if info, err := c.clusterInfo(ctx, n, 2*time.Second); err == nil && info.Leader.ID == n.ID {
			return n
		}
	}
	return nil
}

// WaitLeader waits for a node that says it leads.
func (c *Cluster) WaitLeader(ctx context.Context, timeout time.Duration) (*Node, error) {
	var leader *Node
	err := c.poll(ctx, timeout, "a leader", func() error {
		if leader = c.Leader(ctx); leader == nil {
			return errors.New("no node says it leads")
		}
		return nil
	})
	return leader, err
}

// healthy reports why the cluster is not healthy yet: every node answers,
// all name the same leader, and the leader counts every node as a raft
// voter. Gossip membership is checked apart (membershipHealed): raft
// works without it.
func (c *Cluster) healthy(ctx context.Context) error {
	info, err := c.agreedLeader(ctx)
	if err != nil {
		return err
	}
	for _, n := range c.Nodes() {
		if m, ok := member(info, n.ID); !ok || m.Raft != "voter" {
			return fmt.Errorf("the leader %s does not count %s as a raft voter (%+v)", info.Leader.ID, n.ID, m)
		}
	}
	return nil
}

// membershipHealed reports why the gossip has not healed yet: the leader
// must see every node alive.
func (c *Cluster) membershipHealed(ctx context.Context) error {
	info, err := c.agreedLeader(ctx)
	if err != nil {
		return err
	}
	for _, n := range c.Nodes() {
		if m, ok := member(info, n.ID); !ok || m.Status != "alive" {
			return fmt.Errorf("the leader %s sees %s %q in the gossip", info.Leader.ID, n.ID, m.Status)
		}
	}
	return nil
}

// agreedLeader asks every node and returns the leader's answer once all
// name the same leader.
func (c *Cluster) agreedLeader(ctx context.Context) (control.ClusterInfo, error) {
	leaders := map[string]bool{}
	var leaderInfo *control.ClusterInfo
	for _, n := range c.Nodes() {
		info, err := c.clusterInfo(ctx, n, 2*time.Second)
		if err != nil {
			return control.ClusterInfo{}, fmt.Errorf("%s: %w", n.ID, err)
		}
		leaders[info.Leader.ID] = true
		if info.Leader.ID == n.ID {
			leaderInfo = &info
		}
	}
	if len(leaders) != 1 || leaderInfo == nil {
		return control.ClusterInfo{}, fmt.Errorf("the nodes name leaders %q", sortedKeys(leaders))
	}
	return *leaderInfo, nil
}

func member(info control.ClusterInfo, id string) (control.MemberInfo, bool) {
	for _, m := range info.Members {
		if m.ID == id {
			return m, true
		}
	}
	return control.MemberInfo{}, false
}

// WaitHealthy waits until every node answers, all agree on the leader, and
// the leader counts every node as a voter.
func (c *Cluster) WaitHealthy(ctx context.Context, timeout time.Duration) error {
	return c.poll(ctx, timeout, "a healthy cluster", func() error { return c.healthy(ctx) })
}

// WaitMembership waits until the leader sees every node alive in the gossip.
func (c *Cluster) WaitMembership(ctx context.Context, timeout time.Duration) error {
	return c.poll(ctx, timeout, "every node alive in the gossip", func() error { return c.membershipHealed(ctx) })
}

// poll calls cond every 200 ms until it returns nil, and fails with its
// last error after timeout.
func (c *Cluster) poll(ctx context.Context, timeout time.Duration, what string, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waited %s for %s: %w", timeout, what, err)
		case <-tick.C:
		}
	}
}

// waitFor is poll that fails the test.
func (c *Cluster) waitFor(ctx context.Context, timeout time.Duration, what string, cond func() error) {
	c.t.Helper()
	if err := c.poll(ctx, timeout, what, cond); err != nil {
		c.dumpLogs(40)
		c.t.Fatal(err)
	}
}

// Kill stops a node's agent at once (docker kill); with restart it starts
// again (a power-cycle).
func (c *Cluster) kill(ctx context.Context, n *Node, restart bool) error {
	err := c.docker.cli.ContainerKill(ctx, n.Container, "KILL")
	if err != nil && !strings.Contains(err.Error(), "is not running") {
		return fmt.Errorf("kill %s: %w", n.ID, err)
	}
	if !restart {
		return nil
	}
	return c.StartAgent(ctx, n)
}

// Kill stops a node's agent at once, as a power loss would.
func (c *Cluster) Kill(ctx context.Context, n *Node) error { return c.kill(ctx, n, false) }

// StartAgent starts a stopped agent container again; a running one is left alone.
func (c *Cluster) StartAgent(ctx context.Context, n *Node) error {
	if err := c.docker.cli.ContainerStart(ctx, n.Container, container.StartOptions{}); err != nil {
		return fmt.Errorf("start %s: %w", n.ID, err)
	}
	return nil
}

// Stop stops a node's agent gracefully (SIGTERM, then SIGKILL after 20 s).
func (c *Cluster) Stop(ctx context.Context, n *Node) error {
	timeout := 20
	if err := c.docker.cli.ContainerStop(ctx, n.Container, container.StopOptions{Timeout: &timeout}); err != nil {
		return fmt.Errorf("stop %s: %w", n.ID, err)
	}
	return nil
}

// Start starts a stopped node's agent container again.
func (c *Cluster) Start(ctx context.Context, n *Node) error {
	if err := c.docker.cli.ContainerStart(ctx, n.Container, container.StartOptions{}); err != nil {
		return fmt.Errorf("start %s: %w", n.ID, err)
	}
	return nil
}

// Pause freezes a node (docker pause: every process stops, sockets stay).
func (c *Cluster) Pause(ctx context.Context, n *Node) error {
	if err := c.docker.cli.ContainerPause(ctx, n.Container); err != nil {
		return fmt.Errorf("pause %s: %w", n.ID, err)
	}
	return nil
}

// Unpause thaws a node. One the leader power-cycled meanwhile is not
// paused any more, which is fine.
func (c *Cluster) Unpause(ctx context.Context, n *Node) error {
	err := c.docker.cli.ContainerUnpause(ctx, n.Container)
	if err != nil && !strings.Contains(err.Error(), "not paused") {
		return fmt.Errorf("unpause %s: %w", n.ID, err)
	}
	return nil
}

// Disconnect takes a node off the network (its interface goes away).
func (c *Cluster) Disconnect(ctx context.Context, n *Node) error {
	if err := c.docker.cli.NetworkDisconnect(ctx, c.networkID, n.Container, true); err != nil {
		return fmt.Errorf("disconnect %s: %w", n.ID, err)
	}
	return nil
}

// Connect puts a node back on the network at its address.
func (c *Cluster) Connect(ctx context.Context, n *Node) error {
	err := c.docker.cli.NetworkConnect(ctx, c.networkID, n.Container, &network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: n.IP}})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("connect %s: %w", n.ID, err)
	}
	return nil
}

// ensureDisk makes a node's data volume (a tmpfs of Config.DiskSize) and
// the container that keeps it mounted: Docker unmounts a tmpfs volume, and
// so empties it, when the last container using it stops, and the agent
// container is killed and restarted on purpose.
func (c *Cluster) ensureDisk(ctx context.Context, n *Node) error {
	if _, err := c.docker.cli.VolumeInspect(ctx, n.Volume); errdefs.IsNotFound(err) {
		if err := c.docker.createTmpfsVolume(ctx, n.Volume, c.cfg.DiskSize, c.run); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if _, err := c.docker.cli.ContainerInspect(ctx, n.Disk); errdefs.IsNotFound(err) {
		_, err := c.docker.cli.ContainerCreate(ctx,
			&container.Config{Image: c.diskImage, Labels: map[string]string{LabelRun: c.run, LabelRole: "disk"}},
			&container.HostConfig{NetworkMode: "none", Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: n.Volume, Target: "/data"}}},
			nil, nil, n.Disk)
		if err != nil {
			return fmt.Errorf("disk container of %s: %w", n.ID, err)
		}
	} else if err != nil {
		return err
	}
	if err := c.docker.cli.ContainerStart(ctx, n.Disk, container.StartOptions{}); err != nil {
		return fmt.Errorf("disk container of %s: %w", n.ID, err)
	}
	return nil
}

// FillDisk fills a node's data disk until writes fail with ENOSPC.
func (c *Cluster) FillDisk(ctx context.Context, n *Node) (string, error) {
	out, err := c.docker.exec(ctx, n.Disk, "/diskhelper", "fill", fillPath)
	return strings.TrimSpace(out), err
}

// FreeDisk removes the fill file.
func (c *Cluster) FreeDisk(ctx context.Context, n *Node) error {
	_, err := c.docker.exec(ctx, n.Disk, "/diskhelper", "free", fillPath)
	return err
}

// Containers lists every container the cluster's agents run (managed, and
// labelled with one of its nodes).
func (c *Cluster) Containers(ctx context.Context) ([]Container, error) {
	list, err := c.docker.cli.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", runtime.LabelManaged+"=true"))})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	prefix := "chaos-" + c.run + "-"
	var out []Container
	for _, x := range list {
		if !strings.HasPrefix(x.Labels[runtime.LabelNode], prefix) {
			continue
		}
		name := ""
		if len(x.Names) > 0 {
			name = strings.TrimPrefix(x.Names[0], "/")
		}
		out = append(out, Container{ID: x.ID, Name: name, Running: x.State == "running", Labels: x.Labels})
	}
	return out, nil
}

// FakeState is the fake cloud's state.
func (c *Cluster) FakeState() fakeapi.State { return c.fake.State() }

// State reads the services and instances the cluster holds (consistent
// reads, through any node).
func (c *Cluster) State(ctx context.Context) ([]raftfsm.Service, []raftfsm.Instance, error) {
	cl, err := c.AnyClient()
	if err != nil {
		return nil, nil, err
	}
	svcs, err := cl.Services(ctx, "", apiclient.Consistent())
	if err != nil {
		return nil, nil, fmt.Errorf("services: %w", err)
	}
	ins, err := cl.Instances(ctx, apiclient.InstanceFilter{}, apiclient.Consistent())
	if err != nil {
		return nil, nil, fmt.Errorf("instances: %w", err)
	}
	return svcs, ins, nil
}

// logf logs to the test while it runs.
func (c *Cluster) logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.t.Logf("%s "+format, append([]any{c.history.Since(time.Now())}, args...)...)
	}
}

// dumpLogs prints the end of every agent's log; with DROPMESH_CHAOS_LOGS
// set, whole logs go to files in that directory.
func (c *Cluster) dumpLogs(lines int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := os.Getenv("DROPMESH_CHAOS_LOGS")
	for _, n := range c.Nodes() {
		c.t.Logf("--- last %d lines of %s (%s) ---\n%s", lines, n.ID, n.Container, c.docker.logsTail(ctx, n.Container, lines))
		if dir == "" {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			c.t.Logf("logs: %v", err)
			continue
		}
		f, err := os.Create(filepath.Join(dir, n.ID+".log"))
		if err != nil {
			c.t.Logf("logs: %v", err)
			continue
		}
		_ = c.docker.logsAll(ctx, n.Container, f)
		f.Close()
	}
}

// close removes everything the run made: the agents first (so nothing
// restarts a container), then the containers they ran, the disks and the
// network.
func (c *Cluster) close() {
	if c.t.Failed() {
		c.dumpLogs(60)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	list, err := c.docker.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelRun+"="+c.run), filters.Arg("label", LabelRole+"=agent"))})
	errs = append(errs, err)
	for _, x := range list {
		if err := c.docker.cli.ContainerRemove(ctx, x.ID, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	if ctrs, err := c.Containers(ctx); err == nil {
		for _, x := range ctrs {
			if err := c.docker.cli.ContainerRemove(ctx, x.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
	} else {
		errs = append(errs, err)
	}
	errs = append(errs, c.docker.removeByLabel(ctx, LabelRun, c.run))
	for _, n := range c.backend.nodes() {
		if err := c.docker.cli.VolumeRemove(ctx, n.Volume, true); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	if c.networkID != "" {
		if err := c.docker.cli.NetworkRemove(ctx, c.networkID); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		c.t.Errorf("chaos cleanup: %v", err)
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}
