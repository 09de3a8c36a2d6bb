package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/raftfsm"
	"github.com/dropmesh/dropmesh/scripts"
)

// cloud is the leader's handle on the providers, built from the settings.
type cloud struct {
	do *cloudops.DigitalOcean // nil without a DigitalOcean token
	cf *cloudops.Cloudflare   // nil without a Cloudflare token
}

// cloudClients opens the sealed tokens and builds the clients.
func (a *Agent) cloudClients() (cloud, error) {
	var st raftfsm.Settings
	a.fsm.View(func(s *raftfsm.State) { st = s.Settings })
	var c cloud
	if st.DOToken != "" {
		tok, err := raftfsm.Open(a.keys.Sealer, raftfsm.LabelDOToken, st.DOToken)
		if err != nil {
			return c, fmt.Errorf("digitalocean token: %w", err)
		}
		poll := 2 * time.Second // DigitalOcean allows 250 requests a minute
		if st.LocalMode {
			poll = 100 * time.Millisecond
		}
		c.do = cloudops.NewDigitalOcean(cloudops.DOConfig{Token: string(tok), BaseURL: st.DOBaseURL, Retry: cloudops.DefaultRetryPolicy(),
			Logger: a.logger, PollInterval: poll})
	}
	if st.CFToken != "" {
		tok, err := raftfsm.Open(a.keys.Sealer, raftfsm.LabelCFToken, st.CFToken)
		if err != nil {
			return c, fmt.Errorf("cloudflare token: %w", err)
		}
		c.cf = cloudops.NewCloudflare(cloudops.CFConfig{Token: string(tok), BaseURL: st.CFBaseURL, Retry: cloudops.DefaultRetryPolicy(), Logger: a.logger})
	}
	return c, nil
}

// cloudReady reports whether the leader can act on DigitalOcean.
func (a *Agent) cloudReady() bool {
	ready := false
	a.fsm.View(func(s *raftfsm.State) { ready = s.Settings.DOToken != "" })
	return ready
}

// clusterTag is the DigitalOcean tag on every droplet of the cluster; the
// firewall applies by it.
func clusterTag(s raftfsm.Settings) string {
	return "dropmesh-" + s.ClusterName + "-" + s.ClusterID[:min(8, len(s.ClusterID))]
}

// runCloud keeps the cloud in shape: finishes intents a previous leader
// left, ensures the VPC and firewall, grows or replaces droplets, and keeps
// the DNS records equal to what the state says.
func (a *Agent) runCloud(ctx context.Context) {
	cd := &cloudDuty{a: a}
	a.every(ctx, "cloud", 5*time.Second, true, cd.round)
}

type cloudDuty struct {
	a         *Agent
	shapeDone string // settings fingerprint the shape was ensured for
	lastTry   map[string]time.Time
}

func (cd *cloudDuty) round(ctx context.Context) error {
	a := cd.a
	c, err := a.cloudClients()
	if err != nil {
		return err
	}
	var errs []error
	if c.do != nil {
		errs = append(errs, cd.resumeIntents(ctx, c), cd.shape(ctx, c), cd.grow(ctx, c), cd.retire(ctx, c), cd.snapshots(ctx, c))
	}
	if c.cf != nil {
		errs = append(errs, cd.dns(ctx, c))
	}
	return errors.Join(errs...)
}

// intent records an intent, runs op, and records the outcome and changes.
func (a *Agent) intent(ctx context.Context, kind raftfsm.IntentKind, target string, params map[string]string,
	op func(ctx context.Context) (raftfsm.CloudChanges, error)) error {
	id := newID("int")
	if _, err := a.apply(ctx, &raftfsm.RecordIntent{At: a.now(), Intent: raftfsm.Intent{ID: id, Kind: kind, Target: target, Params: params}}); err != nil {
		return err
	}
	return a.finishIntent(ctx, id, kind, target, op)
}

func (a *Agent) finishIntent(ctx context.Context, id string, kind raftfsm.IntentKind, target string,
	op func(ctx context.Context) (raftfsm.CloudChanges, error)) error {
	changes, opErr := op(ctx)
	res := &raftfsm.ResolveIntent{At: a.now(), IntentID: id, Status: raftfsm.IntentDone, Changes: changes}
	if opErr != nil {
		res.Status, res.Error = raftfsm.IntentFailed, opErr.Error()
		if ctx.Err() != nil {
			return opErr // leadership lost mid-call: the next leader resumes the intent
		}
	}
	if _, err := a.apply(ctx, res); err != nil {
		return errors.Join(opErr, err)
	}
	if opErr != nil {
		return fmt.Errorf("%s %s: %w", kind, target, opErr)
	}
	return nil
}

