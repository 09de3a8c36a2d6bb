package ui

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// The view models below are copies made under View: templates never touch
// the state itself.

// healthCounts counts instances by health status.
type healthCounts struct {
	Healthy, Degraded, Unhealthy, Starting, Total int
}

func (h *healthCounts) add(status string) {
	h.Total++
	switch status {
	case raftfsm.HealthHealthy:
		h.Healthy++
	case raftfsm.HealthDegraded:
		h.Degraded++
	case raftfsm.HealthUnhealthy:
		h.Unhealthy++
	default:
		h.Starting++
	}
}

// Worst is the status that sums the counts up.
func (h healthCounts) Worst() string {
	switch {
	case h.Total == 0:
		return "none"
	case h.Unhealthy > 0:
		return raftfsm.HealthUnhealthy
	case h.Degraded > 0:
		return raftfsm.HealthDegraded
	case h.Starting > 0:
		return raftfsm.HealthStarting
	}
	return raftfsm.HealthHealthy
}

func healthOf(in *raftfsm.Instance) string {
	if in.Health == "" {
		return raftfsm.HealthStarting
	}
	return in.Health
}

// servicePath is the URL of a service's page: /s/<ws id>/<project>/<env>/<service>.
func servicePath(key string) string { return "/s/" + key }

// serviceKeyOf reads the service key from the route parameters.
func serviceKeyOf(c *gin.Context) string {
	return raftfsm.ServiceKey(c.Param("ws"), c.Param("project"), c.Param("env"), c.Param("service"))
}

// displayName is a service's name as the CLI writes it: without the
// workspace when it is the default one, else with the workspace's name.
func displayName(st *raftfsm.State, key string) string {
	ws, rest, ok := strings.Cut(key, "/")
	if !ok {
		return key
	}
	if w, ok := st.Workspaces[ws]; ok {
		if w.Name == raftfsm.DefaultWorkspaceName {
			return rest
		}
		return w.Name + "/" + rest
	}
	return key
}

// eventView is one line of the event log.
type eventView struct {
	At          time.Time
	Kind        string
	Severity    string
	Message     string
	Node        string
	ServicePath string
}

func eventsView(st *raftfsm.State, limit int, keep func(e *raftfsm.Event) bool) []eventView {
	var out []eventView
	items := st.Events.Items
	for i := len(items) - 1; i >= 0 && len(out) < limit; i-- {
		e := &items[i]
		if keep != nil && !keep(e) {
			continue
		}
		v := eventView{At: e.At, Kind: e.Kind, Severity: e.Severity, Message: e.Message, Node: e.Node}
		if _, ok := st.Services[e.Service]; ok {
			v.ServicePath = servicePath(e.Service)
		}
		out = append(out, v)
	}
	return out
}

// deployView is a roll-out and the phase of each instance, as the CLI shows it.
type deployView struct {
	ID          string
	Service     string
	ServicePath string
	Generation  int64
	Status      string
	Reason      string
	Actor       string
	StartedAt   time.Time
	FinishedAt  time.Time
	Done        bool
	Ready       int
	Instances   []instanceProgress
}

// instanceProgress is one instance's place in a roll-out.
type instanceProgress struct {
	Instance string
	Node     string
	Phase    string
	// State is ok, busy, failed or queued: how the phase is drawn.
	State  string
	Health string
	Error  string
}

// phaseState says how a phase is drawn.
func phaseState(phase string) string {
	switch {
	case phase == raftfsm.PhaseReady || phase == raftfsm.PhaseRunning || phase == raftfsm.PhaseScheduled:
		return "ok"
	case phase == raftfsm.PhaseFailed:
		return "failed"
	case phase == raftfsm.PhaseStopped:
		return "queued"
	}
	return "busy"
}

