package raftfsm

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// DeployResult is what a DeployService command returns to the caller.
type DeployResult struct {
	Service     string `json:"service"`
	WorkspaceID string `json:"workspace_id"`
	Generation  int64  `json:"generation"`
	DeployID    string `json:"deploy_id"`
	// Unchanged says the spec was already deployed as given: nothing was
	// committed, Generation and DeployID are the current ones.
	Unchanged bool `json:"unchanged,omitempty"`
}

func validateID(field, id string) error {
	if id == "" || len(id) > 64 || strings.ContainsAny(id, " /\n\t") {
		return invalidf("%s %q: want 1-64 characters without spaces or '/'", field, id)
	}
	return nil
}

func applyDeployService(s *State, c *DeployService) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if err := validateID("deploy id", c.DeployID); err != nil {
		return nil, err
	}
	if _, ok := s.Deploys[c.DeployID]; ok {
		return nil, fmt.Errorf("%w: deploy %s exists", ErrConflict, c.DeployID)
	}
	if err := ValidateWorkspaceID(c.WorkspaceID); err != nil {
		return nil, err
	}
	spec := c.Spec.Clone()
	spec.Workspace = c.WorkspaceID
	spec.Normalize()
	if err := spec.validateShape(); err != nil { // the controller ran Validate before it committed
		return nil, err
	}
	if len(spec.Secrets) > 0 {
		return nil, invalidf("secrets must be sealed before they enter the log")
	}
	ws, wsExists := s.Workspaces[c.WorkspaceID]
	switch {
	case !wsExists && c.WorkspaceName == "":
		return nil, fmt.Errorf("workspace %s: %w", c.WorkspaceID, ErrNotFound)
	case !wsExists:
		if err := ValidateSlug("workspace", c.WorkspaceName); err != nil {
			return nil, err
		}
		if w := s.WorkspaceByName(c.WorkspaceName); w != nil {
			return nil, fmt.Errorf("%w: workspace %s exists (id %s)", ErrConflict, c.WorkspaceName, w.ID)
		}
	case c.WorkspaceName != "" && ws.Name != c.WorkspaceName:
		return nil, fmt.Errorf("%w: workspace %s is named %s, not %s", ErrConflict, c.WorkspaceID, ws.Name, c.WorkspaceName)
	}
	key := ServiceKey(c.WorkspaceID, spec.Project, spec.Env, spec.Service)
	svc, exists := s.Services[key]
	if c.ExpectGeneration != 0 && (!exists || svc.Generation != c.ExpectGeneration) {
		have := int64(0)
		if exists {
			have = svc.Generation
		}
		return nil, fmt.Errorf("%w: %s is at generation %d, not %d", ErrConflict, key, have, c.ExpectGeneration)
	}
	if err := s.checkPlacement(key, spec, c.Placement); err != nil {
		return nil, err
	}
	for _, u := range spec.Uses {
		dep, ok := s.Services[ServiceKey(c.WorkspaceID, spec.Project, spec.Env, u)]
		if !ok || dep.Spec.Kind != KindStateful {
			return nil, invalidf("uses: %s is not a stateful service of %s/%s", u, spec.Project, spec.Env)
		}
	}

	// Everything is checked: change the state.
	if !wsExists {
		ws = &Workspace{ID: c.WorkspaceID, Name: c.WorkspaceName, CreatedAt: c.At, Projects: map[string]*Project{}}
		s.Workspaces[c.WorkspaceID] = ws
	}
	ws.ensureScope(spec.Project, spec.Env, c.At)
	if !exists {
		svc = &Service{Key: key, WorkspaceID: c.WorkspaceID, Project: spec.Project, Env: spec.Env, Name: spec.Service, CreatedAt: c.At}
		s.Services[key] = svc
	}
	for _, d := range s.Deploys {
		if d.Service == key && d.Status == DeployRolling {
			d.Status, d.Reason, d.FinishedAt = DeployFailed, "superseded by "+c.DeployID, c.At
		}
	}
	svc.Generation++
	svc.Spec = spec
	svc.UpdatedAt = c.At
	svc.LastDeploy = c.DeployID
	svc.Revisions = append(svc.Revisions, Revision{Generation: svc.Generation, Spec: spec, DeployID: c.DeployID, At: c.At})
	svc.trimRevisions()
	s.placeInstances(svc, c.Placement, c.At)
	maxParallel := spec.MaxParallel
	if maxParallel == 0 {
		maxParallel = 1
	}
	s.Deploys[c.DeployID] = &Deploy{ID: c.DeployID, Service: key, Generation: svc.Generation, PrevGeneration: svc.LiveGeneration,
		MaxParallel: maxParallel, Status: DeployRolling, Actor: c.Actor, StartedAt: c.At}
	s.trimDeploys()
	s.event(c.At, EventDeployStarted, SeverityInfo, fmt.Sprintf("deploying %s generation %d (%s)", key, svc.Generation, imageOf(spec)),
		func(e *Event) { e.Service, e.Deploy = key, c.DeployID })
	return DeployResult{Service: key, WorkspaceID: c.WorkspaceID, Generation: svc.Generation, DeployID: c.DeployID}, nil
}

