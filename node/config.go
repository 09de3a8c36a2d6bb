package node

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/node/bootclaim"
	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/node/pki"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Defaults of the agent's own settings (the ports every process shares are
// in package clusterconf).
const (
	DefaultEdgePort = 80
	DefaultDataDir  = "/var/lib/dropmesh"
	// DefaultContextQuotaBytes is Config.ContextQuotaBytes's default.
	DefaultContextQuotaBytes = 4 << 30
)

// Config is everything one agent needs to run. Flags and DROPMESH_*
// environment variables fill it (see AgentCommand); DefaultConfig gives the
// production defaults.
type Config struct {
	// storeHook, set only by this package's tests, changes the raft
	// store's settings before it opens (a frozen disk).
	storeHook func(*raftfsm.StoreConfig)

	// NodeID is this node's id, also the droplet's host name (default: the host name).
	NodeID  string
	DataDir string
	Version string

	// ContextQuotaBytes bounds the disk the build contexts stored on this
	// node take together (default DefaultContextQuotaBytes); one upload is
	// bounded by control.MaxBuildContextBytes.
	ContextQuotaBytes int64

	// BindIP is where the control listeners bind: raft, gossip, the agent
	// API and the UI (default: AdvertiseIP, the private address, so that
	// none of them answers on a public interface). An unspecified address
	// (0.0.0.0, ::) is refused unless BindAnyAddress is set. AdvertiseIP is
	// the private (VPC) address peers reach; PublicIP is what DNS records
	// point at.
	BindIP, AdvertiseIP, PublicIP string
	// BindAnyAddress allows an unspecified BindIP: the control ports then
	// listen on every interface, public ones too (--bind-any-address, for a
	// host whose private address changes; only behind a firewall).
	BindAnyAddress bool
	// EdgeBindIP is where the edge serves 80/443 (default: BindIP when one
	// was given, as in local mode where every node has its own loopback
	// address, else every address: the edge is public).
	EdgeBindIP string
	Region     string
	DropletID  int

	APIPort, GossipPort, RaftPort, UIPort int
	// EdgePort is where the edge serves client traffic (80 on a droplet).
	EdgePort, EdgeTLSPort int
	// EdgeCloudflareOnly limits the cloud firewall's ports 80 and 443 to
	// Cloudflare's published ranges (--edge-cloudflare-only), for a
	// cluster whose public records are all proxied. The leader applies its
	// own setting, so give every agent the same.
	EdgeCloudflareOnly bool
	// Edge picks the edge implementation: auto (nginx when installed), nginx,
	// proxy (built-in Go reverse proxy) or none.
	Edge string

	// Bootstrap makes this node the seed: a fresh cluster secret and a one-node raft.
	Bootstrap bool
	// BootstrapToken, on a seed, is the one-time token of `dropmesh
	// bootstrap`: the seed then initialises the cluster only once the
	// bootstrapper has proven the token and handed over the cloud tokens
	// and the admin password (POST /v1/bootstrap/claim), which never touch
	// the seed's user data or disk.
	BootstrapToken string
	// Join lists gossip addresses (host:port) of existing members.
	Join []string
	// JoinToken is the one-time token a node without credentials trades for
	// its certificate and the cluster's keys (Enroll); CAFingerprint pins
	// the cluster CA it must find in the member's certificate chain
	// ("sha256:<hex>"). Both come from the user data, or from
	// `dropmesh join-token create` for a host joined by hand.
	JoinToken, CAFingerprint string
	// JoinAPI are members' API addresses to enroll through (default: the
	// hosts of Join at this node's API port).
	JoinAPI []string
	// CertValidity is how long the node certificates this node signs while
	// it leads stay valid (default pki.DefaultNodeCertValidity, 30 days);
	// tests shorten it to watch renewals.
	CertValidity time.Duration
	// ClusterSecret is given directly (cloud-init) or read from ClusterSecretFile.
	ClusterSecret     string
	ClusterSecretFile string
	// ClusterName labels gossip packets; nodes of another cluster cannot join.
	ClusterName string
	// ClusterID is the seed's cluster id when the bootstrapper chose it (it
	// tags the droplets and names the firewall); empty makes one.
	ClusterID string

	// Seed settings, used once when the seed initialises the cluster.
	AdminPassword     string
	AdminPasswordFile string
	Init              raftfsm.Settings
	// InitDOToken and InitCFToken are the seed's cloud tokens in plain text;
	// they are sealed into the settings when the cluster is initialised.
	InitDOToken, InitCFToken string

	// HealthInterval is HEALTH_CHECK_INTERVAL (default 60 s).
	HealthInterval time.Duration
	// DeadServerTimeout is how long a raft server whose agent is dead
	// (failed, not left) keeps its place before the leader removes it and
	// promotes a non-voter (default 10 min): long enough for a reboot or a
	// power-cycle, short enough that a lost droplet stops counting towards
	// the quorum.
	DeadServerTimeout time.Duration
	// RequireAuthAlways requires the API key even from inside the VPC.
	RequireAuthAlways bool
	// GossipKeys are gossip keys to start with when this node has no copy of
	// its own yet (a droplet the leader made after a key rotation; its user
	// data carries them), the primary first. Empty: the key derived from
	// the cluster secret.
	GossipKeys [][]byte
	// TrustedNets are the networks (the VPC) whose clients may skip the API
	// key when RequireAuthAlways is false; it must be given then.
	TrustedNets []netip.Prefix
	// PublishIP is the host address container ports are published on
	// (default AdvertiseIP): private, never public for stateful services.
	PublishIP string
	// ContainerSuffix keeps container names apart when several agents share
	// one Docker engine (local mode: "-node-2").
	ContainerSuffix string
	// Discovery is "auto" (or ""; on when running as root on Linux), "on"
	// or "off": service names and cross-node forwarding for containers
	// (node/discovery).
	Discovery string
	// MeshPort is the discovery gateway's port on the private address
	// (0: DefaultMeshPort).
	MeshPort int
	// NoRuntime runs the agent without Docker (mesh-only tests).
	NoRuntime bool
	// DockerHost is this node's Docker engine (empty: DOCKER_HOST, else
	// the standard socket); tests give each agent its own engine.
	DockerHost string
	// LocalMode marks an agent of `dropmesh local up`.
	LocalMode bool
	// DrainDelay is how long an old container keeps serving after the edge
	// switched away from it, so requests in flight finish.
	DrainDelay time.Duration
	// ImageGrace is how long an image dropmesh put into the engine (built,
	// pulled, fetched from a peer, pushed) stays once no kept generation
	// references it, counted from when it was put there (0: 24 h).
	ImageGrace time.Duration
	// ReconcileInterval is the slow timer of the reconciler, on top of state
	// changes and Docker events.
	ReconcileInterval time.Duration
	// ShutdownTimeout bounds a graceful stop.
	ShutdownTimeout time.Duration

	// The leader's cloud duty (DigitalOcean and Cloudflare). A round never
	// waits for a droplet or a snapshot: it starts the operation and checks
	// on it in later rounds, so one slow operation cannot hold up DNS
	// failover, growth or the retirement of dead nodes.

	// CloudInterval is how often the cloud duty runs when nothing changes
	// (it also runs on every state change and leader kick).
	CloudInterval time.Duration
	// CloudRoundTimeout bounds one round: every provider call it makes,
	// retries included. Shorter gets DNS failover past a hung provider
	// sooner; longer rides out a slow API.
	CloudRoundTimeout time.Duration
	// CloudRequestTimeout bounds one attempt of one provider request until
	// its answer's headers arrive (the HTTP transport's timeout; a GET is
	// then retried, a POST is looked up before it is tried again).
	CloudRequestTimeout time.Duration
	// CloudPollInterval is how often an operation in progress (a droplet
	// turning active, a snapshot, a transfer) is checked on. Shorter
	// notices completion sooner but spends DigitalOcean's rate limit (250
	// requests a minute); local mode checks at least every 100 ms.
	CloudPollInterval time.Duration
	// DropletActiveTimeout is how long a droplet creation may take, from
	// its intent to an active droplet, before it fails (DigitalOcean takes
	// about a minute). The droplet is not deleted: the next attempt finds it
	// by name.
	DropletActiveTimeout time.Duration
	// SnapshotTimeout is how long a custom snapshot's droplet snapshot, and
	// each transfer of it to another region, may run before the snapshot
	// fails. DigitalOcean takes minutes to hours, with the disk's size.
	SnapshotTimeout time.Duration

	LogFormat string
	LogLevel  string
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		NodeID:            sanitizeNodeID(host),
		DataDir:           DefaultDataDir,
		APIPort:           clusterconf.DefaultAPIPort,
		GossipPort:        clusterconf.DefaultGossipPort,
		RaftPort:          clusterconf.DefaultRaftPort,
		UIPort:            clusterconf.DefaultUIPort,
		EdgePort:          DefaultEdgePort,
		Edge:              "auto",
		ClusterName:       "dropmesh",
		HealthInterval:    60 * time.Second,
		DeadServerTimeout: mesh.DefaultDeadServerTimeout,
		RequireAuthAlways: true,
		DrainDelay:        2 * time.Second,
		ReconcileInterval: 30 * time.Second,
		ShutdownTimeout:   15 * time.Second,
		LogFormat:         "text",
		LogLevel:          "info",
	}.withCloudDefaults()
}

