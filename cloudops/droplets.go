package cloudops

import (
	"context"
	"fmt"
	"time"

	"github.com/digitalocean/godo"
)

// Droplet is dropmesh's view of a DigitalOcean droplet.
type Droplet struct {
	ID        int
	Name      string
	Region    string
	Size      string
	Status    string // new, active, off or archive
	PublicIP  string
	PrivateIP string
	Tags      []string
	VPCUUID   string
	ImageID   int
	CreatedAt time.Time
}

// Droplet statuses.
const (
	StatusNew     = "new"
	StatusActive  = "active"
	StatusOff     = "off"
	StatusArchive = "archive"
)

// DropletSpec is what a new droplet is made from.
type DropletSpec struct {
	Name       string
	Region     string
	Size       string
	SnapshotID int    // image id of a snapshot; or
	ImageSlug  string // a public image such as debian-12-x64; neither: DOConfig.DefaultImageSlug
	VPCUUID    string
	Tags       []string // Tags[0] is the cluster tag, required: CreateDroplet finds droplets by it
	UserData   string
	SSHKeyIDs  []int
}

// Validate checks the spec without calling anything.
func (s DropletSpec) Validate() error {
	if !dropletNameRe.MatchString(s.Name) {
		return invalid("name %q: use letters, digits, '.' and '-', starting and ending with a letter or digit", s.Name)
	}
	if err := checkRegion(s.Region); err != nil {
		return err
	}
	if !slugRe.MatchString(s.Size) {
		return invalid("size %q is not a size slug like s-1vcpu-2gb", s.Size)
	}
	if s.SnapshotID < 0 {
		return invalid("snapshot id %d is negative", s.SnapshotID)
	}
	if s.SnapshotID > 0 && s.ImageSlug != "" {
		return invalid("give a snapshot id or an image slug, not both")
	}
	if s.ImageSlug != "" && !slugRe.MatchString(s.ImageSlug) {
		return invalid("image slug %q is not a slug", s.ImageSlug)
	}
	if s.VPCUUID != "" && !uuidRe.MatchString(s.VPCUUID) {
		return invalid("vpc %q is not a VPC id", s.VPCUUID)
	}
	if len(s.Tags) == 0 {
		return invalid("a cluster tag (Tags[0]) is required, it makes creation idempotent")
	}
	for _, t := range s.Tags {
		if err := checkTag(t); err != nil {
			return err
		}
	}
	if len(s.UserData) > 64<<10 {
		return invalid("user data is %d bytes, DigitalOcean allows 64 KiB", len(s.UserData))
	}
	for _, id := range s.SSHKeyIDs {
		if err := checkID("ssh key", id); err != nil {
			return err
		}
	}
	return nil
}

// Action is a DigitalOcean action (a droplet power change, a snapshot, an
// image transfer...).
type Action struct {
	ID         int
	Type       string
	Status     string // in-progress, completed or errored
	ResourceID int
}

// Action statuses.
const (
	ActionInProgress = "in-progress"
	ActionCompleted  = "completed"
	ActionErrored    = "errored"
)

// ActionKind is a power action on a droplet.
type ActionKind string

// The droplet actions the leader uses.
const (
	ActionReboot     ActionKind = "reboot"
	ActionPowerCycle ActionKind = "power_cycle"
	ActionPowerOff   ActionKind = "power_off"
	ActionPowerOn    ActionKind = "power_on"
	ActionShutdown   ActionKind = "shutdown"
)

// Droplets is what the leader does with droplets.
type Droplets interface {
	// CreateDroplet is idempotent: it first looks for a droplet with the same
	// name carrying spec.Tags[0] (the cluster tag) and returns it instead of
	// creating a second. The droplet is returned as created (status "new");
	// WaitForDropletStatus waits for "active".
	CreateDroplet(ctx context.Context, spec DropletSpec) (Droplet, error)
	// ListDroplets lists the droplets carrying tag ("" lists all), every page.
	ListDroplets(ctx context.Context, tag string) ([]Droplet, error)
	// GetDroplet returns one droplet; ErrNotFound if it does not exist.
	GetDroplet(ctx context.Context, id int) (Droplet, error)
	// WaitForDropletStatus polls until the droplet has status.
	WaitForDropletStatus(ctx context.Context, id int, status string) (Droplet, error)
	// DeleteDroplet deletes a droplet; one already gone is not an error.
	DeleteDroplet(ctx context.Context, id int) error
	// DropletAction starts a power action.
	DropletAction(ctx context.Context, id int, kind ActionKind) (Action, error)
	// WaitForAction polls an action until it is completed; errored gives an
	// error matching ErrActionFailed.
	WaitForAction(ctx context.Context, actionID int) (Action, error)
	// GetAction returns an action as it is now (one request, no waiting),
	// for callers that check on a long action step by step.
	GetAction(ctx context.Context, actionID int) (Action, error)
	// ListDropletActions lists a droplet's actions, every page: how a new
	// leader finds an action its predecessor started (a snapshot in
	// progress) instead of starting a second one.
	ListDropletActions(ctx context.Context, dropletID int) ([]Action, error)
}