func imageOf(spec ServiceSpec) string {
	if spec.Image != "" {
		return spec.Image
	}
	return "build " + spec.Build[:min(len(spec.Build), 19)]
}

// checkPlacement verifies that a placement covers slots 0..replicas-1 once
// each, on known nodes that accept work.
func (s *State) checkPlacement(key string, spec ServiceSpec, placement []Assignment) error {
	if len(placement) != spec.Replicas {
		return invalidf("placement of %s: %d assignments for %d replicas", key, len(placement), spec.Replicas)
	}
	seen := make(map[int]bool, len(placement))
	for _, a := range placement {
		if a.Slot < 0 || a.Slot >= spec.Replicas || seen[a.Slot] {
			return invalidf("placement of %s: slot %d repeated or out of range", key, a.Slot)
		}
		seen[a.Slot] = true
		n, ok := s.Nodes[a.Node]
		if !ok {
			return invalidf("placement of %s: node %q is not in the cluster", key, a.Node)
		}
		if n.Status != NodeActive {
			return invalidf("placement of %s: node %s is %s", key, a.Node, n.Status)
		}
	}
	return nil
}

// placeInstances makes the instances of svc match a checked placement. New
// and moved instances run the live generation until the roll-out reaches them.
func (s *State) placeInstances(svc *Service, placement []Assignment, at time.Time) {
	for _, a := range placement {
		id := InstanceID(svc.Key, a.Slot)
		in, ok := s.Instances[id]
		if !ok {
			s.Instances[id] = &Instance{ID: id, Service: svc.Key, Slot: a.Slot, Node: a.Node, DesiredGeneration: svc.LiveGeneration, CreatedAt: at}
			continue
		}
		if in.Node != a.Node {
			in.moveTo(a.Node, svc.LiveGeneration)
		}
	}
	// Slots are numbered 0..replicas-1, so the surplus ones follow on.
	for slot := len(placement); ; slot++ {
		id := InstanceID(svc.Key, slot)
		if _, ok := s.Instances[id]; !ok {
			break
		}
		delete(s.Instances, id)
	}
}

// moveTo places the instance on another node and forgets what the old node observed.
func (in *Instance) moveTo(node string, gen int64) {
	*in = Instance{ID: in.ID, Service: in.Service, Slot: in.Slot, Node: node, DesiredGeneration: gen, CreatedAt: in.CreatedAt,
		Restarts: in.Restarts, History: in.History}
}

// trimRevisions keeps the newest MaxRevisions specs, and always the live one.
func (svc *Service) trimRevisions() {
	if len(svc.Revisions) <= MaxRevisions {
		return
	}
	live := slices.IndexFunc(svc.Revisions, func(r Revision) bool { return r.Generation == svc.LiveGeneration })
	keep := slices.Clone(svc.Revisions[len(svc.Revisions)-MaxRevisions:])
	if live >= 0 && live < len(svc.Revisions)-MaxRevisions {
		keep[0] = svc.Revisions[live]
	}
	svc.Revisions = keep
}

