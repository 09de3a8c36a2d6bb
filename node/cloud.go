package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/cloudops"
	cloudduty "github.com/dropmesh/dropmesh/node/leader/cloud"
	"github.com/dropmesh/dropmesh/raftfsm"
	"github.com/dropmesh/dropmesh/scripts"
)

// cloud is the leader's handle on the providers, built from the settings.
type cloud struct {
	do *cloudops.DigitalOcean // nil without a DigitalOcean token
	cf *cloudops.Cloudflare   // nil without a Cloudflare token
}

// cloudShared is the part of the leader's cloud work that outlives one
// round and is shared by the duties that touch the cloud (cloud, healer):
// the intents being carried out, and one HTTP transport for the provider
// clients, which are rebuilt from the settings every round.
type cloudShared struct {
	// intents records and resolves the cloud operations and holds those
	// this agent is carrying out (package node/leader/cloud).
	intents *cloudduty.Intents

	once      sync.Once
	transport *http.Transport
}

// httpClient returns the provider clients' HTTP client: one connection
// pool with the request timeout, for the agent's lifetime.
func (cs *cloudShared) httpClient(timeout time.Duration) *http.Client {
	cs.once.Do(func() { cs.transport = cloudops.NewHTTPTransport(timeout) })
	return &http.Client{Transport: cs.transport}
}

// cloudClients opens the sealed tokens and builds the clients.
func (a *Agent) cloudClients() (cloud, error) {
	var st raftfsm.Settings
	a.fsm.View(func(s *raftfsm.State) { st = s.Settings })
	var c cloud
	hc := a.cloudShared.httpClient(a.cfg.CloudRequestTimeout)
	if st.DOToken != "" {
		tok, err := raftfsm.Open(a.keys.Sealer, raftfsm.LabelDOToken, st.DOToken)
		if err != nil {
			return c, fmt.Errorf("digitalocean token: %w", err)
		}
		c.do = cloudops.NewDigitalOcean(cloudops.DOConfig{Token: string(tok), BaseURL: st.DOBaseURL, Retry: cloudops.DefaultRetryPolicy(),
			Logger: a.logger, PollInterval: a.cloudPoll(st), HTTPClient: hc})
	}
	if st.CFToken != "" {
		tok, err := raftfsm.Open(a.keys.Sealer, raftfsm.LabelCFToken, st.CFToken)
		if err != nil {
			return c, fmt.Errorf("cloudflare token: %w", err)
		}
		c.cf = cloudops.NewCloudflare(cloudops.CFConfig{Token: string(tok), BaseURL: st.CFBaseURL, Retry: cloudops.DefaultRetryPolicy(),
			Logger: a.logger, HTTPClient: hc})
	}
	return c, nil
}

// cloudPoll is how often operations in progress at the provider are checked
// on: CloudPollInterval, and at least every 100 ms against local mode's fake
// cloud, whose actions take 50 ms.
func (a *Agent) cloudPoll(st raftfsm.Settings) time.Duration {
	if st.LocalMode {
		return min(a.cfg.CloudPollInterval, 100*time.Millisecond)
	}
	return a.cfg.CloudPollInterval
}

// cloudReady reports whether the leader can act on DigitalOcean.
func (a *Agent) cloudReady() bool {
	ready := false
	a.fsm.View(func(s *raftfsm.State) { ready = s.Settings.DOToken != "" })
	return ready
}

// runCloud keeps the cloud in shape: it keeps the DNS records equal to what
// the state says, finishes intents left unfinished, ensures the VPC and
// firewall, grows or replaces droplets, retires dead ones and builds custom
// snapshots. It runs a round every CloudInterval, on state changes and
// kicks, and every poll interval while an operation is in progress at the
// provider.
func (a *Agent) runCloud(ctx context.Context) {
	cd := newCloudDuty(a)
	wake := a.wake.Chan("cloud")
	log := a.logger.With("duty", "cloud")
	for {
		changed := a.fsm.Changed()
		busy, err := cd.round(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("leader duty failed", "err", err)
		}
		next := a.cfg.CloudInterval
		if busy {
			var st raftfsm.Settings
			a.fsm.View(func(s *raftfsm.State) { st = s.Settings })
			next = min(next, a.cloudPoll(st))
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-changed:
		case <-wake:
		}
		t.Stop()
		if ctx.Err() != nil {
			return
		}
	}
}

