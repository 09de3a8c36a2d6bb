package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/node/converge"
	"github.com/dropmesh/dropmesh/node/logring"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// envAliases are the unprefixed variables operators know from the first system (HEALTH_CHECK_INTERVAL, REQUIRE_AUTH_ALWAYS).
var envAliases = map[string]string{
	"health-interval":     "HEALTH_CHECK_INTERVAL",
	"require-auth-always": "REQUIRE_AUTH_ALWAYS",
}

// EnvName is the environment variable of an agent flag: DROPMESH_ and the
// flag in upper case ("data-dir" -> DROPMESH_DATA_DIR).
func EnvName(flag string) string {
	return "DROPMESH_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag the command line did not set from its
// environment variable. A bare number for a duration means seconds.
func applyEnv(flags *pflag.FlagSet, getenv func(string) string) error {
	var errs []string
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		v := getenv(EnvName(f.Name))
		if alias, ok := envAliases[f.Name]; ok && v == "" {
			v = getenv(alias)
		}
		if v == "" {
			return
		}
		if f.Value.Type() == "duration" {
			if _, err := strconv.ParseFloat(v, 64); err == nil {
				v += "s"
			}
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Sprintf("%s=%q: %v", EnvName(f.Name), v, err))
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("environment: %s", strings.Join(errs, "; "))
	}
	return nil
}

