package cloudops

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/godo"
)

// Snapshot is a droplet snapshot (a private image) that droplets boot from.
type Snapshot struct {
	ID        int // the image id, what DropletSpec.SnapshotID takes
	Name      string
	Regions   []string // where droplets can be created from it
	CreatedAt time.Time
	SizeGB    float64
}

// Snapshots is what the snapshot builder and the leader do with snapshots.
type Snapshots interface {
	// ListSnapshots lists the droplet snapshots, every page.
	ListSnapshots(ctx context.Context) ([]Snapshot, error)
	// FindSnapshot returns the newest snapshot called name; ErrNotFound.
	FindSnapshot(ctx context.Context, name string) (Snapshot, error)
	// SnapshotDroplet starts a snapshot of a droplet; the image appears when
	// the action completes.
	SnapshotDroplet(ctx context.Context, dropletID int, name string) (Action, error)
	// TransferSnapshot starts copying a snapshot to another region.
	TransferSnapshot(ctx context.Context, imageID int, region string) (Action, error)
	// GetSnapshot returns one snapshot; ErrNotFound.
	GetSnapshot(ctx context.Context, imageID int) (Snapshot, error)
	// DeleteSnapshot deletes a snapshot; one already gone is not an error.
	DeleteSnapshot(ctx context.Context, imageID int) error
}

// ListSnapshots implements Snapshots.
func (do *DigitalOcean) ListSnapshots(ctx context.Context) ([]Snapshot, error) {
	const op = "list snapshots"
	if do.err != nil {
		return nil, fmt.Errorf("%s: %w", op, do.err)
	}
	gs, err := listAll(ctx, do.cfg.PageSize, do.c.Snapshots.ListDroplet)
	if err != nil {
		return nil, opError(op, err)
	}
	out := make([]Snapshot, 0, len(gs))
	for _, s := range gs {
		id, err := strconv.Atoi(s.ID)
		if err != nil {
			return nil, fmt.Errorf("%s: snapshot %q has id %q, not a number", op, s.Name, s.ID)
		}
		created, _ := time.Parse(time.RFC3339, s.Created)
		out = append(out, Snapshot{ID: id, Name: s.Name, Regions: append([]string(nil), s.Regions...), CreatedAt: created, SizeGB: s.SizeGigaBytes})
	}
	return out, nil
}

// FindSnapshot implements Snapshots.
func (do *DigitalOcean) FindSnapshot(ctx context.Context, name string) (Snapshot, error) {
	op := fmt.Sprintf("find snapshot %q", name)
	ss, err := do.ListSnapshots(ctx)
	if err != nil {
		return Snapshot{}, fmt.Errorf("%s: %w", op, err)
	}
	var best Snapshot
	found := false
	for _, s := range ss {
		if s.Name == name && (!found || s.CreatedAt.After(best.CreatedAt) || (s.CreatedAt.Equal(best.CreatedAt) && s.ID > best.ID)) {
			best, found = s, true
		}
	}
	if !found {
		return Snapshot{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return best, nil
}

// SnapshotDroplet implements Snapshots. Not retried on 5xx: a second
// snapshot is slow and costs money; the caller decides.
func (do *DigitalOcean) SnapshotDroplet(ctx context.Context, dropletID int, name string) (Action, error) {
	op := fmt.Sprintf("snapshot droplet %d as %q", dropletID, name)
	if err := do.check(dropletID, "droplet"); err != nil {
		return Action{}, fmt.Errorf("%s: %w", op, err)
	}
	if strings.TrimSpace(name) == "" || len(name) > 255 || strings.ContainsAny(name, "\r\n\t") {
		return Action{}, fmt.Errorf("%s: %w", op, invalid("snapshot name must be 1-255 printable characters"))
	}
	a, _, err := do.c.DropletActions.Snapshot(ctx, dropletID, name)
	if err != nil {
		return Action{}, opError(op, err)
	}
	do.log.Info("snapshot started", "droplet", dropletID, "name", name, "action_id", a.ID)
	return actionFrom(a), nil
}

// TransferSnapshot implements Snapshots.
func (do *DigitalOcean) TransferSnapshot(ctx context.Context, imageID int, region string) (Action, error) {
	op := fmt.Sprintf("transfer snapshot %d to %s", imageID, region)
	if err := do.check(imageID, "image"); err != nil {
		return Action{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := checkRegion(region); err != nil {
		return Action{}, fmt.Errorf("%s: %w", op, err)
	}
	a, _, err := do.c.ImageActions.Transfer(ctx, imageID, &godo.ActionRequest{"type": "transfer", "region": region})
	if err != nil {
		return Action{}, opError(op, err)
	}
	do.log.Info("snapshot transfer started", "image", imageID, "region", region, "action_id", a.ID)
	return actionFrom(a), nil
}

// GetSnapshot implements Snapshots.
func (do *DigitalOcean) GetSnapshot(ctx context.Context, imageID int) (Snapshot, error) {
	op := fmt.Sprintf("get snapshot %d", imageID)
	if err := do.check(imageID, "image"); err != nil {
		return Snapshot{}, fmt.Errorf("%s: %w", op, err)
	}
	img, _, err := do.c.Images.GetByID(ctx, imageID)
	if err != nil {
		return Snapshot{}, opError(op, err)
	}
	created, _ := time.Parse(time.RFC3339, img.Created)
	return Snapshot{ID: img.ID, Name: img.Name, Regions: append([]string(nil), img.Regions...), CreatedAt: created, SizeGB: img.SizeGigaBytes}, nil
}

// DeleteSnapshot implements Snapshots.
func (do *DigitalOcean) DeleteSnapshot(ctx context.Context, imageID int) error {
	op := fmt.Sprintf("delete snapshot %d", imageID)
	if err := do.check(imageID, "image"); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err := do.c.Images.Delete(ctx, imageID)
	if err = ignoreNotFound(err); err != nil {
		return opError(op, err)
	}
	do.log.Info("snapshot deleted", "image", imageID)
	return nil
}