// cloudDuty is the state of the cloud duty for one leadership. Everything
// a new leader needs is in the raft state (intents, snapshot phases); this
// only remembers what saves requests.
type cloudDuty struct {
	a *Agent
	// shape keeps the VPC and the firewall (package node/leader/cloud).
	shape *cloudduty.Shape
	// dns keeps the Cloudflare records (package node/leader/cloud).
	dns *cloudduty.DNS
	// busy is set by a round's steps when an operation is in progress at
	// the provider, so the next round comes after the poll interval.
	busy bool
	// retryAt holds back an intent (by id), growth ("grow") or the look at
	// the droplets being created ("creates") after a failure, with a backoff
	// that doubles with the attempts, and paces the checks on operations in
	// progress (checkLater).
	retryAt map[string]time.Time
	// growFailures counts the droplet creations that failed in a row.
	growFailures int
	// actions are the provider actions this leadership started or adopted
	// for snapshot intents, by intent id; adopted marks those it found in
	// progress at the provider instead of starting them (see remember).
	actions map[string]int
	adopted map[string]bool
}

func newCloudDuty(a *Agent) *cloudDuty {
	ports := cloudops.Ports{API: a.cfg.APIPort, Gossip: a.cfg.GossipPort, Raft: a.cfg.RaftPort, Mesh: a.cfg.MeshPort}
	return &cloudDuty{a: a, dns: cloudduty.NewDNS(a, a.cloudShared.intents, a.now), shape: cloudduty.NewShape(a, a.cloudShared.intents, ports, a.cfg.EdgeCloudflareOnly)}
}

// round runs one pass of the cloud duty within CloudRoundTimeout. busy
// reports operations in progress at the provider.
func (cd *cloudDuty) round(ctx context.Context) (busy bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, cd.a.cfg.CloudRoundTimeout)
	defer cancel()
	c, err := cd.a.cloudClients()
	if err != nil {
		return false, err
	}
	cd.busy = false
	var errs []error
	// DNS first: failover does not wait behind droplet work.
	if c.cf != nil {
		errs = append(errs, cd.dns.Round(ctx, c.cf, cd.a.cfg.NodeID))
	}
	if c.do != nil {
		errs = append(errs, cd.resumeIntents(ctx, c), cd.shape.Round(ctx, c.do), cd.grow(ctx), cd.creates(ctx, c), cd.retire(ctx, c), cd.snapshots(ctx, c))
	}
	return cd.busy, errors.Join(errs...)
}

// due reports whether key (see retryAt) may be tried now.
func (cd *cloudDuty) due(key string) bool {
	at, ok := cd.retryAt[key]
	if ok && time.Now().Before(at) {
		cd.busy = true // check back at the poll interval, not the round interval
		return false
	}
	return true
}

// checkLater makes key due again after the poll interval: an operation in
// progress is checked on at that pace, however often the state changes.
func (cd *cloudDuty) checkLater(key string) {
	var st raftfsm.Settings
	cd.a.fsm.View(func(s *raftfsm.State) { st = s.Settings })
	cd.retryAfter(key, cd.a.cloudPoll(st))
}

// retryAfter makes key due again after d.
func (cd *cloudDuty) retryAfter(key string, d time.Duration) {
	if cd.retryAt == nil {
		cd.retryAt = map[string]time.Time{}
	}
	cd.retryAt[key] = time.Now().Add(d)
	cd.busy = true
}

// remember records the provider action of a snapshot intent, adopted
// (found in progress) or started by this leadership.
func (cd *cloudDuty) remember(intentID string, actionID int, adopted bool) {
	if cd.actions == nil {
		cd.actions, cd.adopted = map[string]int{}, map[string]bool{}
	}
	cd.actions[intentID] = actionID
	cd.adopted[intentID] = adopted
}

// holdBack delays key after its attempt-th failure: the poll interval
// doubled per attempt, up to five minutes, so a failing provider or a
// permanent error is not hammered.
func (cd *cloudDuty) holdBack(key string, attempt int) {
	var st raftfsm.Settings
	cd.a.fsm.View(func(s *raftfsm.State) { st = s.Settings })
	d := cd.a.cloudPoll(st)
	for i := 0; i < attempt && d < 5*time.Minute; i++ {
		d *= 2
	}
	cd.retryAfter(key, min(d, 5*time.Minute))
}