// trimDeploys drops the oldest finished deploys once there are more than
// MaxDeploys, down to nine tenths of it so the sort is not paid on every deploy.
func (s *State) trimDeploys() {
	if len(s.Deploys) <= MaxDeploys {
		return
	}
	over := len(s.Deploys) - MaxDeploys*9/10
	var finished []*Deploy
	for _, d := range s.Deploys {
		if d.Status != DeployRolling {
			finished = append(finished, d)
		}
	}
	slices.SortFunc(finished, func(a, b *Deploy) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for _, d := range finished[:min(over, len(finished))] {
		delete(s.Deploys, d.ID)
	}
}

func applyUndeployService(s *State, c *UndeployService) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	svc, ok := s.Services[c.Service]
	if !ok {
		return nil, fmt.Errorf("service %s: %w", c.Service, ErrNotFound)
	}
	for _, u := range s.Services {
		if u.Project == svc.Project && u.Env == svc.Env && u.WorkspaceID == svc.WorkspaceID && slices.Contains(u.Spec.Uses, svc.Name) {
			return nil, fmt.Errorf("%w: %s uses %s; undeploy it or remove it from uses first", ErrConflict, u.Key, svc.Key)
		}
	}
	for id, in := range s.Instances {
		if in.Service == c.Service {
			delete(s.Instances, id)
		}
	}
	for _, d := range s.Deploys {
		if d.Service == c.Service && d.Status == DeployRolling {
			d.Status, d.Reason, d.FinishedAt = DeployFailed, "service undeployed", c.At
		}
	}
	delete(s.Services, c.Service)
	s.event(c.At, EventUndeploy, SeverityInfo, "undeployed "+c.Service, func(e *Event) { e.Service, e.Deploy = c.Service, c.DeployID })
	return nil, nil
}

func applyAdvanceRollout(s *State, c *AdvanceRollout) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	svc, ok := s.Services[c.Service]
	if !ok {
		return nil, fmt.Errorf("service %s: %w", c.Service, ErrNotFound)
	}
	if c.Generation < 0 || c.Generation > svc.Generation {
		return nil, invalidf("generation %d of %s: newest is %d", c.Generation, c.Service, svc.Generation)
	}
	if _, kept := svc.Revision(c.Generation); c.Generation != 0 && !kept {
		return nil, fmt.Errorf("%w: %s no longer keeps generation %d", ErrConflict, c.Service, c.Generation)
	}
	if c.DeployID != "" {
		d, ok := s.Deploys[c.DeployID]
		if !ok || d.Service != c.Service {
			return nil, fmt.Errorf("deploy %s of %s: %w", c.DeployID, c.Service, ErrNotFound)
		}
		if d.Status != DeployRolling && c.Generation == d.Generation {
			return nil, fmt.Errorf("%w: deploy %s is %s", ErrConflict, c.DeployID, d.Status)
		}
	}
	for _, id := range c.Instances {
		in, ok := s.Instances[id]
		if !ok || in.Service != c.Service {
			return nil, fmt.Errorf("instance %s of %s: %w", id, c.Service, ErrNotFound)
		}
	}
	for _, id := range c.Instances {
		s.Instances[id].DesiredGeneration = c.Generation
	}
	return nil, nil
}

