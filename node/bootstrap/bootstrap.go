package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/cloudops"
)

// VPCRange is the cluster VPC's private range; the leader ensures the same
// VPC (VPCName, in the first region, with this range).
const VPCRange = "10.110.0.0/20"

// AdminUser is the UI user the seed creates.
const AdminUser = "admin"

// VPCName is the name of the cluster's VPC; the leader ensures the same one,
// so a seed created in it (by bootstrap or local mode) is in the leader's VPC.
func VPCName(cluster string) string { return cluster + "-vpc" }

// Names of the cluster's cloud resources; the leader uses the same ones.
func firewallName(cluster string) string { return cluster + "-firewall" }
func dropletName(cluster, nodeID string) string {
	return cluster + "-" + nodeID
}

// ClusterTag is the tag on every droplet of the cluster, which the cluster
// firewall applies to: dropmesh-NAME-ID8, as the leader computes it from the
// settings. A seed must carry it (and its agent get the same cluster id,
// DROPMESH_CLUSTER_ID) or the leader's firewall leaves it out.
func ClusterTag(cluster, clusterID string) string {
	return "dropmesh-" + cluster + "-" + clusterID[:min(8, len(clusterID))]
}

// Result is what a bootstrap made and how to reach it.
type Result struct {
	// UIURL is the web UI's address.
	UIURL string
	// AdminUser and AdminPassword are the UI login.
	AdminUser, AdminPassword string
	// APIKey is the agent API's key (derived from the cluster secret).
	APIKey string
	// EnvFile points the CLI at the cluster: `. EnvFile`.
	EnvFile string
	// Record is what the state dir knows of the cluster.
	Record Record
	// Nodes are the ids of the nodes alive at the end.
	Nodes []string
}

// Run bootstraps a cluster (see the package comment). Every step looks up
// what exists before it creates anything, so Run can be repeated after a
// failure at any step; the progress goes to opts.Out.
func Run(ctx context.Context, opts Options) (Result, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return Result{}, err
	}
	r := &run{o: o, p: newProgress(o.Out)}
	return r.run(ctx)
}

// run is one bootstrap.
type run struct {
	o   Options
	p   *progress
	sd  *StateDir
	rec Record
	do  *cloudops.DigitalOcean
	cf  *cloudops.Cloudflare
}

func (r *run) run(ctx context.Context) (Result, error) {
	o, p := r.o, r.p
	var err error
	if r.sd, err = OpenStateDir(o.StateDir); err != nil {
		return Result{}, err
	}
	if err := r.loadRecord(); err != nil {
		return Result{}, err
	}
	sum, err := fileSHA256(o.Binary)
	if err != nil {
		return Result{}, fmt.Errorf("binary: %w", err)
	}
	r.rec.Snapshot = snapshotName(o.Version, sum)
	r.do = cloudops.NewDigitalOcean(cloudops.DOConfig{Token: o.DOToken, BaseURL: o.DOBaseURL, Retry: o.Config.Retry,
		Logger: o.Logger, PollInterval: o.Config.PollInterval})
	r.cf = cloudops.NewCloudflare(cloudops.CFConfig{Token: o.CFToken, BaseURL: o.CFBaseURL, Retry: o.Config.Retry, Logger: o.Logger})

	p.line("bootstrapping dropmesh cluster %q (id %s) for %s in %s; state in %s",
		o.Name, r.rec.ClusterID, o.Domain, strings.Join(o.Regions, ", "), r.sd.Path)
	if err := p.step("checking the Cloudflare zone of "+o.uiHost(), func() (string, error) {
		z, err := r.cf.FindZone(ctx, o.uiHost())
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("zone %s, id %s", z.Name, z.ID), nil
	}); err != nil {
		return Result{}, err
	}
	vpc, err := r.ensureNetwork(ctx)
	if err != nil {
		return Result{}, err
	}
	snap, err := r.ensureSnapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	seed, err := r.ensureSeed(ctx, vpc, snap)
	if err != nil {
		return Result{}, err
	}
	password, err := r.sd.AdminPassword()
	if err != nil {
		return Result{}, err
	}
	client := &agentClient{hc: o.HTTPClient, endpoints: o.endpoints(seed)}
	if err := r.awaitSeed(ctx, client, password); err != nil {
		return Result{}, err
	}
	nodes, err := r.awaitGrowth(ctx, client)
	if err != nil {
		return Result{}, err
	}
	res := Result{UIURL: "https://" + o.uiHost(), AdminUser: AdminUser, AdminPassword: password, APIKey: client.apiKey,
		EnvFile: r.sd.File(EnvFile), Nodes: nodes}
	if err := r.sd.WriteEnv(res.UIURL, client.apiKey); err != nil {
		return res, err
	}
	if err := r.sd.SaveRecord(r.rec); err != nil {
		return res, err
	}
	res.Record = r.rec
	p.line("")
	p.line("dropmesh cluster %q is up: %d nodes (%s).", o.Name, len(nodes), strings.Join(nodes, ", "))
	p.line("  UI:       %s", res.UIURL)
	p.line("  login:    %s / %s   (also in %s)", AdminUser, password, r.sd.File(AdminPasswordFile))
	p.line("  CLI:      . %s   (DROPMESH_ADDR=%s and the API key)", res.EnvFile, res.UIURL)
	if _, err := os.Stat(r.sd.File(CACertFile)); err == nil {
		p.line("  CA:       %s   (the cluster's CA, pinned: DROPMESH_CACERT)", r.sd.File(CACertFile))
	}
	p.line("  API key:  %s   (keep it: it opens the cluster)", r.sd.File(APIKeyFile))
	return res, nil
}