func deployViewOf(st *raftfsm.State, id string) *deployView {
	p, ok := control.DeployProgressOf(st, id)
	if !ok {
		return nil
	}
	d := p.Deploy
	v := &deployView{ID: d.ID, Service: displayName(st, d.Service), Generation: d.Generation, Status: d.Status,
		Reason: d.Reason, Actor: d.Actor, StartedAt: d.StartedAt, FinishedAt: d.FinishedAt, Done: p.Done}
	if _, ok := st.Services[d.Service]; ok {
		v.ServicePath = servicePath(d.Service)
	}
	for _, in := range p.Instances {
		ip := instanceProgress{Instance: in.Instance, Node: in.Node, Phase: in.Phase, Health: in.Health, Error: in.Error}
		switch {
		case in.Desired < d.Generation && !p.Done:
			ip.Phase, ip.State = "queued", "queued"
		case in.Generation < d.Generation && in.Phase != raftfsm.PhaseFailed:
			if ip.Phase == "" || phaseState(ip.Phase) == "ok" {
				ip.Phase = raftfsm.PhasePending
			}
			ip.State = "busy"
		default:
			if ip.Phase == "" {
				ip.Phase = raftfsm.PhasePending
			}
			ip.State = phaseState(ip.Phase)
		}
		if ip.State == "ok" {
			v.Ready++
		}
		v.Instances = append(v.Instances, ip)
	}
	return v
}

// setupNeeded reports whether the cloud onboarding is unfinished (and not
// in local mode, which needs no cloud account).
func (s *server) setupNeeded() bool {
	need := false
	s.node.View(func(st *raftfsm.State) {
		need = !st.Settings.LocalMode && (st.Settings.DOToken == "" || st.Settings.CFToken == "" || st.Settings.Domain == "")
	})
	return need
}

// overviewView is the overview page.
type overviewView struct {
	NodesActive int
	NodesTotal  int
	Nodes       []nodeBrief
	Services    int
	Health      healthCounts
	Rolling     []*deployView
	// MoreRolling counts the deploys in progress beyond those shown.
	MoreRolling int
	Events      []eventView
	Leader      string
	SetupNeeded bool
}

// nodeBrief is a node in the overview.
type nodeBrief struct {
	ID        string
	Status    string
	Region    string
	Instances int
	Health    healthCounts
	Leader    bool
}

// maxRollingShown bounds the deploys the overview draws, so a mass
// redeploy keeps the page light.
const maxRollingShown = 10

func (s *server) buildOverview(c *gin.Context, p *pageData) error {
	p.Title = "Overview"
	leader, _ := s.node.Leader()
	var v overviewView
	s.node.View(func(st *raftfsm.State) {
		v = s.overviews.Get(st, "leader="+leader, func() overviewView { return s.overviewOf(st, leader) })
	})
	p.Data = v
	return nil
}

// overviewOf builds the overview from the state (cached per version: see
// server.overviews).
func (s *server) overviewOf(st *raftfsm.State, leader string) overviewView {
	v := overviewView{Leader: leader}
	v.SetupNeeded = !st.Settings.LocalMode && (st.Settings.DOToken == "" || st.Settings.CFToken == "" || st.Settings.Domain == "")
	perNode := map[string]*healthCounts{}
	for _, id := range raftfsm.SortedKeys(st.Nodes) {
		perNode[id] = &healthCounts{}
	}
	for _, in := range st.Instances {
		h := healthOf(in)
		v.Health.add(h)
		if c, ok := perNode[in.Node]; ok {
			c.add(h)
		}
	}
	for _, id := range raftfsm.SortedKeys(st.Nodes) {
		n := st.Nodes[id]
		v.NodesTotal++
		if n.Status == raftfsm.NodeActive {
			v.NodesActive++
		}
		v.Nodes = append(v.Nodes, nodeBrief{ID: id, Status: string(n.Status), Region: n.Region,
			Instances: perNode[id].Total, Health: *perNode[id], Leader: id == leader})
	}
	v.Services = len(st.Services)
	for _, id := range raftfsm.SortedKeys(st.Deploys) {
		if st.Deploys[id].Status != raftfsm.DeployRolling {
			continue
		}
		if len(v.Rolling) == maxRollingShown {
			v.MoreRolling++
			continue
		}
		if d := deployViewOf(st, id); d != nil {
			v.Rolling = append(v.Rolling, d)
		}
	}
	v.Events = eventsView(st, s.cfg.RecentEvents, nil)
	return v
}