func applyReportInstances(s *State, c *ReportInstances) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	n, ok := s.Nodes[c.Node]
	if !ok {
		return nil, fmt.Errorf("node %s: %w", c.Node, ErrNotFound)
	}
	for _, r := range c.Reports {
		if len(r.Error) > 4000 || len(r.Phase) > 64 || len(r.State) > 32 || len(r.Container) > 255 || len(r.ImageDigest) > 200 {
			return nil, invalidf("report for %s: field too long", r.Instance)
		}
		if err := validateHostPort("address", r.Address); err != nil {
			return nil, err
		}
	}
	applied := 0
	for _, r := range c.Reports {
		in, ok := s.Instances[r.Instance]
		if !ok || in.Node != c.Node {
			continue // stale: the instance moved or went away
		}
		in.Generation, in.ContainerID, in.Container = r.Generation, r.ContainerID, r.Container
		in.ImageDigest, in.Address, in.State, in.Phase, in.Error = r.ImageDigest, r.Address, r.State, r.Phase, r.Error
		in.ObservedAt = c.At
		if r.FailedGeneration > in.FailedGeneration {
			in.FailedGeneration = r.FailedGeneration
		}
		if r.RestartNonceSeen > in.RestartNonceSeen {
			in.RestartNonceSeen = r.RestartNonceSeen
		}
		applied++
	}
	n.LastSeen = c.At
	return applied, nil
}

func applyFinishDeploy(s *State, c *FinishDeploy) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	d, ok := s.Deploys[c.DeployID]
	if !ok {
		return nil, fmt.Errorf("deploy %s: %w", c.DeployID, ErrNotFound)
	}
	if c.Status != DeploySucceeded && c.Status != DeployFailed {
		return nil, invalidf("deploy status %q: want succeeded or failed", c.Status)
	}
	if d.Status != DeployRolling {
		return nil, fmt.Errorf("%w: deploy %s is already %s", ErrConflict, c.DeployID, d.Status)
	}
	d.Status, d.Reason, d.FinishedAt = c.Status, c.Reason, c.At
	svc := s.Services[d.Service]
	if c.Status == DeploySucceeded {
		if svc != nil && d.Generation > svc.LiveGeneration {
			svc.LiveGeneration = d.Generation
			svc.trimRevisions()
		}
		s.event(c.At, EventDeploySucceeded, SeverityInfo, fmt.Sprintf("%s generation %d is live", d.Service, d.Generation),
			func(e *Event) { e.Service, e.Deploy = d.Service, d.ID })
		return nil, nil
	}
	// A failed roll-out goes back to the live generation in the same step,
	// so a leader that takes over never finds it half reverted.
	reverted := 0
	if svc != nil {
		for _, in := range s.ServiceInstances(d.Service) {
			if in.DesiredGeneration == d.Generation && svc.LiveGeneration != d.Generation {
				in.DesiredGeneration = svc.LiveGeneration
				reverted++
			}
		}
	}
	s.event(c.At, EventDeployFailed, SeverityError, fmt.Sprintf("deploy of %s generation %d failed: %s", d.Service, d.Generation, c.Reason),
		func(e *Event) { e.Service, e.Deploy = d.Service, d.ID })
	if reverted > 0 && svc.LiveGeneration > 0 {
		s.event(c.At, EventRollback, SeverityWarn, fmt.Sprintf("%s rolled %d instances back to generation %d", d.Service, reverted, svc.LiveGeneration),
			func(e *Event) { e.Service, e.Deploy = d.Service, d.ID })
	}
	return reverted, nil
}

// Restart back-off: the first restart is immediate, then each further
// restart waits twice as long as the one before, up to the cap. A service
// healthy for restartStreakReset after its last restart starts over.
const (
	restartBackoffBase  = time.Minute
	restartBackoffCap   = 30 * time.Minute
	restartStreakReset  = 10 * time.Minute
	crashLoopingStreak  = 3
	healthReasonMaxSize = 500
)

// RestartBackoff is how long after a restart, the streak-th in a row, the
// next one may happen.
func RestartBackoff(streak int) time.Duration {
	if streak < 1 {
		return 0
	}
	d := restartBackoffBase
	for i := 1; i < streak && d < restartBackoffCap; i++ {
		d *= 2
	}
	return min(d, restartBackoffCap)
}