// resumeIntents finishes the intents a previous leader recorded but did not
// resolve. Every cloud call is idempotent (create looks up by name first;
// ensure and delete converge), so running it again cannot duplicate
// anything, except a power-cycle: that one is not repeated.
func (cd *cloudDuty) resumeIntents(ctx context.Context, c cloud) error {
	a := cd.a
	var pending []raftfsm.Intent
	a.fsm.View(func(s *raftfsm.State) {
		for _, in := range s.Cloud.PendingIntents() {
			pending = append(pending, *in)
		}
	})
	var errs []error
	for _, in := range pending {
		if time.Since(in.CreatedAt) < 10*time.Second {
			continue // probably still in flight on this leader
		}
		a.logger.Info("resuming a cloud operation a previous leader started", "intent", in.ID, "kind", in.Kind, "target", in.Target)
		var op func(ctx context.Context) (raftfsm.CloudChanges, error)
		switch in.Kind {
		case raftfsm.IntentCreateDroplet:
			op = func(ctx context.Context) (raftfsm.CloudChanges, error) { return a.createDroplet(ctx, c, in.Params) }
		case raftfsm.IntentDeleteDroplet:
			op = func(ctx context.Context) (raftfsm.CloudChanges, error) {
				return a.deleteDroplet(ctx, c, in.Target, in.Params)
			}
		default:
			// Ensures run again on their own; a power-cycle is not repeated.
			op = func(context.Context) (raftfsm.CloudChanges, error) { return raftfsm.CloudChanges{}, nil }
		}
		errs = append(errs, a.finishIntent(ctx, in.ID, in.Kind, in.Target, op))
	}
	return errors.Join(errs...)
}

// shape ensures the VPC and the firewall once per leadership and settings.
func (cd *cloudDuty) shape(ctx context.Context, c cloud) error {
	a := cd.a
	var st raftfsm.Settings
	var vpc *raftfsm.VPC
	a.fsm.View(func(s *raftfsm.State) {
		st = s.Settings
		if s.Cloud.VPC != nil {
			v := *s.Cloud.VPC
			vpc = &v
		}
	})
	if len(st.Regions) == 0 || st.ClusterID == "" {
		return nil
	}
	fp := st.ClusterID + strings.Join(st.Regions, ",")
	if cd.shapeDone == fp {
		return nil
	}
	name := st.ClusterName + "-vpc"
	err := a.intent(ctx, raftfsm.IntentEnsureVPC, name, nil, func(ctx context.Context) (raftfsm.CloudChanges, error) {
		v, err := c.do.EnsureVPC(ctx, name, st.Regions[0], "10.110.0.0/20")
		if err != nil {
			return raftfsm.CloudChanges{}, err
		}
		vpc = &raftfsm.VPC{ID: v.ID, Name: v.Name, Region: v.Region, IPRange: v.IPRange}
		return raftfsm.CloudChanges{VPC: vpc}, nil
	})
	if err != nil {
		return err
	}
	fwName := st.ClusterName + "-firewall"
	err = a.intent(ctx, raftfsm.IntentEnsureFirewall, fwName, nil, func(ctx context.Context) (raftfsm.CloudChanges, error) {
		spec := cloudops.ClusterFirewall(fwName, clusterTag(st), vpc.IPRange, cloudops.Ports{API: a.cfg.APIPort, Gossip: a.cfg.GossipPort, Raft: a.cfg.RaftPort})
		fw, err := c.do.EnsureFirewall(ctx, spec)
		if err != nil {
			return raftfsm.CloudChanges{}, err
		}
		return raftfsm.CloudChanges{Firewall: &raftfsm.Firewall{ID: fw.ID, Name: fw.Name}}, nil
	})
	if err != nil {
		return err
	}
	cd.shapeDone = fp
	return nil
}