// serviceRow is a service in the services list.
type serviceRow struct {
	Key      string
	Path     string
	Name     string
	Kind     string
	Image    string
	Hosts    []string
	Replicas int
	Health   healthCounts
	Live     int64
	Gen      int64
	Deploy   *deployView
	Stranded string
	Schedule string
}

type envGroup struct {
	Name     string
	Services []serviceRow
}

type projectGroup struct {
	Name string
	Envs []envGroup
}

type workspaceGroup struct {
	ID       string
	Name     string
	Projects []projectGroup
	Services int
}

// servicesView is the services page.
type servicesView struct {
	Groups     []workspaceGroup
	Total      int
	Form       deployForm
	Nodes      []string
	Workspaces []string
}

func sourceOf(spec raftfsm.ServiceSpec) string {
	if spec.Image != "" {
		return spec.Image
	}
	if len(spec.Build) > 19 {
		return "build " + spec.Build[:19] + "…"
	}
	return "build " + spec.Build
}

func serviceRowOf(st *raftfsm.State, svc *raftfsm.Service) serviceRow {
	r := serviceRow{Key: svc.Key, Path: servicePath(svc.Key), Name: svc.Name, Kind: string(svc.Spec.Kind),
		Image: sourceOf(svc.Spec), Hosts: slices.Clone(svc.Spec.Hosts), Replicas: svc.Spec.Replicas,
		Live: svc.LiveGeneration, Gen: svc.Generation, Stranded: svc.Stranded, Schedule: svc.Spec.Schedule}
	for _, in := range st.ServiceInstances(svc.Key) {
		r.Health.add(healthOf(in))
	}
	if d, ok := st.Deploys[svc.LastDeploy]; ok && (d.Status == raftfsm.DeployRolling || d.Status == raftfsm.DeployFailed) {
		r.Deploy = deployViewOf(st, d.ID)
	}
	return r
}

func (s *server) buildServices(c *gin.Context, p *pageData) error {
	p.Title = "Services"
	v, _ := p.Data.(servicesView)
	s.node.View(func(st *raftfsm.State) {
		form := v.Form
		v = s.serviceLists.Get(st, "services", func() servicesView { return servicesOf(st) })
		v.Form = form
		if !v.Form.set {
			v.Form = defaultDeployForm()
			if key := c.Query("edit"); key != "" {
				if svc, ok := st.Services[key]; ok {
					v.Form = deployFormOf(st, svc)
				}
			}
		}
	})
	p.Data = v
	return nil
}

// servicesOf builds the services list from the state (cached per version:
// see server.serviceLists); the deploy form is the request's own.
func servicesOf(st *raftfsm.State) servicesView {
	var v servicesView
	for _, wsID := range raftfsm.SortedKeys(st.Workspaces) {
		ws := st.Workspaces[wsID]
		v.Workspaces = append(v.Workspaces, ws.Name)
		g := workspaceGroup{ID: ws.ID, Name: ws.Name}
		for _, pn := range raftfsm.SortedKeys(ws.Projects) {
			pg := projectGroup{Name: pn}
			for _, en := range raftfsm.SortedKeys(ws.Projects[pn].Envs) {
				pg.Envs = append(pg.Envs, envGroup{Name: en})
			}
			g.Projects = append(g.Projects, pg)
		}
		for _, key := range raftfsm.SortedKeys(st.Services) {
			svc := st.Services[key]
			if svc.WorkspaceID != ws.ID {
				continue
			}
			g.Services++
			v.Total++
			g.Projects = addToGroup(g.Projects, svc.Project, svc.Env, serviceRowOf(st, svc))
		}
		v.Groups = append(v.Groups, g)
	}
	sort.Slice(v.Groups, func(i, j int) bool {
		if (v.Groups[i].Name == raftfsm.DefaultWorkspaceName) != (v.Groups[j].Name == raftfsm.DefaultWorkspaceName) {
			return v.Groups[i].Name == raftfsm.DefaultWorkspaceName
		}
		return v.Groups[i].Name < v.Groups[j].Name
	})
	slices.Sort(v.Workspaces)
	for _, id := range raftfsm.SortedKeys(st.Nodes) {
		if st.Nodes[id].Status == raftfsm.NodeActive {
			v.Nodes = append(v.Nodes, id)
		}
	}
	return v
}

