package node

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// BaseImage is the image custom snapshots carry; user Dockerfiles start
// FROM it.
const BaseImage = "local/base:latest"

// Phases of a custom snapshot build.
const (
	snapPhaseBuild     = "building image"
	snapPhaseBuilt     = "image built"
	snapPhaseSnapshot  = "snapshotting droplet"
	snapPhaseReplicate = "replicating"
)

// CreateSnapshot starts a custom snapshot: a node builds the uploaded
// context as local/base:latest, then the leader snapshots that node's
// droplet under the given name and replicates it to every region, in the
// background (the snapshot's phase and progress show in the state).
func (a *Agent) CreateSnapshot(ctx context.Context, req control.SnapshotRequest) error {
	if err := raftfsm.ValidateSnapshotName(req.Name); err != nil {
		return err
	}
	if err := raftfsm.ValidateContextDigest(req.Context); err != nil {
		return err
	}
	for _, r := range req.Regions {
		if err := raftfsm.ValidateRegion(r); err != nil {
			return err
		}
	}
	var (
		source  string
		regions []string
		err     error
	)
	a.fsm.View(func(s *raftfsm.State) {
		if _, ok := s.Contexts[req.Context]; !ok {
			err = fmt.Errorf("%w: build context %s was not uploaded", raftfsm.ErrInvalid, req.Context)
			return
		}
		if sn, ok := s.Cloud.Snapshots[req.Name]; ok && sn.Status != raftfsm.SnapshotFailed {
			err = fmt.Errorf("%w: snapshot %s exists (%s)", raftfsm.ErrConflict, req.Name, sn.Status)
			return
		}
		regions = slices.Clone(req.Regions)
		if len(regions) == 0 {
			regions = slices.Clone(s.Settings.Regions)
		}
		best := -1
		for _, id := range raftfsm.SortedKeys(s.Nodes) {
			n := s.Nodes[id]
			if n.Status != raftfsm.NodeActive || n.DropletID == 0 {
				continue
			}
			if load := len(s.InstancesOn(id)); best < 0 || load < best {
				source, best = id, load
			}
		}
	})
	if err != nil {
		return err
	}
	if source == "" {
		return fmt.Errorf("%w: no active node with a droplet to build the snapshot on", raftfsm.ErrConflict)
	}
	if !a.cloudReady() {
		return fmt.Errorf("%w: no DigitalOcean token", raftfsm.ErrConflict)
	}
	_, err = a.apply(ctx, &raftfsm.PutSnapshot{At: a.now(), Snapshot: raftfsm.Snapshot{Name: req.Name, Kind: raftfsm.SnapshotCustom,
		Status: raftfsm.SnapshotBuilding, Phase: snapPhaseBuild + " " + req.Context, Progress: 5, SourceNode: source, WantRegions: regions}})
	a.kickLeader()
	return err
}

// buildSnapshotImages is the source node's part: build the context of a
// custom snapshot as local/base:latest and report it built (or failed).
func (a *Agent) buildSnapshotImages(ctx context.Context) {
	var todo []raftfsm.Snapshot
	a.fsm.View(func(s *raftfsm.State) {
		for _, sn := range s.Cloud.Snapshots {
			if sn.Status == raftfsm.SnapshotBuilding && sn.SourceNode == a.cfg.NodeID && strings.HasPrefix(sn.Phase, snapPhaseBuild+" ") {
				todo = append(todo, *sn)
			}
		}
	})
	for _, sn := range todo {
		digest := strings.TrimPrefix(sn.Phase, snapPhaseBuild+" ")
		err := a.buildBase(ctx, digest)
		next := sn
		next.Phase, next.Progress = snapPhaseBuilt, 30
		if err != nil {
			next.Status, next.Error, next.Phase = raftfsm.SnapshotFailed, err.Error(), "build failed"
		}
		if rerr := a.report(ctx, &raftfsm.PutSnapshot{At: a.now(), Snapshot: next}); rerr != nil {
			a.logger.Warn("report snapshot build", "snapshot", sn.Name, "err", rerr)
		}
	}
}

// buildBase builds a stored context as local/base:latest.
func (a *Agent) buildBase(ctx context.Context, digest string) error {
	if a.rt == nil {
		return fmt.Errorf("no Docker on %s", a.cfg.NodeID)
	}
	rc, err := a.openOrFetchContext(ctx, digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := a.rt.BuildImage(ctx, rc, []string{BaseImage}, "", nil, func(string) {}); err != nil {
		return fmt.Errorf("build %s: %w", BaseImage, err)
	}
	return nil
}

// snapshotDuty is the leader's part: snapshot the source droplet once its
// image is built, then replicate the snapshot to every wanted region.
func (cd *cloudDuty) snapshots(ctx context.Context, c cloud) error {
	a := cd.a
	var work []raftfsm.Snapshot
	dropletOf := map[string]int{}
	a.fsm.View(func(s *raftfsm.State) {
		for _, name := range raftfsm.SortedKeys(s.Cloud.Snapshots) {
			sn := s.Cloud.Snapshots[name]
			if sn.Kind == raftfsm.SnapshotCustom && sn.Status == raftfsm.SnapshotBuilding && (sn.Phase == snapPhaseBuilt || sn.Phase == snapPhaseReplicate) {
				work = append(work, *sn)
				if n, ok := s.Nodes[sn.SourceNode]; ok {
					dropletOf[sn.Name] = n.DropletID
				}
			}
		}
	})
	for _, sn := range work {
		if err := cd.advanceSnapshot(ctx, c, sn, dropletOf[sn.Name]); err != nil {
			sn.Status, sn.Error = raftfsm.SnapshotFailed, err.Error()
			_, _ = a.apply(ctx, &raftfsm.PutSnapshot{At: a.now(), Snapshot: sn})
			return err
		}
	}
	return nil
}

func (cd *cloudDuty) advanceSnapshot(ctx context.Context, c cloud, sn raftfsm.Snapshot, dropletID int) error {
	a := cd.a
	put := func() error {
		_, err := a.apply(ctx, &raftfsm.PutSnapshot{At: a.now(), Snapshot: sn})
		return err
	}
	if sn.Phase == snapPhaseBuilt {
		if dropletID == 0 {
			return fmt.Errorf("source node %s has no droplet", sn.SourceNode)
		}
		sn.Phase, sn.Progress = snapPhaseSnapshot, 40
		if err := put(); err != nil {
			return err
		}
		act, err := c.do.SnapshotDroplet(ctx, dropletID, sn.Name)
		if err != nil {
			return err
		}
		if _, err := c.do.WaitForAction(ctx, act.ID); err != nil {
			return err
		}
		found, err := c.do.FindSnapshot(ctx, sn.Name)
		if err != nil {
			return err
		}
		sn.ID, sn.Regions, sn.Phase, sn.Progress = found.ID, found.Regions, snapPhaseReplicate, 60
		if err := put(); err != nil {
			return err
		}
	}
	for _, r := range sn.WantRegions {
		if slices.Contains(sn.Regions, r) {
			continue
		}
		act, err := c.do.TransferSnapshot(ctx, sn.ID, r)
		if err != nil {
			return err
		}
		if _, err := c.do.WaitForAction(ctx, act.ID); err != nil {
			return err
		}
		sn.Regions = append(sn.Regions, r)
		sn.Progress = 60 + 40*len(sn.Regions)/max(len(sn.WantRegions), 1)
		if err := put(); err != nil {
			return err
		}
	}
	sn.Status, sn.Phase, sn.Progress = raftfsm.SnapshotReady, "", 100
	return put()
}