// retryIntent records a failed attempt at a stepped intent (a creation, a
// snapshot, a transfer) and holds it back; past limit since the intent was
// recorded, or when final says the error cannot pass, it fails the intent
// instead, with onFail (a snapshot marked failed, say).
func (cd *cloudDuty) retryIntent(ctx context.Context, in raftfsm.Intent, opErr error, limit time.Duration, final bool, onFail raftfsm.CloudChanges) error {
	a := cd.a
	if final || a.now().Sub(in.CreatedAt) > limit {
		return cd.failIntent(ctx, in, opErr, onFail)
	}
	cd.holdBack(in.ID, in.Attempts+1)
	if err := a.cloudShared.intents.Resolve(ctx, &raftfsm.ResolveIntent{At: a.now(), IntentID: in.ID, Retry: true, Error: opErr.Error()}); err != nil {
		return errors.Join(opErr, err)
	}
	return opErr
}

// failIntent records a stepped intent as failed, with changes (a snapshot
// marked failed, say).
func (cd *cloudDuty) failIntent(ctx context.Context, in raftfsm.Intent, opErr error, changes raftfsm.CloudChanges) error {
	delete(cd.retryAt, in.ID)
	delete(cd.actions, in.ID)
	delete(cd.adopted, in.ID)
	if in.Kind == raftfsm.IntentCreateDroplet {
		cd.growFailures++
		cd.holdBack("grow", cd.growFailures) // growth tries again with a new intent, not at once
	}
	err := cd.a.cloudShared.intents.Resolve(ctx, &raftfsm.ResolveIntent{At: cd.a.now(), IntentID: in.ID, Status: raftfsm.IntentFailed, Error: opErr.Error(), Changes: changes})
	return errors.Join(opErr, err)
}

// doneIntent records a stepped intent as done, with what it changed.
func (cd *cloudDuty) doneIntent(ctx context.Context, in raftfsm.Intent, changes raftfsm.CloudChanges) error {
	delete(cd.retryAt, in.ID)
	delete(cd.actions, in.ID)
	delete(cd.adopted, in.ID)
	if in.Kind == raftfsm.IntentCreateDroplet {
		cd.growFailures = 0
	}
	return cd.a.cloudShared.intents.Resolve(ctx, &raftfsm.ResolveIntent{At: cd.a.now(), IntentID: in.ID, Status: raftfsm.IntentDone, Changes: changes})
}

// permanent reports whether a provider error will not pass by trying again:
// a refused request (4xx but a rate limit or a timeout), a missing
// resource, or a bad argument.
func permanent(err error) bool {
	if errors.Is(err, cloudops.ErrNotFound) || errors.Is(err, cloudops.ErrInvalid) || errors.Is(err, raftfsm.ErrInvalid) {
		return true
	}
	code := cloudops.StatusCode(err)
	return code >= 400 && code < 500 && code != http.StatusTooManyRequests && code != http.StatusRequestTimeout
}

// resumeIntents finishes the intents left pending that no duty of this
// node is carrying out: a previous leader's, or one whose outcome could not
// be committed. Creations and snapshots are not among them: creates and
// snapshots advance those from the state, whoever recorded them. Every
// cloud call is idempotent (ensure and delete converge), so running one
// again cannot duplicate anything, except a power-cycle: that one is not
// repeated.
func (cd *cloudDuty) resumeIntents(ctx context.Context, c cloud) error {
	a := cd.a
	var errs []error
	for _, in := range a.cloudShared.intents.Pending(raftfsm.IntentDeleteDroplet, raftfsm.IntentPowerCycle, raftfsm.IntentEnsureDNS,
		raftfsm.IntentDeleteDNS, raftfsm.IntentEnsureVPC, raftfsm.IntentEnsureFirewall) {
		if !a.cloudShared.intents.Claim(in.ID) {
			continue // a duty of this node is carrying it out right now
		}
		errs = append(errs, cd.resumeIntent(ctx, c, in))
		a.cloudShared.intents.Release(in.ID)
	}
	return errors.Join(errs...)
}

