package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/node/controller"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// BaseImage is the image custom snapshots carry; user Dockerfiles start
// FROM it.
const BaseImage = "local/base:latest"

// Phases of a custom snapshot build.
const (
	snapPhaseBuild     = controller.SnapshotPhaseBuild
	snapPhaseBuilt     = "image built"
	snapPhaseSnapshot  = "snapshotting droplet"
	snapPhaseReplicate = "replicating"
)

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
			continue
		}
		a.awaitPhaseChange(ctx, sn.Name, sn.Phase)
	}
}

// awaitPhaseChange waits (up to ten seconds) until this node's replica
// shows snapshot name out of phase: the report was committed on the leader,
// and until it is applied here the build would look undone, be done again
// and its second report would set back the phase the leader moved on to.
func (a *Agent) awaitPhaseChange(ctx context.Context, name, phase string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		changed := a.fsm.Changed()
		still := false
		a.fsm.View(func(s *raftfsm.State) {
			sn, ok := s.Cloud.Snapshots[name]
			still = ok && sn.Phase == phase
		})
		if !still {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
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

// snapshots is the leader's part: it advances every custom snapshot whose
// image is built by one step a round, so that no round waits for
// DigitalOcean (a snapshot takes minutes, a transfer up to hours):
//
//	image built          -> snapshotting droplet
//	snapshotting droplet  a create_snapshot intent is recorded, then the
//	                      snapshot action started and checked on each
//	                      round; once it completed, the image found by name
//	                      is recorded with the intent: -> replicating
//	replicating           a transfer_snapshot intent per missing region,
//	                      all started at once and checked on each round;
//	                      each region is recorded with its intent; when the
//	                      image is in every wanted region: ready
//
// A new leader resumes any phase from the state. Before asking DigitalOcean
// for anything it looks: an image of the snapshot's name, a snapshot action
// in progress on the source droplet, the regions the image is already in.
// So a snapshot is taken once; a transfer in progress when the leader died
// may be asked for a second time, which copies nothing twice (an image has
// each region once).
func (cd *cloudDuty) snapshots(ctx context.Context, c cloud) error {
	a := cd.a
	var (
		work      []raftfsm.Snapshot
		dropletOf = map[string]int{}
		orphans   []raftfsm.Intent
	)
	a.fsm.View(func(s *raftfsm.State) {
		for _, name := range raftfsm.SortedKeys(s.Cloud.Snapshots) {
			sn := s.Cloud.Snapshots[name]
			if sn.Kind != raftfsm.SnapshotCustom || sn.Status != raftfsm.SnapshotBuilding {
				continue
			}
			work = append(work, *sn)
			n, ok := s.Nodes[sn.SourceNode]
			if ok {
				dropletOf[sn.Name] = n.DropletID
			}
			if (!ok || n.Status == raftfsm.NodeDead) && strings.HasPrefix(sn.Phase, snapPhaseBuild+" ") {
				dropletOf[sn.Name] = -1 // its builder is gone
			}
		}
		for _, in := range s.Cloud.PendingIntents() {
			want := snapPhaseReplicate
			switch in.Kind {
			case raftfsm.IntentCreateSnapshot:
				want = snapPhaseSnapshot
			case raftfsm.IntentTransferSnapshot:
			default:
				continue
			}
			if sn, ok := s.Cloud.Snapshots[in.Target]; !ok || sn.Status != raftfsm.SnapshotBuilding || sn.Phase != want {
				orphans = append(orphans, *in)
			}
		}
	})
	var errs []error
	for _, in := range orphans {
		// The snapshot moved on without this step (another transfer found the
		// image in this region too), failed or was removed.
		var sn raftfsm.Snapshot
		a.fsm.View(func(s *raftfsm.State) {
			if cur, ok := s.Cloud.Snapshots[in.Target]; ok {
				sn = *cur
			}
		})
		if sn.Status == raftfsm.SnapshotReady {
			errs = append(errs, cd.doneIntent(ctx, in, raftfsm.CloudChanges{}))
			continue
		}
		errs = append(errs, cd.failIntent(ctx, in, fmt.Errorf("snapshot %q is %s: this step is abandoned", in.Target, orDefault(sn.Status, "gone")),
			raftfsm.CloudChanges{}))
	}
	for _, sn := range work {
		errs = append(errs, cd.snapshotStep(ctx, c, sn, dropletOf[sn.Name]))
	}
	return errors.Join(errs...)
}

// snapshotStep advances one custom snapshot.
func (cd *cloudDuty) snapshotStep(ctx context.Context, c cloud, sn raftfsm.Snapshot, dropletID int) error {
	a := cd.a
	switch {
	case strings.HasPrefix(sn.Phase, snapPhaseBuild+" ") && dropletID < 0:
		return cd.failSnapshot(ctx, sn, fmt.Errorf("snapshot %q: node %s died while building %s", sn.Name, sn.SourceNode, BaseImage))
	case sn.Phase == snapPhaseBuilt:
		if dropletID <= 0 {
			return cd.failSnapshot(ctx, sn, fmt.Errorf("snapshot %q: source node %s has no droplet", sn.Name, sn.SourceNode))
		}
		sn.Phase, sn.Progress = snapPhaseSnapshot, 40
		if _, err := a.apply(ctx, &raftfsm.PutSnapshot{At: a.now(), Snapshot: sn}); err != nil {
			return err
		}
		return cd.snapshotDroplet(ctx, c, sn, dropletID)
	case sn.Phase == snapPhaseSnapshot:
		if dropletID <= 0 {
			return cd.failSnapshot(ctx, sn, fmt.Errorf("snapshot %q: source node %s has no droplet", sn.Name, sn.SourceNode))
		}
		return cd.snapshotDroplet(ctx, c, sn, dropletID)
	case sn.Phase == snapPhaseReplicate:
		return cd.replicate(ctx, c, sn)
	}
	return nil // the source node is building the image
}

// failSnapshot marks a snapshot failed (no intent involved).
func (cd *cloudDuty) failSnapshot(ctx context.Context, sn raftfsm.Snapshot, cause error) error {
	sn.Status, sn.Error = raftfsm.SnapshotFailed, cause.Error()
	_, err := cd.a.apply(ctx, &raftfsm.PutSnapshot{At: cd.a.now(), Snapshot: sn})
	return errors.Join(cause, err)
}

// failed is sn marked failed with err, as an intent's changes.
func failed(sn raftfsm.Snapshot, err error) raftfsm.CloudChanges {
	sn.Status, sn.Error = raftfsm.SnapshotFailed, err.Error()
	return raftfsm.CloudChanges{Snapshot: &sn}
}

// snapshotIntent finds the pending intent of kind for snapshot name (and
// region, for a transfer), or records one.
func (cd *cloudDuty) snapshotIntent(ctx context.Context, kind raftfsm.IntentKind, name, region string, params map[string]string) (raftfsm.Intent, error) {
	a := cd.a
	for _, in := range a.cloudShared.intents.Pending(kind) {
		if in.Target == name && in.Params["region"] == region {
			return in, nil
		}
	}
	in := raftfsm.Intent{ID: newID("int"), Kind: kind, Target: name, Params: params, Status: raftfsm.IntentPending, CreatedAt: a.now()}
	_, err := a.apply(ctx, &raftfsm.RecordIntent{At: in.CreatedAt, Intent: in})
	return in, err
}

// stepError records a failed step of a snapshot intent: it fails the
// snapshot for an error that cannot pass (but a 422, which DigitalOcean
// answers while the droplet has another action in progress), else the step
// is tried again after a backoff, until SnapshotTimeout.
func (cd *cloudDuty) stepError(ctx context.Context, in raftfsm.Intent, sn raftfsm.Snapshot, err error) error {
	final := permanent(err) && cloudops.StatusCode(err) != http.StatusUnprocessableEntity
	return cd.retryIntent(ctx, in, err, cd.a.cfg.SnapshotTimeout, final, failed(sn, err))
}

// pollAction checks on the action this leadership started (or adopted) for
// in: done reports it completed; otherwise the step is over for this round
// (in progress, errored, or the check failed), and err says why if not in
// progress.
func (cd *cloudDuty) pollAction(ctx context.Context, c cloud, in raftfsm.Intent, sn raftfsm.Snapshot, what string) (done bool, err error) {
	act, err := c.do.GetAction(ctx, cd.actions[in.ID])
	if err != nil {
		return false, cd.stepError(ctx, in, sn, err)
	}
	switch act.Status {
	case cloudops.ActionCompleted:
		return true, nil
	case cloudops.ActionErrored:
		e := fmt.Errorf("%s: %w: action %d errored", what, cloudops.ErrActionFailed, act.ID)
		return false, cd.failIntent(ctx, in, e, failed(sn, e))
	}
	if limit := cd.a.cfg.SnapshotTimeout; cd.a.now().Sub(in.CreatedAt) > limit {
		e := fmt.Errorf("%s: action %d still in progress after %s (SnapshotTimeout)", what, act.ID, limit)
		return false, cd.failIntent(ctx, in, e, failed(sn, e))
	}
	cd.checkLater(in.ID)
	return false, nil
}

// snapshotDroplet advances the snapshot of the source droplet.
func (cd *cloudDuty) snapshotDroplet(ctx context.Context, c cloud, sn raftfsm.Snapshot, dropletID int) error {
	in, err := cd.snapshotIntent(ctx, raftfsm.IntentCreateSnapshot, sn.Name, "",
		map[string]string{"snapshot": sn.Name, "droplet_id": strconv.Itoa(dropletID)})
	if err != nil || !cd.due(in.ID) {
		return err
	}
	what := fmt.Sprintf("snapshot droplet %d as %q", dropletID, sn.Name)
	_, started := cd.actions[in.ID]
	if started {
		if done, err := cd.pollAction(ctx, c, in, sn, what); !done {
			return err
		}
	} else {
		// Not started by this leadership: a previous one may have, and its
		// action may still run (the image appears when it completes).
		acts, err := c.do.ListDropletActions(ctx, dropletID)
		if err != nil {
			return cd.stepError(ctx, in, sn, err)
		}
		for _, act := range acts {
			if act.Type == "snapshot" && act.Status == cloudops.ActionInProgress {
				cd.a.logger.Info("adopting a snapshot in progress", "snapshot", sn.Name, "droplet", dropletID, "action", act.ID)
				cd.remember(in.ID, act.ID, true)
				cd.checkLater(in.ID)
				return nil
			}
		}
	}
	found, err := c.do.FindSnapshot(ctx, sn.Name)
	switch {
	case err == nil:
		sn.ID, sn.Regions, sn.Phase, sn.Progress, sn.Error = found.ID, slices.Sorted(slices.Values(found.Regions)), snapPhaseReplicate, 60, ""
		cd.a.logger.Info("droplet snapshot taken", "snapshot", sn.Name, "image", found.ID, "regions", found.Regions)
		return cd.doneIntent(ctx, in, raftfsm.CloudChanges{Snapshot: &sn})
	case !errors.Is(err, cloudops.ErrNotFound):
		return cd.stepError(ctx, in, sn, err)
	case started && !cd.adopted[in.ID]:
		e := fmt.Errorf("%s: the action completed, yet no snapshot is called %q", what, sn.Name)
		return cd.failIntent(ctx, in, e, failed(sn, e))
	}
	// An adopted action that made no image of this name was another
	// snapshot of the droplet: now take ours.
	delete(cd.actions, in.ID)
	delete(cd.adopted, in.ID)
	act, err := c.do.SnapshotDroplet(ctx, dropletID, sn.Name)
	if err != nil {
		return cd.stepError(ctx, in, sn, err)
	}
	cd.remember(in.ID, act.ID, false)
	cd.checkLater(in.ID)
	return nil
}

// replicate advances the transfers of a snapshot to the regions it is not
// in yet, all at once; with none left the snapshot is ready.
func (cd *cloudDuty) replicate(ctx context.Context, c cloud, sn raftfsm.Snapshot) error {
	var missing []string
	for _, r := range sn.WantRegions {
		if !slices.Contains(sn.Regions, r) {
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		sn.Status, sn.Phase, sn.Progress, sn.Error = raftfsm.SnapshotReady, "", 100, ""
		_, err := cd.a.apply(ctx, &raftfsm.PutSnapshot{At: cd.a.now(), Snapshot: sn})
		return err
	}
	if sn.ID == 0 {
		return cd.failSnapshot(ctx, sn, fmt.Errorf("snapshot %q: replicating, yet no image id is recorded", sn.Name))
	}
	var errs []error
	for _, r := range missing {
		errs = append(errs, cd.transfer(ctx, c, sn.Name, r))
	}
	return errors.Join(errs...)
}

// transfer advances the copy of a snapshot to region.
func (cd *cloudDuty) transfer(ctx context.Context, c cloud, name, region string) error {
	a := cd.a
	var sn raftfsm.Snapshot
	a.fsm.View(func(s *raftfsm.State) {
		if cur, ok := s.Cloud.Snapshots[name]; ok {
			sn = *cur
		}
	})
	if sn.Status != raftfsm.SnapshotBuilding || sn.Phase != snapPhaseReplicate {
		return nil // an earlier transfer of this round failed it
	}
	in, err := cd.snapshotIntent(ctx, raftfsm.IntentTransferSnapshot, name, region,
		map[string]string{"snapshot": name, "image_id": strconv.Itoa(sn.ID), "region": region})
	if err != nil || !cd.due(in.ID) {
		return err
	}
	what := fmt.Sprintf("transfer snapshot %q (image %d) to %s", name, sn.ID, region)
	_, started := cd.actions[in.ID]
	if started {
		if done, err := cd.pollAction(ctx, c, in, sn, what); !done {
			return err
		}
	}
	img, err := c.do.GetSnapshot(ctx, sn.ID)
	if err != nil {
		return cd.stepError(ctx, in, sn, err)
	}
	if slices.Contains(img.Regions, region) {
		have := 0
		for _, r := range sn.WantRegions {
			if slices.Contains(img.Regions, r) {
				have++
			}
		}
		sn.Regions = slices.Sorted(slices.Values(img.Regions))
		sn.Progress = 60 + 40*have/max(len(sn.WantRegions), 1)
		if have == len(sn.WantRegions) {
			sn.Status, sn.Phase, sn.Progress, sn.Error = raftfsm.SnapshotReady, "", 100, ""
			a.logger.Info("snapshot ready in every region", "snapshot", name, "regions", sn.Regions)
		}
		return cd.doneIntent(ctx, in, raftfsm.CloudChanges{Snapshot: &sn})
	}
	if started {
		e := fmt.Errorf("%s: the transfer completed, yet the image is only in %s", what, strings.Join(img.Regions, ", "))
		return cd.failIntent(ctx, in, e, failed(sn, e))
	}
	act, err := c.do.TransferSnapshot(ctx, sn.ID, region)
	if err != nil {
		return cd.stepError(ctx, in, sn, err)
	}
	cd.remember(in.ID, act.ID, false)
	cd.checkLater(in.ID)
	return nil
}