// addToGroup puts a service row under its project and environment, adding
// them if the state did not list them.
func addToGroup(projects []projectGroup, project, env string, row serviceRow) []projectGroup {
	pi := slices.IndexFunc(projects, func(p projectGroup) bool { return p.Name == project })
	if pi < 0 {
		projects = append(projects, projectGroup{Name: project})
		pi = len(projects) - 1
	}
	envs := projects[pi].Envs
	ei := slices.IndexFunc(envs, func(e envGroup) bool { return e.Name == env })
	if ei < 0 {
		envs = append(envs, envGroup{Name: env})
		ei = len(envs) - 1
	}
	envs[ei].Services = append(envs[ei].Services, row)
	projects[pi].Envs = envs
	return projects
}

// instanceRow is an instance on the service page.
type instanceRow struct {
	ID           string
	Slot         int
	Node         string
	Container    string
	Generation   int64
	Desired      int64
	Phase        string
	PhaseState   string
	Error        string
	Health       string
	Reason       string
	CheckedAt    time.Time
	Restarts     int
	CrashLooping bool
	LastRunAt    time.Time
	LastRunExit  int
	Day          timeline
	Week         timeline
}

// serviceView is a service's page.
type serviceView struct {
	Key         string
	Path        string
	Name        string
	Spec        raftfsm.ServiceSpec
	Source      string
	VarNames    []string
	SecretNames []string
	Generation  int64
	Live        int64
	Stranded    string
	Health      healthCounts
	Instances   []instanceRow
	Deploy      *deployView
	History     []*deployView
	Events      []eventView
	// Certs are the service's automatic HTTPS certificates (its own and a
	// zone wildcard covering one of its hosts).
	Certs     []certRow
	UpdatedAt time.Time
}

// certRow is one issued certificate on a service's page: its state, what
// the CA last said when it failed, and when the leader tries again.
type certRow struct {
	Name        string
	Hosts       []string
	Status      string
	NotAfter    time.Time
	LastError   string
	NextAttempt time.Time
}

// certsOf lists the issued certificates that serve service key's hosts.
func certsOf(st *raftfsm.State, key string, hosts []string) []certRow {
	var out []certRow
	for _, name := range raftfsm.SortedKeys(st.ACME.Certs) {
		c := st.ACME.Certs[name]
		covers := c.Service == key
		for _, h := range c.Hosts {
			if wild, ok := strings.CutPrefix(h, "*."); ok && c.Service == "" {
				for _, sh := range hosts {
					if strings.HasSuffix(sh, "."+wild) && !strings.Contains(strings.TrimSuffix(sh, "."+wild), ".") {
						covers = true
					}
				}
			}
		}
		if covers {
			out = append(out, certRow{Name: c.Name, Hosts: slices.Clone(c.Hosts), Status: c.Status, NotAfter: c.NotAfter,
				LastError: c.LastError, NextAttempt: c.NextAttempt})
		}
	}
	return out
}