// grow creates droplets, one at a time, until the cluster has DesiredNodes
// nodes that are not dead, counting droplets still being created.
func (cd *cloudDuty) grow(ctx context.Context, c cloud) error {
	a := cd.a
	var (
		want, have int
		pending    bool
		seq        int
		st         raftfsm.Settings
		replaces   string
	)
	a.fsm.View(func(s *raftfsm.State) {
		st = s.Settings
		want, seq = s.Settings.DesiredNodes, s.Cloud.NextNodeSeq
		counted := map[string]bool{}
		var dead []string
		for id, n := range s.Nodes {
			if n.Status == raftfsm.NodeDead {
				dead = append(dead, id)
				continue
			}
			counted[id] = true
		}
		for _, d := range s.Cloud.Droplets {
			if d.Status != raftfsm.DropletDeleting && !counted[d.NodeID] {
				if n, ok := s.Nodes[d.NodeID]; !ok || n.Status != raftfsm.NodeDead {
					counted[d.NodeID] = true
				}
			}
		}
		for _, in := range s.Cloud.PendingIntents() {
			if in.Kind == raftfsm.IntentCreateDroplet {
				pending = true
			}
		}
		have = len(counted)
		slices.Sort(dead)
		for _, id := range dead {
			if !replacedBy(s, id) {
				replaces = id
				break
			}
		}
	})
	if pending || want == 0 || have >= want || len(st.Regions) == 0 || st.BaseSnapshot == "" {
		return nil
	}
	seq = max(seq, have) + 1
	nodeID := fmt.Sprintf("node-%d", seq)
	params := map[string]string{"node": nodeID, "region": st.Regions[(seq-1)%len(st.Regions)], "seq": strconv.Itoa(seq)}
	if replaces != "" {
		params["replaces"] = replaces
	}
	a.logger.Info("creating a droplet", "node", nodeID, "have", have, "want", want, "replaces", replaces)
	return a.intent(ctx, raftfsm.IntentCreateDroplet, dropletName(st, nodeID), params, func(ctx context.Context) (raftfsm.CloudChanges, error) {
		return a.createDroplet(ctx, c, params)
	})
}

// replacedBy reports whether a droplet was created to replace node id.
func replacedBy(s *raftfsm.State, id string) bool {
	for _, d := range s.Cloud.Droplets {
		if d.Replaces == id {
			return true
		}
	}
	return false
}

func dropletName(st raftfsm.Settings, nodeID string) string { return st.ClusterName + "-" + nodeID }

// createDroplet creates (or finds, by name and tag) the droplet of a node
// from the base snapshot, with user data that starts and joins its agent.
func (a *Agent) createDroplet(ctx context.Context, c cloud, params map[string]string) (raftfsm.CloudChanges, error) {
	var (
		st             raftfsm.Settings
		vpc, vpcRegion string
		snap           int
		joins          []string
	)
	a.fsm.View(func(s *raftfsm.State) {
		st = s.Settings
		if s.Cloud.VPC != nil {
			vpc, vpcRegion = s.Cloud.VPC.ID, s.Cloud.VPC.Region
		}
		if sn, ok := s.Cloud.Snapshots[s.Settings.BaseSnapshot]; ok {
			snap = sn.ID
		}
		for _, id := range raftfsm.SortedKeys(s.Nodes) {
			if n := s.Nodes[id]; n.Status == raftfsm.NodeActive && n.Gossip != "" {
				joins = append(joins, n.Gossip)
			} else if n.Status == raftfsm.NodeActive && n.PrivateIP != "" {
				joins = append(joins, net.JoinHostPort(n.PrivateIP, strconv.Itoa(a.cfg.GossipPort)))
			}
		}
	})
	nodeID, region := params["node"], params["region"]
	seq, _ := strconv.Atoi(params["seq"])
	userData, err := a.userData(st, nodeID, region, joins)
	if err != nil {
		return raftfsm.CloudChanges{}, err
	}
	if snap == 0 && !st.LocalMode {
		// A snapshot the cluster did not build itself (bootstrap's): DigitalOcean
		// takes private images by id only.
		if found, err := c.do.FindSnapshot(ctx, st.BaseSnapshot); err == nil {
			snap = found.ID
		}
	}
	if vpcRegion != "" && vpcRegion != region {
		vpc = "" // a VPC lives in one region: other regions get their default one
	}
	spec := cloudops.DropletSpec{Name: dropletName(st, nodeID), Region: region, Size: orDefault(st.DropletSize, "s-1vcpu-2gb"),
		SnapshotID: snap, VPCUUID: vpc, Tags: []string{clusterTag(st)}, UserData: userData}
	if snap == 0 {
		spec.ImageSlug = st.BaseSnapshot // local mode's image slug, or a public image
	}
	d, err := c.do.CreateDroplet(ctx, spec)
	if err != nil {
		return raftfsm.CloudChanges{}, err
	}
	if d, err = c.do.WaitForDropletStatus(ctx, d.ID, cloudops.StatusActive); err != nil {
		return raftfsm.CloudChanges{}, err
	}
	return raftfsm.CloudChanges{NextNodeSeq: seq, Droplet: &raftfsm.Droplet{Name: d.Name, NodeID: nodeID, ID: d.ID, Region: d.Region,
		Size: d.Size, Snapshot: st.BaseSnapshot, Status: raftfsm.DropletActive, PublicIP: d.PublicIP, PrivateIP: d.PrivateIP,
		Replaces: params["replaces"]}}, nil
}