// resumeIntent finishes one claimed intent, if it is still pending (it may
// have been resolved between the look and the claim).
func (cd *cloudDuty) resumeIntent(ctx context.Context, c cloud, in raftfsm.Intent) error {
	a := cd.a
	pending := false
	a.fsm.View(func(s *raftfsm.State) {
		cur, ok := s.Cloud.Intents[in.ID]
		pending = ok && cur.Status == raftfsm.IntentPending
	})
	if !pending {
		return nil
	}
	a.logger.Info("resuming an unfinished cloud operation", "intent", in.ID, "kind", in.Kind, "target", in.Target)
	op := func(context.Context) (raftfsm.CloudChanges, error) { return raftfsm.CloudChanges{}, nil }
	if in.Kind == raftfsm.IntentDeleteDroplet {
		op = func(ctx context.Context) (raftfsm.CloudChanges, error) {
			return a.deleteDroplet(ctx, c, in.Target, in.Params)
		}
	}
	// Ensures run again on their own; a power-cycle is not repeated.
	return a.cloudShared.intents.Finish(ctx, in.ID, in.Kind, in.Target, op)
}

// grow records the creation of one droplet when the cluster has fewer than
// DesiredNodes nodes that are not dead, counting droplets still being
// created; creates then makes it. One at a time: nothing is added while a
// creation is pending, and after a failed one growth waits a backoff.
func (cd *cloudDuty) grow(ctx context.Context) error {
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
		want, seq = s.Settings.DesiredNodes, nextNodeSeq(s)
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
	if pending || want == 0 || have >= want || len(st.Regions) == 0 || st.BaseSnapshot == "" || !cd.due("grow") {
		return nil
	}
	seq = max(seq, have) + 1
	nodeID := fmt.Sprintf("node-%d", seq)
	params := map[string]string{"node": nodeID, "region": st.Regions[(seq-1)%len(st.Regions)], "seq": strconv.Itoa(seq)}
	if replaces != "" {
		params["replaces"] = replaces
	}
	a.logger.Info("creating a droplet", "node", nodeID, "have", have, "want", want, "replaces", replaces)
	_, err := a.apply(ctx, &raftfsm.RecordIntent{At: a.now(), Intent: raftfsm.Intent{ID: newID("int"), Kind: raftfsm.IntentCreateDroplet,
		Target: dropletName(st, nodeID), Params: params}})
	return err
}