// loadRecord reads the state dir's record, or starts one; a state dir of
// another cluster is refused.
func (r *run) loadRecord() error {
	o := r.o
	rec, found, err := r.sd.LoadRecord()
	if err != nil {
		return err
	}
	if found {
		switch {
		case rec.Name != o.Name:
			return fmt.Errorf("state dir %s belongs to cluster %q, not %q: give another --state-dir", r.sd.Path, rec.Name, o.Name)
		case rec.Domain != o.Domain:
			return fmt.Errorf("state dir %s belongs to cluster %q of domain %s, not %s: give another --name or --state-dir", r.sd.Path, rec.Name, rec.Domain, o.Domain)
		case len(rec.Regions) > 0 && rec.Regions[0] != o.Regions[0]:
			return fmt.Errorf("state dir %s belongs to cluster %q in %s, not %s: its VPC and seed cannot move", r.sd.Path, rec.Name, rec.Regions[0], o.Regions[0])
		case rec.ClusterID == "":
			return fmt.Errorf("state dir %s: %s has no cluster id", r.sd.Path, RecordFile)
		}
	} else {
		id, err := NewClusterID()
		if err != nil {
			return err
		}
		rec = Record{Name: o.Name, ClusterID: id, Domain: o.Domain, CreatedAt: time.Now().UTC()}
	}
	rec.UIHost, rec.Regions, rec.Size, rec.Nodes = o.uiHost(), slices.Clone(o.Regions), o.Size, o.Nodes
	rec.Tag = ClusterTag(o.Name, rec.ClusterID)
	r.rec = rec
	return r.sd.SaveRecord(rec)
}

// ensureNetwork ensures the VPC and the cluster firewall.
func (r *run) ensureNetwork(ctx context.Context) (cloudops.VPC, error) {
	o, p := r.o, r.p
	var vpc cloudops.VPC
	if err := p.step(fmt.Sprintf("ensuring the VPC %s in %s", VPCName(o.Name), o.Regions[0]), func() (string, error) {
		var err error
		if vpc, err = r.do.EnsureVPC(ctx, VPCName(o.Name), o.Regions[0], VPCRange); err != nil {
			return "", err
		}
		r.rec.VPCID = vpc.ID
		return fmt.Sprintf("vpc %s, %s", vpc.ID, vpc.IPRange), r.sd.SaveRecord(r.rec)
	}); err != nil {
		return vpc, err
	}
	err := p.step("ensuring the firewall "+firewallName(o.Name), func() (string, error) {
		ports := cloudops.DefaultPorts()
		spec := cloudops.ClusterFirewall(firewallName(o.Name), r.rec.Tag, ports)
		fw, err := r.do.EnsureFirewall(ctx, spec)
		if err != nil {
			return "", err
		}
		r.rec.FirewallID = fw.ID
		return fmt.Sprintf("firewall %s on tag %s: 80, 443 open; %d, %d, %d from droplets tagged %s only; no SSH",
			fw.ID, r.rec.Tag, ports.API, ports.Gossip, ports.Raft, r.rec.Tag), r.sd.SaveRecord(r.rec)
	})
	return vpc, err
}