// userData renders the cloud-init of a new node.
func (a *Agent) userData(st raftfsm.Settings, nodeID, region string, joins []string) (string, error) {
	secret, err := ReadClusterSecretFile(a.cfg.ClusterSecretFile)
	if err != nil {
		return "", err
	}
	env := []string{
		"DROPMESH_NODE_ID=" + nodeID,
		"DROPMESH_CLUSTER_NAME=" + st.ClusterName,
		"DROPMESH_CLUSTER_SECRET=" + secret.String(),
		"DROPMESH_JOIN=" + strings.Join(joins, ","),
		"DROPMESH_REGION=" + region,
		"HEALTH_CHECK_INTERVAL=" + a.cfg.HealthInterval.String(),
	}
	if st.LocalMode {
		env = append(env, "DROPMESH_LOCAL_MODE=1")
	}
	return scripts.RenderUserData(scripts.UserData{NodeID: nodeID, ClusterName: st.ClusterName, Env: env})
}

// retire deletes the droplets of dead nodes that were replaced and hold no
// instances any more, and forgets those nodes.
func (cd *cloudDuty) retire(ctx context.Context, c cloud) error {
	a := cd.a
	type victim struct {
		node    string
		droplet string
		params  map[string]string
	}
	var victims []victim
	a.fsm.View(func(s *raftfsm.State) {
		for _, id := range raftfsm.SortedKeys(s.Nodes) {
			n := s.Nodes[id]
			if n.Status != raftfsm.NodeDead || !replacedBy(s, id) {
				continue
			}
			busy := false
			for _, in := range s.Instances {
				if in.Node == id {
					busy = true
					break
				}
			}
			if busy {
				continue
			}
			v := victim{node: id, params: map[string]string{"node": id, "droplet_id": strconv.Itoa(n.DropletID)}}
			for _, d := range s.Cloud.Droplets {
				if d.NodeID == id {
					v.droplet = d.Name
				}
			}
			if v.droplet == "" {
				v.droplet = dropletName(s.Settings, id)
			}
			victims = append(victims, v)
		}
	})
	for _, v := range victims {
		err := a.intent(ctx, raftfsm.IntentDeleteDroplet, v.droplet, v.params, func(ctx context.Context) (raftfsm.CloudChanges, error) {
			return a.deleteDroplet(ctx, c, v.droplet, v.params)
		})
		if err != nil {
			return err
		}
		if _, err := a.apply(ctx, &raftfsm.RemoveNode{At: a.now(), Node: v.node, Reason: "dead and replaced"}); err != nil {
			return err
		}
		a.metrics.ObserveHeal("replace")
		_, _ = a.apply(ctx, &raftfsm.AppendEvent{At: a.now(), Event: raftfsm.Event{Kind: raftfsm.EventHealReplace, Severity: raftfsm.SeverityWarn,
			Node: v.node, Message: "replaced dead node " + v.node + " and deleted its droplet " + v.droplet}})
	}
	return nil
}

func (a *Agent) deleteDroplet(ctx context.Context, c cloud, name string, params map[string]string) (raftfsm.CloudChanges, error) {
	id, _ := strconv.Atoi(params["droplet_id"])
	if id != 0 {
		if err := c.do.DeleteDroplet(ctx, id); err != nil {
			return raftfsm.CloudChanges{}, err
		}
	}
	return raftfsm.CloudChanges{DeleteDroplet: name}, nil
}

// powerCycle records the reboot, then power-cycles the droplet.
func (a *Agent) powerCycle(ctx context.Context, n raftfsm.Node, reason string) error {
	c, err := a.cloudClients()
	if err != nil || c.do == nil {
		return fmt.Errorf("power-cycle %s: no cloud: %w", n.ID, err)
	}
	return a.intent(ctx, raftfsm.IntentPowerCycle, n.ID, map[string]string{"droplet_id": strconv.Itoa(n.DropletID)},
		func(ctx context.Context) (raftfsm.CloudChanges, error) {
			if _, err := a.apply(ctx, &raftfsm.SetNodeStatus{At: a.now(), Node: n.ID, Status: raftfsm.NodeRebooting, Reason: reason, Reboot: true}); err != nil {
				return raftfsm.CloudChanges{}, err
			}
			a.logger.Warn("power-cycling a node", "target", n.ID, "droplet", n.DropletID, "reason", reason)
			a.metrics.ObserveHeal("reboot")
			_, err := c.do.DropletAction(ctx, n.DropletID, cloudops.ActionPowerCycle)
			return raftfsm.CloudChanges{}, err
		})
}