func (s *server) buildService(c *gin.Context, p *pageData) error {
	key := serviceKeyOf(c)
	now := s.now()
	var v serviceView
	found := false
	s.node.View(func(st *raftfsm.State) {
		svc, ok := st.Services[key]
		if !ok {
			return
		}
		found = true
		v = serviceView{Key: key, Path: servicePath(key), Name: displayName(st, key), Spec: svc.Spec.Clone(), Source: sourceOf(svc.Spec),
			Generation: svc.Generation, Live: svc.LiveGeneration, Stranded: svc.Stranded, UpdatedAt: svc.UpdatedAt}
		v.Spec.SealedSecrets = nil
		v.VarNames = raftfsm.SortedKeys(svc.Spec.Vars)
		v.SecretNames = raftfsm.SortedKeys(svc.Spec.SealedSecrets)
		for _, in := range st.ServiceInstances(key) {
			h := healthOf(in)
			v.Health.add(h)
			history := in.History.Segments()
			phase := in.Phase
			if phase == "" {
				phase = raftfsm.PhasePending
			}
			v.Instances = append(v.Instances, instanceRow{ID: in.ID, Slot: in.Slot, Node: in.Node, Container: in.Container,
				Generation: in.Generation, Desired: in.DesiredGeneration, Phase: phase, PhaseState: phaseState(phase), Error: in.Error,
				Health: h, Reason: in.HealthReason, CheckedAt: in.CheckedAt, Restarts: in.Restarts, CrashLooping: in.CrashLooping,
				LastRunAt: in.LastRunAt, LastRunExit: in.LastRunExit,
				Day:  buildTimeline(history, now, 24*time.Hour, "24 h"),
				Week: buildTimeline(history, now, raftfsm.HistoryRetention, "7 days")})
		}
		v.Deploy = deployViewOf(st, svc.LastDeploy)
		var ids []string
		for id, d := range st.Deploys {
			if d.Service == key && id != svc.LastDeploy {
				ids = append(ids, id)
			}
		}
		sort.Slice(ids, func(i, j int) bool { return st.Deploys[ids[i]].StartedAt.After(st.Deploys[ids[j]].StartedAt) })
		for _, id := range ids[:min(len(ids), 5)] {
			v.History = append(v.History, deployViewOf(st, id))
		}
		v.Events = eventsView(st, 30, func(e *raftfsm.Event) bool { return e.Service == key })
		v.Certs = certsOf(st, key, svc.Spec.Hosts)
	})
	if !found {
		return errNoPage
	}
	p.Title = v.Name
	p.Data = v
	return nil
}

// nodeRow is a node on the infrastructure page.
type nodeRow struct {
	ID           string
	Status       string
	StatusReason string
	StatusSince  time.Time
	Region       string
	PublicIP     string
	PrivateIP    string
	DropletID    int
	Version      string
	Raft         string
	Gossip       string
	Leader       bool
	Self         bool
	LastSeen     time.Time
	Reboots      int
	FailedPings  int
	Containers   []containerRow
	Health       healthCounts
	Stats        *control.NodeStats
	StatsNote    string
}

// containerRow is an instance on a node.
type containerRow struct {
	Instance    string
	Container   string
	Service     string
	ServicePath string
	Health      string
	Reason      string
	Phase       string
}

// pendingDroplet is a droplet being created for a new node.
type pendingDroplet struct {
	Node    string
	Region  string
	Status  string
	Error   string
	Created time.Time
}

// dnsRow is a host name and the addresses it points at.
type dnsRow struct {
	Host    string
	IPs     []string
	Proxied bool
}

// infraView is the infrastructure page.
type infraView struct {
	Nodes      []nodeRow
	Pending    []pendingDroplet
	DNS        []dnsRow
	Regions    []string
	Term       uint64
	Leader     string
	ClusterErr string
	StatsNote  string
	Form       addNodesForm
	CanGrow    bool
}

// addNodesForm is the add-nodes form.
type addNodesForm struct {
	Count  string
	Region string
}