// ensureSnapshot finds or builds the base snapshot, in every region.
func (r *run) ensureSnapshot(ctx context.Context) (cloudops.Snapshot, error) {
	o, p := r.o, r.p
	var snap cloudops.Snapshot
	err := p.step("ensuring the base snapshot "+r.rec.Snapshot, func() (string, error) {
		b := &Builder{Cloud: r.do, Hosts: NewHostKeys(r.sd.File(KnownHostsFile)), KeyPath: r.sd.File(BuilderKeyFile),
			Target: o.BuilderTarget, Binary: o.Binary, Config: o.Config, Logger: o.Logger, out: p.sub()}
		var err error
		snap, err = b.Ensure(ctx, SnapshotSpec{Name: r.rec.Snapshot, Regions: o.Regions, Cluster: o.Name})
		if err != nil {
			return "", err
		}
		r.rec.SnapshotID = snap.ID
		return fmt.Sprintf("snapshot %d in %s", snap.ID, strings.Join(snap.Regions, ", ")), r.sd.SaveRecord(r.rec)
	})
	return snap, err
}

// ensureSeed creates the seed droplet (or finds it). Its user data carries
// a one-time bootstrap token, kept in the state dir until the seed is
// claimed with it, and no secret.
func (r *run) ensureSeed(ctx context.Context, vpc cloudops.VPC, snap cloudops.Snapshot) (cloudops.Droplet, error) {
	o, p := r.o, r.p
	name := dropletName(o.Name, SeedNodeID)
	var seed cloudops.Droplet
	err := p.step(fmt.Sprintf("creating the seed droplet %s in %s", name, o.Regions[0]), func() (string, error) {
		existing, err := r.do.ListDroplets(ctx, r.rec.Tag)
		if err != nil {
			return "", err
		}
		i := slices.IndexFunc(existing, func(d cloudops.Droplet) bool { return d.Name == name })
		exists := i >= 0
		_, claimed, err := r.sd.APIKey()
		if err != nil {
			return "", err
		}
		_, tokErr := os.Stat(r.sd.File(BootstrapTokenFile))
		switch {
		case exists && !claimed && tokErr != nil:
			return "", fmt.Errorf("the seed droplet %s exists but %s holds neither its bootstrap token nor its API key: this cluster was bootstrapped from another state dir", name, r.sd.Path)
		case !exists && claimed:
			// A new seed is a new cluster: the old one's key opens nothing.
			if err := os.Remove(r.sd.File(APIKeyFile)); err != nil {
				return "", fmt.Errorf("remove the API key of the gone seed: %w", err)
			}
		}
		token := ""
		if !exists {
			if token, err = r.sd.BootstrapToken(); err != nil {
				return "", err
			}
		}
		if exists {
			seed = existing[i]
		} else {
			ud, err := seedUserData(seedParams{ClusterName: o.Name, ClusterID: r.rec.ClusterID, BootstrapToken: token,
				Domain: o.Domain, Nodes: o.Nodes, Snapshot: r.rec.Snapshot, Region: o.Regions[0], Size: o.Size,
				DOBaseURL: o.DOBaseURL, CFBaseURL: o.CFBaseURL})
			if err != nil {
				return "", err
			}
			if seed, err = r.do.CreateDroplet(ctx, cloudops.DropletSpec{Name: name, Region: o.Regions[0], Size: o.Size,
				SnapshotID: snap.ID, VPCUUID: vpc.ID, Tags: []string{r.rec.Tag}, UserData: ud}); err != nil {
				return "", err
			}
		}
		r.rec.SeedDropletID = seed.ID
		if err := r.sd.SaveRecord(r.rec); err != nil {
			return "", err
		}
		wctx, cancel := context.WithTimeout(ctx, o.Config.DropletTimeout)
		defer cancel()
		if seed, err = r.do.WaitForDropletStatus(wctx, seed.ID, cloudops.StatusActive); err != nil {
			return "", err
		}
		r.rec.SeedPublicIP = seed.PublicIP
		how := "created"
		if exists {
			how = "exists"
		}
		return fmt.Sprintf("%s: droplet %d, public %s, private %s", how, seed.ID, seed.PublicIP, seed.PrivateIP), r.sd.SaveRecord(r.rec)
	})
	return seed, err
}