// AgentCommand is `dropmesh agent` (what a droplet's systemd unit runs) and
// `dropmesh join`, the same agent with --join required (for joining a host
// by hand). wire builds the API and UI handlers; main passes the packages
// that serve them.
func AgentCommand(version string, wire Options) []*cobra.Command {
	build := func(use, short string, requireJoin bool) *cobra.Command {
		cfg := DefaultConfig()
		var join, joinAPI, trusted, gossipKeys, logFormat, logLevel string
		var deadGrace time.Duration
		cmd := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := applyEnv(cmd.Flags(), os.Getenv); err != nil {
					return err
				}
				if join != "" {
					cfg.Join = strings.Split(join, ",")
				}
				if joinAPI != "" {
					cfg.JoinAPI = strings.Split(joinAPI, ",")
				}
				nets, err := parseTrustedNets(trusted)
				if err != nil {
					return err
				}
				cfg.TrustedNets = nets
				if gossipKeys != "" {
					keys, err := converge.ParseGossipKeys(strings.Split(gossipKeys, ","))
					if err != nil {
						return fmt.Errorf("--gossip-keys: %w", err)
					}
					cfg.GossipKeys = keys
				}
				if deadGrace > 0 {
					cfg.Init.DeadNodeGrace = raftfsm.Duration(deadGrace)
				}
				if cfg.Init.UIHost == "" && cfg.Init.Domain != "" {
					cfg.Init.UIHost = "mesh." + cfg.Init.Domain
				}
				if requireJoin && len(cfg.Join) == 0 {
					return fmt.Errorf("join: give --join ADDR[,ADDR] (gossip address of a member)")
				}
				cfg.Version = version
				ring := logring.NewRing(2000)
				level := slog.LevelInfo
				if err := level.UnmarshalText([]byte(logLevel)); err != nil {
					return fmt.Errorf("--log-level %q: %w", logLevel, err)
				}
				h, err := logring.NewHandler(os.Stderr, logFormat, level, ring)
				if err != nil {
					return fmt.Errorf("--log-format: %w", err)
				}
				opts := wire
				opts.Logger, opts.Ring = slog.New(h), ring
				ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				if err := Enroll(ctx, cfg, opts.Logger); err != nil {
					return err
				}
				a, err := New(cfg, opts)
				if err != nil {
					return err
				}
				return a.Run(ctx)
			},
		}
		f := cmd.Flags()
		f.StringVar(&cfg.NodeID, "node-id", cfg.NodeID, "this node's id (the droplet's host name)")
		f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "where raft, the cluster secret and build contexts live")
		f.StringVar(&cfg.BindIP, "bind", cfg.BindIP, "IP raft, gossip, the API and the UI bind (default: the advertise IP; 0.0.0.0 needs --bind-any-address)")
		f.BoolVar(&cfg.BindAnyAddress, "bind-any-address", false, "allow --bind 0.0.0.0: the control ports then answer on every interface, public ones too (only behind a firewall that admits the cluster's nodes alone)")
		f.StringVar(&cfg.EdgeBindIP, "edge-bind", "", "IP the edge (80/443) binds (default: --bind when given, else every address)")
		f.StringVar(&cfg.AdvertiseIP, "advertise", "", "private (VPC) IP peers reach this node at (default: the first private address)")
		f.StringVar(&cfg.PublicIP, "public-ip", "", "public IP DNS records point at (default: the advertise IP)")
		f.StringVar(&cfg.Region, "region", "", "DigitalOcean region of this droplet")
		f.IntVar(&cfg.DropletID, "droplet-id", 0, "DigitalOcean droplet id (for power-cycles)")
		f.IntVar(&cfg.APIPort, "api-port", cfg.APIPort, "agent API port")
		f.IntVar(&cfg.GossipPort, "gossip-port", cfg.GossipPort, "gossip (memberlist) port, TCP and UDP")
		f.IntVar(&cfg.RaftPort, "raft-port", cfg.RaftPort, "raft port")
		f.IntVar(&cfg.UIPort, "ui-port", cfg.UIPort, "web UI port")
		f.IntVar(&cfg.EdgePort, "edge-port", cfg.EdgePort, "edge (client traffic) port")
		f.IntVar(&cfg.EdgeTLSPort, "edge-tls-port", cfg.EdgeTLSPort, "edge TLS port for the zones with an origin certificate (443 on a droplet; 0: no TLS)")
		f.BoolVar(&cfg.EdgeCloudflareOnly, "edge-cloudflare-only", cfg.EdgeCloudflareOnly, "cloud firewall: ports 80 and 443 only from Cloudflare's published ranges (every public record proxied; give all agents the same)")
		f.StringVar(&cfg.Edge, "edge", cfg.Edge, "edge: auto (nginx when installed), nginx, proxy or none")
		f.BoolVar(&cfg.Bootstrap, "bootstrap", false, "start a new cluster with this node as its seed")
		f.StringVar(&cfg.BootstrapToken, "bootstrap-token", "", "seed: the one-time token of `dropmesh bootstrap`; the cluster is initialised once the bootstrapper proves it and hands over the cloud tokens and the admin password")
		f.StringVar(&join, "join", "", "gossip addresses of members to join, comma-separated")
		f.StringVar(&cfg.JoinToken, "join-token", "", "one-time join token: a node without a certificate trades it for one (user data, or `dropmesh join-token create`)")
		f.StringVar(&cfg.CAFingerprint, "ca-fingerprint", "", "with --join-token: the cluster CA's fingerprint (sha256:...) the member's certificate must chain to")
		f.StringVar(&joinAPI, "join-api", "", "with --join-token: members' API addresses to enroll through, comma-separated (default: the --join hosts at --api-port)")
		f.StringVar(&cfg.ClusterSecret, "cluster-secret", "", "the cluster secret (64 hex); prefer --cluster-secret-file")
		f.StringVar(&cfg.ClusterSecretFile, "cluster-secret-file", "", "file holding the cluster secret (default DATA_DIR/cluster-secret)")
		f.StringVar(&cfg.ClusterName, "cluster-name", cfg.ClusterName, "cluster name (labels gossip; other clusters cannot join)")
		f.StringVar(&cfg.ClusterID, "cluster-id", "", "seed: the cluster id (default: made up at initialisation)")
		f.StringVar(&cfg.AdminPasswordFile, "admin-password-file", "", "seed: file with the admin's password (default: generated into DATA_DIR/admin-password)")
		f.DurationVar(&cfg.HealthInterval, "health-interval", cfg.HealthInterval, "health check interval (HEALTH_CHECK_INTERVAL)")
		f.DurationVar(&cfg.DeadServerTimeout, "dead-server-timeout", cfg.DeadServerTimeout,
			"how long a dead (not left) raft server keeps its place before the leader removes it and promotes a non-voter; must be positive")
		f.BoolVar(&cfg.RequireAuthAlways, "require-auth-always", cfg.RequireAuthAlways, "require the API key also from inside the VPC (REQUIRE_AUTH_ALWAYS); false needs --trusted-nets")
		f.StringVar(&gossipKeys, "gossip-keys", "", "gossip keys (hex, comma-separated, the primary first) to start with before this node has its own copy: what a new droplet's user data carries after a key rotation")
		f.StringVar(&trusted, "trusted-nets", "", "with --require-auth-always=false: networks (CIDRs, comma-separated, e.g. the VPC's 10.110.0.0/20) whose clients may skip the API key")
		f.StringVar(&cfg.PublishIP, "publish-ip", "", "IP container ports are published on (default: the advertise IP)")
		f.StringVar(&cfg.ContainerSuffix, "container-suffix", "", "suffix of container names (when agents share a Docker engine)")
		f.BoolVar(&cfg.NoRuntime, "no-runtime", false, "run without Docker (membership and state only)")
		f.StringVar(&cfg.Discovery, "discovery", "auto", "service names for containers: auto (on when root), on or off")
		f.IntVar(&cfg.MeshPort, "mesh-port", DefaultMeshPort, "port of the discovery gateway on the private address")
		f.BoolVar(&cfg.LocalMode, "local-mode", false, "this agent belongs to `dropmesh local up`")
		f.DurationVar(&cfg.DrainDelay, "drain-delay", cfg.DrainDelay, "how long an old container serves after the edge switched away")
		f.DurationVar(&cfg.ImageGrace, "image-grace", 24*time.Hour, "how long an image dropmesh put into the engine stays once no kept revision references it")
		f.StringVar(&logFormat, "log-format", cfg.LogFormat, "log format: text or json")
		f.StringVar(&logLevel, "log-level", cfg.LogLevel, "log level: debug, info, warn, error")
		// Seed-only settings, used once when the cluster is initialised.
		f.StringVar(&cfg.Init.Domain, "domain", "", "seed: the Cloudflare zone of the cluster's hosts")
		f.StringVar(&cfg.Init.UIHost, "ui-host", "", "seed: public host name of the UI (default mesh.DOMAIN)")
		f.IntVar(&cfg.Init.DesiredNodes, "nodes", 0, "seed: grow the cluster to this many nodes")
		f.StringVar(&cfg.Init.DOBaseURL, "do-base-url", "", "seed: DigitalOcean API base URL (the fake cloud in local mode)")
		f.StringVar(&cfg.Init.CFBaseURL, "cf-base-url", "", "seed: Cloudflare API base URL (the fake cloud in local mode)")
		f.StringVar(&cfg.Init.BaseSnapshot, "base-snapshot", "", "seed: snapshot new droplets start from")
		f.StringVar(&cfg.Init.DropletSize, "droplet-size", "", "seed: size of new droplets")
		f.StringVar(&cfg.InitDOToken, "do-token", "", "seed: DigitalOcean API token (sealed into the state at initialisation)")
		f.StringVar(&cfg.InitCFToken, "cf-token", "", "seed: Cloudflare API token (sealed into the state at initialisation)")
		f.DurationVar(&deadGrace, "dead-node-grace", 0, "seed: how long a power-cycled node may stay silent before it is replaced")
		return cmd
	}
	return []*cobra.Command{
		build("agent", "Run the dropmesh agent on this machine", false),
		build("join", "Run the agent and join an existing cluster (--join required)", true),
	}
}