func dropletFrom(d *godo.Droplet) Droplet {
	if d == nil {
		return Droplet{}
	}
	out := Droplet{ID: d.ID, Name: d.Name, Size: d.SizeSlug, Status: d.Status, VPCUUID: d.VPCUUID}
	out.Tags = append([]string(nil), d.Tags...)
	if d.Region != nil {
		out.Region = d.Region.Slug
	}
	if out.Size == "" && d.Size != nil {
		out.Size = d.Size.Slug
	}
	if d.Image != nil {
		out.ImageID = d.Image.ID
	}
	out.PublicIP, _ = d.PublicIPv4()
	out.PrivateIP, _ = d.PrivateIPv4()
	out.CreatedAt, _ = time.Parse(time.RFC3339, d.Created)
	return out
}

func actionFrom(a *godo.Action) Action {
	if a == nil {
		return Action{}
	}
	return Action{ID: a.ID, Type: a.Type, Status: a.Status, ResourceID: a.ResourceID}
}

// CreateDroplet implements Droplets. A create that fails with a 5xx or a
// network error may have happened, so it is retried by looking the droplet
// up again before creating it.
func (do *DigitalOcean) CreateDroplet(ctx context.Context, spec DropletSpec) (Droplet, error) {
	op := fmt.Sprintf("create droplet %q", spec.Name)
	if do.err != nil {
		return Droplet{}, fmt.Errorf("%s: %w", op, do.err)
	}
	if err := spec.Validate(); err != nil {
		return Droplet{}, fmt.Errorf("%s: %w", op, err)
	}
	req := &godo.DropletCreateRequest{
		Name: spec.Name, Region: spec.Region, Size: spec.Size,
		Image:    godo.DropletCreateImage{ID: spec.SnapshotID, Slug: spec.ImageSlug},
		UserData: spec.UserData, Tags: spec.Tags, VPCUUID: spec.VPCUUID, Monitoring: true,
	}
	if spec.SnapshotID == 0 && spec.ImageSlug == "" {
		req.Image.Slug = do.cfg.DefaultImageSlug
	}
	for _, id := range spec.SSHKeyIDs {
		req.SSHKeys = append(req.SSHKeys, godo.DropletCreateSSHKey{ID: id})
	}
	var out Droplet
	err := again(ctx, do.retry, do.log, op, func() error {
		d, found, err := do.findDroplet(ctx, spec.Name, spec.Tags[0])
		if err != nil {
			return err
		}
		if found {
			do.log.Info("droplet exists, not creating another", "droplet", spec.Name, "id", d.ID)
			out = d
			return nil
		}
		gd, _, err := do.c.Droplets.Create(ctx, req)
		if err != nil {
			return err
		}
		out = dropletFrom(gd)
		do.log.Info("droplet created", "droplet", spec.Name, "id", out.ID, "region", spec.Region)
		return nil
	})
	if err != nil {
		return Droplet{}, opError(op, err)
	}
	return out, nil
}

// findDroplet looks for the droplet called name among those tagged tag; the
// oldest wins if a past bug made two.
func (do *DigitalOcean) findDroplet(ctx context.Context, name, tag string) (Droplet, bool, error) {
	ds, err := do.listDroplets(ctx, tag)
	if err != nil {
		return Droplet{}, false, err
	}
	var best Droplet
	found := false
	for _, d := range ds {
		if d.Name == name && (!found || d.ID < best.ID) {
			best, found = d, true
		}
	}
	return best, found, nil
}