func (s *server) buildInfrastructure(c *gin.Context, p *pageData) error {
	p.Title = "Infrastructure"
	p.Poll = int(s.cfg.PollInterval / time.Millisecond)
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.ReadTimeout)
	defer cancel()
	v, _ := p.Data.(infraView)
	if v.Form.Count == "" {
		v.Form.Count = "1"
	}
	info, err := s.node.Cluster(ctx)
	if err != nil {
		v.ClusterErr = userMessage(err)
	}
	v.Term, v.Leader = info.Term, info.Leader.ID
	if v.Leader == "" {
		v.Leader, _ = s.node.Leader()
	}
	members := map[string]control.MemberInfo{}
	for _, m := range info.Members {
		members[m.ID] = m
	}
	self := s.node.NodeID()
	s.node.View(func(st *raftfsm.State) {
		v.Regions = slices.Clone(st.Settings.Regions)
		v.CanGrow = st.Settings.LocalMode || st.Settings.DOToken != ""
		for _, id := range raftfsm.SortedKeys(st.Nodes) {
			n := st.Nodes[id]
			r := nodeRow{ID: id, Status: string(n.Status), StatusReason: n.StatusReason, StatusSince: n.StatusSince, Region: n.Region,
				PublicIP: n.PublicIP, PrivateIP: n.PrivateIP, DropletID: n.DropletID, Version: n.Version, Leader: id == v.Leader,
				Self: id == self, LastSeen: n.LastSeen, Reboots: n.Reboots, FailedPings: n.ConsecutiveFailedPings,
				Raft: "unknown", Gossip: "unknown"}
			if m, ok := members[id]; ok {
				r.Raft, r.Gossip = m.Raft, m.Status
				if r.Version == "" {
					r.Version = m.Version
				}
			} else if err == nil {
				r.Raft, r.Gossip = "none", "not in the mesh"
			}
			for _, iid := range st.InstancesOn(id) {
				in := st.Instances[iid]
				h := healthOf(in)
				r.Health.add(h)
				r.Containers = append(r.Containers, containerRow{Instance: in.ID, Container: in.Container, Service: displayName(st, in.Service),
					ServicePath: servicePath(in.Service), Health: h, Reason: in.HealthReason, Phase: in.Phase})
			}
			v.Nodes = append(v.Nodes, r)
		}
		for _, name := range raftfsm.SortedKeys(st.Cloud.Droplets) {
			d := st.Cloud.Droplets[name]
			if _, known := st.Nodes[d.NodeID]; known || d.Status == raftfsm.DropletActive {
				continue
			}
			v.Pending = append(v.Pending, pendingDroplet{Node: d.NodeID, Region: d.Region, Status: d.Status, Created: d.CreatedAt})
		}
		for _, id := range raftfsm.SortedKeys(st.Cloud.Intents) {
			in := st.Cloud.Intents[id]
			if in.Kind != raftfsm.IntentCreateDroplet || in.Status == raftfsm.IntentDone {
				continue
			}
			node := in.Params["node"]
			if _, known := st.Nodes[node]; known || slices.ContainsFunc(v.Pending, func(d pendingDroplet) bool { return d.Node == node }) {
				continue
			}
			status := "creating"
			if in.Status == raftfsm.IntentFailed {
				status = "failed"
			}
			v.Pending = append(v.Pending, pendingDroplet{Node: node, Region: in.Params["region"], Status: status, Error: in.Error, Created: in.CreatedAt})
		}
		for _, h := range raftfsm.SortedKeys(st.Cloud.DNS) {
			d := st.Cloud.DNS[h]
			v.DNS = append(v.DNS, dnsRow{Host: d.Host, IPs: slices.Clone(d.IPs), Proxied: d.Proxied})
		}
	})
	s.fillStats(ctx, v.Nodes, &v.StatsNote)
	p.Data = v
	return nil
}