// Main-less helpers for tests and local mode.

// RunAgent enrolls the node if it must (Enroll) and runs an agent until
// ctx ends (tests and local mode in-process).
func RunAgent(ctx context.Context, cfg Config, opts Options) (*Agent, <-chan error, error) {
	if err := Enroll(ctx, cfg, opts.Logger); err != nil {
		return nil, nil, err
	}
	a, err := New(cfg, opts)
	if err != nil {
		return nil, nil, err
	}
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	select {
	case <-a.Ready():
		return a, errc, nil
	case err := <-errc:
		if err == nil {
			err = ctx.Err()
		}
		return nil, nil, err
	case <-time.After(60 * time.Second):
		return a, errc, fmt.Errorf("agent %s not ready after 60s", cfg.NodeID)
	}
}

// APIKeyCommand is `dropmesh api-key`: it prints the API key derived from a
// cluster secret, for scripts and clusters started by hand.
func APIKeyCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "api-key",
		Short: "Print the agent API key derived from a cluster secret",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("give --cluster-secret-file")
			}
			s, err := clusterconf.ReadClusterSecretFile(file)
			if err != nil {
				return err
			}
			k, err := clusterconf.DeriveKeys(s)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), k.APIKey)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "cluster-secret-file", "", "file holding the cluster secret")
	return cmd
}

// parseTrustedNets reads --trusted-nets: CIDRs, comma-separated.
func parseTrustedNets(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("--trusted-nets: %q is not a network such as 10.110.0.0/20: %w", f, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