// nextNodeSeq is the highest node number taken: by a node, a droplet, or a
// droplet being created. The next node is node-(nextNodeSeq+1).
func nextNodeSeq(s *raftfsm.State) int {
	seq := max(s.Cloud.NextNodeSeq, len(s.Nodes))
	taken := func(id string) {
		if n, err := strconv.Atoi(strings.TrimPrefix(id, "node-")); err == nil && strings.HasPrefix(id, "node-") {
			seq = max(seq, n)
		}
	}
	for id := range s.Nodes {
		taken(id)
	}
	for _, d := range s.Cloud.Droplets {
		taken(d.NodeID)
	}
	for _, in := range s.Cloud.Intents {
		if in.Kind == raftfsm.IntentCreateDroplet && in.Status == raftfsm.IntentPending {
			taken(in.Params["node"])
		}
	}
	return seq
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

// creates advances every pending droplet creation, whoever recorded it
// (growth, `nodes add`, a previous leader), by one step a round, so that no
// round waits for a droplet: a droplet the provider does not have (by name
// and cluster tag) is created; one that is active is recorded and its
// intent done; one still coming up is checked on next round, until
// DropletActiveTimeout after its intent, when the intent fails naming it.
func (cd *cloudDuty) creates(ctx context.Context, c cloud) error {
	a := cd.a
	var todo []raftfsm.Intent
	for _, in := range a.cloudShared.intents.Pending(raftfsm.IntentCreateDroplet) {
		if cd.due(in.ID) {
			todo = append(todo, in)
		}
	}
	if len(todo) == 0 || !cd.due("creates") {
		return nil
	}
	var st raftfsm.Settings
	a.fsm.View(func(s *raftfsm.State) { st = s.Settings })
	tag := cloudduty.ClusterTag(st)
	existing, err := c.do.ListDroplets(ctx, tag)
	if err != nil {
		cd.holdBack("creates", 2) // the listing was retried already; give the API a breather
		return err
	}
	byName := map[string]cloudops.Droplet{}
	for _, d := range existing {
		if old, ok := byName[d.Name]; !ok || d.ID < old.ID { // the oldest, as CreateDroplet picks
			byName[d.Name] = d
		}
	}
	var errs []error
	for _, in := range todo {
		errs = append(errs, cd.createStep(ctx, c, st, in, byName))
	}
	return errors.Join(errs...)
}

// createStep advances one droplet creation.
func (cd *cloudDuty) createStep(ctx context.Context, c cloud, st raftfsm.Settings, in raftfsm.Intent, byName map[string]cloudops.Droplet) error {
	a := cd.a
	limit := a.cfg.DropletActiveTimeout
	d, ok := byName[in.Target]
	if !ok {
		spec, err := a.dropletSpec(ctx, c, st, in.Params)
		if err != nil {
			err = fmt.Errorf("create droplet %q: %w", in.Target, err)
			return cd.retryIntent(ctx, in, err, limit, permanent(err), raftfsm.CloudChanges{})
		}
		spec.Name = in.Target // the name the intent recorded, which a new leader looks up
		if d, err = c.do.CreateDroplet(ctx, spec); err != nil {
			return cd.retryIntent(ctx, in, err, limit, permanent(err), raftfsm.CloudChanges{}) // the error names the droplet
		}
	}
	if d.Status == cloudops.StatusActive {
		seq, _ := strconv.Atoi(in.Params["seq"])
		a.logger.Info("droplet active", "droplet", d.Name, "id", d.ID, "node", in.Params["node"])
		return cd.doneIntent(ctx, in, raftfsm.CloudChanges{NextNodeSeq: seq, Droplet: &raftfsm.Droplet{Name: d.Name, NodeID: in.Params["node"],
			ID: d.ID, Region: d.Region, Size: d.Size, Snapshot: st.BaseSnapshot, Status: raftfsm.DropletActive, PublicIP: d.PublicIP,
			PrivateIP: d.PrivateIP, Replaces: in.Params["replaces"]}})
	}
	if a.now().Sub(in.CreatedAt) > limit {
		return cd.failIntent(ctx, in, fmt.Errorf("create droplet %q: droplet %d is still %q %s after it was asked for (DropletActiveTimeout)",
			in.Target, d.ID, d.Status, limit), raftfsm.CloudChanges{})
	}
	cd.checkLater(in.ID)
	return nil
}

// dropletSpec is the droplet of a node, from the base snapshot, with user
// data that starts and joins its agent.
//
// The base snapshot is found by name among the cluster's snapshots, else at
// DigitalOcean (a snapshot the cluster did not build itself, such as
// bootstrap's: DigitalOcean takes private images by id only). A base that
// is not there fails the creation: its name is never sent as an image slug,
// which would boot a droplet without the agent. Only local mode names an
// image slug: its fake cloud's droplets "boot" from localmode.BaseSnapshot.
func (a *Agent) dropletSpec(ctx context.Context, c cloud, st raftfsm.Settings, params map[string]string) (cloudops.DropletSpec, error) {
	var (
		vpc, vpcRegion string
		snap           int
		joins, apis    []string
	)
	a.fsm.View(func(s *raftfsm.State) {
		if s.Cloud.VPC != nil {
			vpc, vpcRegion = s.Cloud.VPC.ID, s.Cloud.VPC.Region
		}
		if sn, ok := s.Cloud.Snapshots[st.BaseSnapshot]; ok {
			snap = sn.ID
		}
		for _, id := range raftfsm.SortedKeys(s.Nodes) {
			if n := s.Nodes[id]; n.Status == raftfsm.NodeActive && n.Gossip != "" {
				joins = append(joins, n.Gossip)
			} else if n.Status == raftfsm.NodeActive && n.PrivateIP != "" {
				joins = append(joins, net.JoinHostPort(n.PrivateIP, strconv.Itoa(a.cfg.GossipPort)))
			}
			if n := s.Nodes[id]; n.Status == raftfsm.NodeActive && n.API != "" {
				apis = append(apis, n.API)
			}
		}
	})
	nodeID, region := params["node"], params["region"]
	userData, err := a.userData(ctx, st, nodeID, region, joins, apis)
	if err != nil {
		return cloudops.DropletSpec{}, err
	}
	spec := cloudops.DropletSpec{Name: dropletName(st, nodeID), Region: region, Size: orDefault(st.DropletSize, "s-1vcpu-2gb"),
		Tags: []string{cloudduty.ClusterTag(st)}, UserData: userData}
	switch {
	case snap != 0:
		spec.SnapshotID = snap
	case st.LocalMode:
		spec.ImageSlug = st.BaseSnapshot
	default:
		found, err := c.do.FindSnapshot(ctx, st.BaseSnapshot)
		if errors.Is(err, cloudops.ErrNotFound) {
			return spec, fmt.Errorf("base snapshot %q is not in the DigitalOcean account (build it with `dropmesh bootstrap`, or set base_snapshot to an existing snapshot): %w",
				st.BaseSnapshot, err)
		}
		if err != nil {
			return spec, fmt.Errorf("base snapshot %q: %w", st.BaseSnapshot, err)
		}
		spec.SnapshotID = found.ID
	}
	if vpcRegion == "" || vpcRegion == region {
		spec.VPCUUID = vpc // a VPC lives in one region: other regions get their default one
	}
	return spec, nil
}

// userData renders the cloud-init of a new node. Anything on a droplet can
// read its user data (the metadata service), so it carries nothing that
// lasts: a one-time join token for this node that expires
// (raftfsm.DefaultJoinTokenTTL; only its hash enters the state), the CA fingerprint
// the node pins while it enrolls, where to enroll and join, and plain
// settings. The cluster secret and the gossip keys come with the join
// answer, over TLS.
func (a *Agent) userData(ctx context.Context, st raftfsm.Settings, nodeID, region string, joins, joinAPI []string) (string, error) {
	tok, err := a.newJoinToken(ctx, nodeID, "droplet", raftfsm.DefaultJoinTokenTTL)
	if err != nil {
		return "", fmt.Errorf("user data of %s: %w", nodeID, err)
	}
	env := []string{
		"DROPMESH_NODE_ID=" + nodeID,
		"DROPMESH_CLUSTER_NAME=" + st.ClusterName,
		"DROPMESH_JOIN=" + strings.Join(joins, ","),
		"DROPMESH_JOIN_API=" + strings.Join(joinAPI, ","),
		"DROPMESH_JOIN_TOKEN=" + tok.Token,
		"DROPMESH_CA_FINGERPRINT=" + tok.CAFingerprint,
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
		err := a.cloudShared.intents.Run(ctx, raftfsm.IntentDeleteDroplet, v.droplet, v.params, func(ctx context.Context) (raftfsm.CloudChanges, error) {
			return a.deleteDroplet(ctx, c, v.droplet, v.params)
		})
		if err != nil {
			return err
		}
		// A replaced droplet must not come back: its raft place goes, and
		// its certificates are revoked before it is forgotten.
		if err := a.store.RemoveServer(ctx, v.node); err != nil {
			a.logger.Warn("remove replaced node from raft", "target", v.node, "err", err)
		}
		if err := a.revokeNode(ctx, v.node, "dead and replaced"); err != nil {
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

// powerCycle records the reboot, then power-cycles the droplet, within
// CloudRoundTimeout. A reboot is counted once DigitalOcean accepted it.
func (a *Agent) powerCycle(ctx context.Context, n raftfsm.Node, reason string) error {
	c, err := a.cloudClients()
	if err != nil {
		return fmt.Errorf("power-cycle %s: %w", n.ID, err)
	}
	if c.do == nil {
		return fmt.Errorf("power-cycle %s: no DigitalOcean token in the settings", n.ID)
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.CloudRoundTimeout)
	defer cancel()
	return a.cloudShared.intents.Run(ctx, raftfsm.IntentPowerCycle, n.ID, map[string]string{"droplet_id": strconv.Itoa(n.DropletID)},
		func(ctx context.Context) (raftfsm.CloudChanges, error) {
			if _, err := a.apply(ctx, &raftfsm.SetNodeStatus{At: a.now(), Node: n.ID, Status: raftfsm.NodeRebooting, Reason: reason, Reboot: true}); err != nil {
				return raftfsm.CloudChanges{}, err
			}
			a.logger.Warn("power-cycling a node", "target", n.ID, "droplet", n.DropletID, "reason", reason)
			if _, err := c.do.DropletAction(ctx, n.DropletID, cloudops.ActionPowerCycle); err != nil {
				return raftfsm.CloudChanges{}, err
			}
			a.metrics.ObserveHeal("reboot")
			return raftfsm.CloudChanges{}, nil
		})
}