// fillStats gets CPU and memory figures: this node's own, and the others'
// when the Node can fetch them, all at once and bounded by ctx.
func (s *server) fillStats(ctx context.Context, rows []nodeRow, note *string) {
	peers, canPeers := s.node.(PeerStatser)
	if !canPeers {
		*note = "CPU and memory are shown for " + s.node.NodeID() + ", the node serving this page; this agent cannot fetch other nodes' figures."
	}
	var wg sync.WaitGroup
	for i := range rows {
		r := &rows[i]
		if r.Status == string(raftfsm.NodeDead) && !r.Self {
			continue
		}
		var get func() (control.NodeStats, error)
		switch {
		case r.Self:
			get = func() (control.NodeStats, error) { return s.node.Stats(ctx) }
		case canPeers:
			get = func() (control.NodeStats, error) { return peers.PeerStats(ctx, r.ID) }
		default:
			continue
		}
		wg.Go(func() {
			defer func() {
				// A panic here would not reach the handler's recovery: it
				// would end the whole agent. Log it and show no figures.
				if rec := recover(); rec != nil {
					s.logger.Error("ui node figures panicked", "node", r.ID, "panic", rec)
					r.StatsNote = "figures unavailable"
				}
			}()
			if st, err := get(); err == nil {
				r.Stats = &st
			} else {
				r.StatsNote = "figures unavailable"
			}
		})
	}
	wg.Wait()
}

// snapshotRow is a snapshot on the snapshots page.
type snapshotRow struct {
	Name     string
	ID       int
	Kind     string
	Status   string
	Phase    string
	Progress int
	Regions  []regionState
	Error    string
	Created  time.Time
	Updated  time.Time
}

// regionState is a region a snapshot should be in, and whether it is.
type regionState struct {
	Name string
	Done bool
}

// snapshotsView is the snapshots page.
type snapshotsView struct {
	Base    []snapshotRow
	Custom  []snapshotRow
	Regions []string
	Form    snapshotForm
}

// snapshotForm is the custom snapshot form.
type snapshotForm struct {
	Name    string
	Regions []string
}

func snapshotRowOf(sn *raftfsm.Snapshot) snapshotRow {
	r := snapshotRow{Name: sn.Name, ID: sn.ID, Kind: sn.Kind, Status: sn.Status, Phase: sn.Phase, Progress: sn.Progress,
		Error: sn.Error, Created: sn.CreatedAt, Updated: sn.UpdatedAt}
	if r.Status == raftfsm.SnapshotReady {
		r.Progress = 100
	}
	want := slices.Clone(sn.WantRegions)
	for _, reg := range sn.Regions {
		if !slices.Contains(want, reg) {
			want = append(want, reg)
		}
	}
	slices.Sort(want)
	for _, reg := range want {
		r.Regions = append(r.Regions, regionState{Name: reg, Done: slices.Contains(sn.Regions, reg)})
	}
	return r
}

func (s *server) buildSnapshots(c *gin.Context, p *pageData) error {
	p.Title = "Snapshots"
	v, _ := p.Data.(snapshotsView)
	s.node.View(func(st *raftfsm.State) {
		v.Regions = slices.Clone(st.Settings.Regions)
		for _, name := range raftfsm.SortedKeys(st.Cloud.Snapshots) {
			sn := st.Cloud.Snapshots[name]
			if sn.Kind == raftfsm.SnapshotBase {
				v.Base = append(v.Base, snapshotRowOf(sn))
			} else {
				v.Custom = append(v.Custom, snapshotRowOf(sn))
			}
		}
	})
	p.Data = v
	return nil
}

// userRow is a user on the admin page.
type userRow struct {
	Name    string
	Role    string
	Created time.Time
	Self    bool
}

// settingsView is the settings form: tokens only as set or unset.
type settingsView struct {
	ClusterName    string
	ClusterID      string
	Local          bool
	Domain         string
	UIHost         string
	Regions        string
	DropletSize    string
	DesiredNodes   int
	HealthInterval string
	DOTokenSet     bool
	CFTokenSet     bool
	BaseSnapshot   string
}