// ListDroplets implements Droplets.
func (do *DigitalOcean) ListDroplets(ctx context.Context, tag string) ([]Droplet, error) {
	op := fmt.Sprintf("list droplets tagged %q", tag)
	if tag == "" {
		op = "list droplets"
	}
	if do.err != nil {
		return nil, fmt.Errorf("%s: %w", op, do.err)
	}
	if tag != "" {
		if err := checkTag(tag); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	ds, err := do.listDroplets(ctx, tag)
	return ds, opError(op, err)
}

func (do *DigitalOcean) listDroplets(ctx context.Context, tag string) ([]Droplet, error) {
	gds, err := listAll(ctx, do.cfg.PageSize, func(ctx context.Context, opt *godo.ListOptions) ([]godo.Droplet, *godo.Response, error) {
		if tag == "" {
			return do.c.Droplets.List(ctx, opt)
		}
		return do.c.Droplets.ListByTag(ctx, tag, opt)
	})
	if err != nil {
		return nil, err
	}
	out := make([]Droplet, len(gds))
	for i := range gds {
		out[i] = dropletFrom(&gds[i])
	}
	return out, nil
}

// GetDroplet implements Droplets.
func (do *DigitalOcean) GetDroplet(ctx context.Context, id int) (Droplet, error) {
	op := fmt.Sprintf("get droplet %d", id)
	if err := do.check(id, "droplet"); err != nil {
		return Droplet{}, fmt.Errorf("%s: %w", op, err)
	}
	d, _, err := do.c.Droplets.Get(ctx, id)
	if err != nil {
		return Droplet{}, opError(op, err)
	}
	return dropletFrom(d), nil
}

// WaitForDropletStatus implements Droplets.
func (do *DigitalOcean) WaitForDropletStatus(ctx context.Context, id int, status string) (Droplet, error) {
	var d Droplet
	err := poll(ctx, do.cfg.PollInterval, func() (bool, error) {
		var err error
		d, err = do.GetDroplet(ctx, id)
		return err == nil && d.Status == status, err
	})
	if err != nil {
		return d, fmt.Errorf("wait for droplet %d to be %s (now %q): %w", id, status, d.Status, err)
	}
	return d, nil
}

// DeleteDroplet implements Droplets.
func (do *DigitalOcean) DeleteDroplet(ctx context.Context, id int) error {
	op := fmt.Sprintf("delete droplet %d", id)
	if err := do.check(id, "droplet"); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err := do.c.Droplets.Delete(ctx, id)
	if err = ignoreNotFound(err); err != nil {
		return opError(op, err)
	}
	do.log.Info("droplet deleted", "id", id)
	return nil
}

// DropletAction implements Droplets. Actions are POSTs, so a 5xx is not
// retried (it may have rebooted the droplet already); a 429 is.
func (do *DigitalOcean) DropletAction(ctx context.Context, id int, kind ActionKind) (Action, error) {
	op := fmt.Sprintf("%s droplet %d", kind, id)
	if err := do.check(id, "droplet"); err != nil {
		return Action{}, fmt.Errorf("%s: %w", op, err)
	}
	var f func(context.Context, int) (*godo.Action, *godo.Response, error)
	switch kind {
	case ActionReboot:
		f = do.c.DropletActions.Reboot
	case ActionPowerCycle:
		f = do.c.DropletActions.PowerCycle
	case ActionPowerOff:
		f = do.c.DropletActions.PowerOff
	case ActionPowerOn:
		f = do.c.DropletActions.PowerOn
	case ActionShutdown:
		f = do.c.DropletActions.Shutdown
	default:
		return Action{}, fmt.Errorf("%s: %w", op, invalid("unknown action %q", kind))
	}
	a, _, err := f(ctx, id)
	if err != nil {
		return Action{}, opError(op, err)
	}
	do.log.Info("droplet action started", "id", id, "action", kind, "action_id", a.ID)
	return actionFrom(a), nil
}

// WaitForAction implements Droplets.
func (do *DigitalOcean) WaitForAction(ctx context.Context, actionID int) (Action, error) {
	op := fmt.Sprintf("wait for action %d", actionID)
	if err := do.check(actionID, "action"); err != nil {
		return Action{}, fmt.Errorf("%s: %w", op, err)
	}
	var a Action
	err := poll(ctx, do.cfg.PollInterval, func() (bool, error) {
		ga, _, err := do.c.Actions.Get(ctx, actionID)
		if err != nil {
			return false, err
		}
		a = actionFrom(ga)
		switch a.Status {
		case ActionCompleted:
			return true, nil
		case ActionErrored:
			return true, fmt.Errorf("%w: %s of resource %d errored", ErrActionFailed, a.Type, a.ResourceID)
		}
		return false, nil
	})
	if err != nil {
		return a, opError(op, err)
	}
	return a, nil
}

// GetAction implements Droplets.
func (do *DigitalOcean) GetAction(ctx context.Context, actionID int) (Action, error) {
	op := fmt.Sprintf("get action %d", actionID)
	if err := do.check(actionID, "action"); err != nil {
		return Action{}, fmt.Errorf("%s: %w", op, err)
	}
	ga, _, err := do.c.Actions.Get(ctx, actionID)
	if err != nil {
		return Action{}, opError(op, err)
	}
	return actionFrom(ga), nil
}

// ListDropletActions implements Droplets.
func (do *DigitalOcean) ListDropletActions(ctx context.Context, dropletID int) ([]Action, error) {
	op := fmt.Sprintf("list actions of droplet %d", dropletID)
	if err := do.check(dropletID, "droplet"); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	gas, err := listAll(ctx, do.cfg.PageSize, func(ctx context.Context, opt *godo.ListOptions) ([]godo.Action, *godo.Response, error) {
		return do.c.Droplets.Actions(ctx, dropletID, opt)
	})
	if err != nil {
		return nil, opError(op, err)
	}
	out := make([]Action, len(gas))
	for i := range gas {
		out[i] = actionFrom(&gas[i])
	}
	return out, nil
}

// check returns the configuration error, or an error if id is not positive.
func (do *DigitalOcean) check(id int, what string) error {
	if do.err != nil {
		return do.err
	}
	return checkID(what, id)
}