// withCloudDefaults fills the cloud duty's zero timings with the defaults:
// DefaultConfig's values, also for a Config built by hand.
func (c Config) withCloudDefaults() Config {
	for _, f := range []struct {
		field *time.Duration
		def   time.Duration
	}{
		{&c.CloudInterval, 5 * time.Second},
		{&c.CloudRoundTimeout, 2 * time.Minute},
		{&c.CloudRequestTimeout, 30 * time.Second},
		{&c.CloudPollInterval, 2 * time.Second},
		{&c.DropletActiveTimeout, 10 * time.Minute},
		{&c.SnapshotTimeout, 4 * time.Hour},
	} {
		if *f.field <= 0 {
			*f.field = f.def
		}
	}
	return c
}

var nonIDChars = regexp.MustCompile(`[^a-z0-9-]+`)

// sanitizeNodeID turns a host name into a valid node id.
func sanitizeNodeID(host string) string {
	id := nonIDChars.ReplaceAllString(strings.ToLower(strings.Split(host, ".")[0]), "-")
	id = strings.Trim(id, "-")
	if len(id) > 63 {
		id = strings.Trim(id[:63], "-")
	}
	if id == "" {
		id = "node"
	}
	return id
}

// complete fills derived defaults and checks the config.
func (c *Config) complete() error {
	if err := raftfsm.ValidateNodeID(c.NodeID); err != nil {
		return err
	}
	if c.DataDir == "" {
		return errors.New("config: no data dir")
	}
	if c.ContextQuotaBytes <= 0 {
		c.ContextQuotaBytes = DefaultContextQuotaBytes
	}
	if c.AdvertiseIP == "" {
		if ip := net.ParseIP(c.BindIP); ip != nil && !ip.IsUnspecified() {
			c.AdvertiseIP = c.BindIP
		} else {
			ip, err := privateIP()
			if err != nil {
				return fmt.Errorf("config: no advertise address given and none found: %w", err)
			}
			c.AdvertiseIP = ip
		}
	}
	if net.ParseIP(c.AdvertiseIP) == nil {
		return fmt.Errorf("config: advertise address %q is not an IP", c.AdvertiseIP)
	}
	if err := c.completeBind(); err != nil {
		return err
	}
	if c.PublicIP == "" {
		c.PublicIP = c.AdvertiseIP
	}
	if c.PublishIP == "" {
		c.PublishIP = c.AdvertiseIP
	}
	if c.BootstrapToken != "" {
		if !c.Bootstrap {
			return errors.New("config: a bootstrap token is for a seed: give --bootstrap too")
		}
		if err := bootclaim.CheckHex("config: bootstrap token", c.BootstrapToken); err != nil {
			return err
		}
	}
	if c.ClusterSecretFile == "" {
		c.ClusterSecretFile = filepath.Join(c.DataDir, "cluster-secret")
	}
	switch c.Edge {
	case "auto", "nginx", "proxy", "none":
	default:
		return fmt.Errorf("config: edge %q: want auto, nginx, proxy or none", c.Edge)
	}
	for _, p := range []int{c.APIPort, c.GossipPort, c.RaftPort, c.UIPort} {
		if p <= 0 || p > 65535 {
			return fmt.Errorf("config: port %d out of range", p)
		}
	}
	if c.HealthInterval < 100*time.Millisecond {
		return fmt.Errorf("config: health interval %s is below 100ms", c.HealthInterval)
	}
	if !c.RequireAuthAlways && len(c.TrustedNets) == 0 {
		return fmt.Errorf("config: require-auth-always is false but no --trusted-nets are given: name the networks (the VPC's range, such as 10.110.0.0/20) whose clients may skip the API key")
	}
	if c.DeadServerTimeout <= 0 {
		return fmt.Errorf("config: dead server timeout %s must be positive", c.DeadServerTimeout)
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.CertValidity < 0 {
		return fmt.Errorf("config: certificate validity %s must be positive", c.CertValidity)
	}
	if c.CertValidity == 0 {
		c.CertValidity = pki.DefaultNodeCertValidity
	}
	if c.JoinToken != "" && c.CAFingerprint == "" {
		return fmt.Errorf("config: a join token needs the CA fingerprint it was given with (--ca-fingerprint)")
	}
	*c = c.withCloudDefaults()
	return nil
}

// ErrBindAnyAddress refuses control listeners on every address without
// BindAnyAddress.
var ErrBindAnyAddress = errors.New("control ports on every address")

// completeBind defaults the listeners' addresses: the edge on BindIP when
// one was given, else on every address; the control ports on BindIP, by
// default the private advertise address.
func (c *Config) completeBind() error {
	if c.EdgeBindIP == "" {
		c.EdgeBindIP = c.BindIP
		if c.EdgeBindIP == "" {
			c.EdgeBindIP = "0.0.0.0"
		}
	}
	if net.ParseIP(c.EdgeBindIP) == nil {
		return fmt.Errorf("config: edge bind address %q is not an IP", c.EdgeBindIP)
	}
	if c.BindIP == "" {
		c.BindIP = c.AdvertiseIP
	}
	ip := net.ParseIP(c.BindIP)
	if ip == nil {
		return fmt.Errorf("config: bind address %q is not an IP", c.BindIP)
	}
	if ip.IsUnspecified() && !c.BindAnyAddress {
		return fmt.Errorf("config: bind address %s: %w: raft, gossip, the agent API and the UI would answer on public interfaces too; leave --bind unset (the private advertise address) or give --bind-any-address", c.BindIP, ErrBindAnyAddress)
	}
	return nil
}

// addr joins the advertise IP and a port.
func (c *Config) addr(port int) string { return net.JoinHostPort(c.AdvertiseIP, fmt.Sprint(port)) }

// bind joins the control listeners' bind IP and a port.
func (c *Config) bind(port int) string { return net.JoinHostPort(c.BindIP, fmt.Sprint(port)) }

// edgeBind joins the edge's bind IP and a port.
func (c *Config) edgeBind(port int) string { return net.JoinHostPort(c.EdgeBindIP, fmt.Sprint(port)) }

// privateIP finds the first private IPv4 address of this host (the VPC one on a droplet).
func privateIP() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if ok && ipn.IP.To4() != nil && ipn.IP.IsPrivate() {
			return ipn.IP.String(), nil
		}
	}
	return "", errors.New("no private IPv4 address on this host")
}