// adminView is the admin page.
type adminView struct {
	Cluster    control.ClusterInfo
	ClusterErr string
	Users      []userRow
	Settings   settingsView
	UserForm   userForm
	Log        agentLogView
}

// agentLogView is one agent's own log on the admin page, with the node
// picker.
type agentLogView struct {
	// Node is the agent whose log is shown; Nodes are the picker's choices.
	Node  string
	Nodes []string
	// Lines are the newest first.
	Lines []control.LogEntry
	// Err says why there are no lines (an unknown node, a peer that did not answer).
	Err string
}

// userForm is the add-user form.
type userForm struct {
	Name string
	Role string
}

func (s *server) buildAdmin(c *gin.Context, p *pageData) error {
	p.Title = "Admin"
	p.Poll = int(s.cfg.PollInterval / time.Millisecond)
	v, _ := p.Data.(adminView)
	if v.UserForm.Role == "" {
		v.UserForm.Role = string(raftfsm.RoleDeployer)
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.ReadTimeout)
	defer cancel()
	info, err := s.node.Cluster(ctx)
	if err != nil {
		v.ClusterErr = userMessage(err)
	}
	v.Cluster = info
	s.node.View(func(st *raftfsm.State) {
		for _, name := range raftfsm.SortedKeys(st.Users) {
			u := st.Users[name]
			v.Users = append(v.Users, userRow{Name: u.Name, Role: string(u.Role), Created: u.CreatedAt, Self: p.User != nil && p.User.User == u.Name})
		}
		set := st.Settings
		v.Settings = settingsView{ClusterName: set.ClusterName, ClusterID: set.ClusterID, Local: set.LocalMode, Domain: set.Domain,
			UIHost: set.UIHost, Regions: strings.Join(set.Regions, ", "), DropletSize: set.DropletSize, DesiredNodes: set.DesiredNodes,
			DOTokenSet: set.DOToken != "", CFTokenSet: set.CFToken != "", BaseSnapshot: set.BaseSnapshot}
		if set.HealthInterval != 0 {
			v.Settings.HealthInterval = set.HealthInterval.String()
		}
	})
	v.Log = s.agentLog(c.Request.Context(), c.Query("node"))
	p.Data = v
	return nil
}

// agentLog gets the own log of the node the picker chose ("" = the node
// serving the page), newest first.
func (s *server) agentLog(ctx context.Context, want string) agentLogView {
	self := s.node.NodeID()
	v := agentLogView{Node: self, Nodes: []string{self}}
	s.node.View(func(st *raftfsm.State) {
		for _, id := range raftfsm.SortedKeys(st.Nodes) {
			if id != self {
				v.Nodes = append(v.Nodes, id)
			}
		}
	})
	slices.Sort(v.Nodes)
	if want != "" {
		v.Node = want
	}
	var lines []control.LogEntry
	peers, canPeers := s.node.(PeerAgentLogser)
	switch {
	case v.Node == self:
		lines = s.node.AgentLogs(time.Time{}, s.cfg.AgentLogLines)
	case raftfsm.ValidateNodeID(v.Node) != nil || !slices.Contains(v.Nodes, v.Node):
		v.Err = fmt.Sprintf("There is no node %q in the cluster: pick one from the list.", v.Node)
	case !canPeers:
		v.Err = "This agent cannot fetch other nodes' logs, only " + self + "'s own."
	default:
		ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadTimeout)
		defer cancel()
		var err error
		if lines, err = peers.PeerAgentLogs(ctx, v.Node, time.Time{}, s.cfg.AgentLogLines); err != nil {
			s.logger.Debug("ui agent log of a peer failed", "peer", v.Node, "err", err)
			v.Err = fmt.Sprintf("%s did not send its log: %s", v.Node, userMessage(err))
		}
	}
	slices.Reverse(lines)
	v.Lines = lines
	return v
}