func applyRestartInstance(s *State, c *RestartInstance) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	in, ok := s.Instances[c.Instance]
	if !ok {
		return nil, fmt.Errorf("instance %s: %w", c.Instance, ErrNotFound)
	}
	if len(c.Reason) > 1000 {
		return nil, invalidf("restart reason: longer than 1000 characters")
	}
	in.RestartNonce++
	in.Restarts++
	in.RestartStreak++
	in.LastRestartAt = c.At
	in.NextRestartAt = c.At.Add(RestartBackoff(in.RestartStreak))
	in.ConsecutiveUnhealthy = 0
	in.CrashLooping = in.RestartStreak >= crashLoopingStreak
	sev := SeverityWarn
	msg := fmt.Sprintf("restarting %s on %s: %s", in.ID, in.Node, c.Reason)
	if in.CrashLooping {
		sev = SeverityError
		msg += fmt.Sprintf(" (crash-looping: restart %d in a row, next not before %s)", in.RestartStreak, in.NextRestartAt.Format(time.RFC3339))
	}
	s.event(c.At, EventHealRestart, sev, msg, func(e *Event) { e.Service, e.Instance, e.Node = in.Service, in.ID, in.Node })
	return in.RestartNonce, nil
}

func applyRecordCronRun(s *State, c *RecordCronRun) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	in, ok := s.Instances[c.Instance]
	if !ok {
		return nil, fmt.Errorf("instance %s: %w", c.Instance, ErrNotFound)
	}
	if in.Node != c.Node {
		return nil, nil // stale: moved elsewhere
	}
	if c.StartedAt.IsZero() || c.FinishedAt.Before(c.StartedAt) {
		return nil, invalidf("cron run of %s: finished before it started", c.Instance)
	}
	if c.StartedAt.Before(in.LastRunAt) {
		return nil, nil // an older run reported late
	}
	in.LastRunAt, in.LastRunExit = c.StartedAt, c.ExitCode
	in.LastRunDuration = Duration(c.FinishedAt.Sub(c.StartedAt))
	in.Runs++
	return nil, nil
}

func applyMoveInstance(s *State, c *MoveInstance) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	in, ok := s.Instances[c.Instance]
	if !ok {
		return nil, fmt.Errorf("instance %s: %w", c.Instance, ErrNotFound)
	}
	n, ok := s.Nodes[c.Node]
	if !ok {
		return nil, fmt.Errorf("node %s: %w", c.Node, ErrNotFound)
	}
	if n.Status != NodeActive {
		return nil, fmt.Errorf("%w: node %s is %s", ErrConflict, c.Node, n.Status)
	}
	svc := s.Services[in.Service]
	if svc.Spec.Kind == KindStateful {
		return nil, fmt.Errorf("%w: %s is stateful; its volume cannot follow it to %s", ErrConflict, in.Service, c.Node)
	}
	if in.Node == c.Node {
		return nil, nil
	}
	from := in.Node
	in.moveTo(c.Node, svc.LiveGeneration)
	s.event(c.At, EventHealReschedule, SeverityWarn, fmt.Sprintf("moved %s from %s to %s: %s", in.ID, from, c.Node, c.Reason),
		func(e *Event) { e.Service, e.Instance, e.Node = in.Service, in.ID, from })
	return nil, nil
}

func applySetStranded(s *State, c *SetStranded) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	svc, ok := s.Services[c.Service]
	if !ok {
		return nil, fmt.Errorf("service %s: %w", c.Service, ErrNotFound)
	}
	if svc.Stranded == c.Reason {
		return nil, nil
	}
	svc.Stranded = c.Reason
	if c.Reason != "" {
		s.event(c.At, EventHealReschedule, SeverityError, svc.Key+" is stranded: "+c.Reason, func(e *Event) { e.Service = svc.Key })
	}
	return nil, nil
}

// ServiceInstances returns the instances of a service, sorted by slot.
func (s *State) ServiceInstances(key string) []*Instance {
	var out []*Instance
	for _, in := range s.Instances {
		if in.Service == key {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b *Instance) int { return a.Slot - b.Slot })
	return out
}

// SortedKeys returns the keys of a map in order, for deterministic iteration.
func SortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