// awaitSeed waits for the seed's agent to answer, hands it the tokens and
// the admin password (claimSeed), then checks the cluster it initialised
// and keeps its wanted size equal to --nodes.
func (r *run) awaitSeed(ctx context.Context, c *agentClient, password string) error {
	o, p := r.o, r.p
	ctx, cancel := context.WithTimeout(ctx, o.Config.AgentTimeout)
	defer cancel()
	if err := p.step("waiting for the seed's agent", func() (string, error) {
		var last error
		for {
			ans, e, err := c.ping(ctx)
			if err == nil {
				return fmt.Sprintf("%s, version %s, at %s", ans.Node, ans.Version, e), nil
			}
			last = err
			if err := sleep(ctx, o.Config.PollInterval); err != nil {
				return "", fmt.Errorf("no answer: %w (last: %v)", err, last)
			}
		}
	}); err != nil {
		return err
	}
	if err := r.claimSeed(ctx, c, password); err != nil {
		return err
	}
	return p.step("checking the cluster the seed initialised", func() (string, error) {
		var st settingsAnswer
		var last error
		for {
			err := c.call(ctx, http.MethodGet, "/v1/settings", nil, &st)
			if err == nil && st.Initialized {
				break
			}
			if errors.Is(err, errNoTrustedEndpoint) {
				return "", err
			}
			last = err
			if err := sleep(ctx, o.Config.PollInterval); err != nil {
				return "", fmt.Errorf("no settings: %w (last: %v)", err, last)
			}
		}
		var notes []string
		if st.ClusterID != r.rec.ClusterID {
			// An agent without --cluster-id made its own; the firewall and
			// the seed carry the tag of ours, the leader's new droplets
			// that of its.
			p.line("warning: the seed's agent ignored DROPMESH_CLUSTER_ID (cluster id %s, not %s): the leader's droplets will carry tag %s, the firewall made here tag %s",
				st.ClusterID, r.rec.ClusterID, ClusterTag(o.Name, st.ClusterID), r.rec.Tag)
		}
		if st.DOToken == "" || st.CFToken == "" {
			return "", fmt.Errorf("the seed holds no %s", missingTokens(st))
		}
		if st.DesiredNodes != o.Nodes {
			// A re-run with another --nodes: the leader grows (or stops growing) to it.
			req := map[string]int{"desired_nodes": o.Nodes}
			if err := c.call(ctx, http.MethodPatch, "/v1/settings", req, nil); err != nil {
				return "", fmt.Errorf("set the cluster's size to %d: %w", o.Nodes, err)
			}
			notes = append(notes, fmt.Sprintf("size set to %d nodes (was %d)", o.Nodes, st.DesiredNodes))
		}
		return strings.Join(append([]string{"cluster " + st.ClusterID, "tokens sealed"}, notes...), "; "), nil
	})
}

func missingTokens(st settingsAnswer) string {
	var m []string
	if st.DOToken == "" {
		m = append(m, "DigitalOcean token")
	}
	if st.CFToken == "" {
		m = append(m, "Cloudflare token")
	}
	return strings.Join(m, " and ")
}

// awaitGrowth waits until the cluster has the wanted number of live
// members and a leader, printing each change.
func (r *run) awaitGrowth(ctx context.Context, c *agentClient) ([]string, error) {
	o, p := r.o, r.p
	ctx, cancel := context.WithTimeout(ctx, o.Config.GrowTimeout)
	defer cancel()
	sub := p.sub()
	var alive []string
	err := p.step(fmt.Sprintf("waiting for the cluster to grow to %d nodes", o.Nodes), func() (string, error) {
		shown := ""
		var last error
		for {
			var ca clusterAnswer
			err := c.call(ctx, http.MethodGet, "/v1/cluster", nil, &ca)
			if err == nil {
				alive = alive[:0]
				for _, m := range ca.Members {
					if m.Status == "alive" {
						alive = append(alive, m.ID)
					}
				}
				sort.Strings(alive)
				now := fmt.Sprintf("%d/%d nodes alive: %s; leader %s", len(alive), o.Nodes, strings.Join(alive, ", "), orNone(ca.Leader.ID))
				if now != shown {
					sub.line("%s", now)
					shown = now
				}
				if len(alive) >= o.Nodes && ca.Leader.ID != "" {
					return "leader " + ca.Leader.ID, nil
				}
			} else {
				last = err
			}
			if err := sleep(ctx, o.Config.PollInterval); err != nil {
				return "", fmt.Errorf("%d of %d nodes after %s: %w (last error: %v)", len(alive), o.Nodes, o.Config.GrowTimeout, err, last)
			}
		}
	})
	return alive, err
}

func orNone(s string) string {
	if s == "" {
		return "none yet"
	}
	return s
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fileSHA256 is the hex SHA-256 of a file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
