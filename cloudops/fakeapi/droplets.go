package fakeapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/digitalocean/godo"
)

// Droplet and action statuses, in DigitalOcean's words.
const (
	statusNew        = "new"
	statusActive     = "active"
	statusOff        = "off"
	statusInProgress = "in-progress"
	statusCompleted  = "completed"
	statusErrored    = "errored"
)

// Id bases: DigitalOcean ids are increasing integers; distinct ranges make
// an action id passed as a droplet id fail loudly.
const (
	dropletIDBase = 300000000
	actionIDBase  = 1000000000
	imageIDBase   = 150000000
	keyIDBase     = 40000000
)

var (
	dropletNameRe = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,253}[a-zA-Z0-9])?$`)
	slugRe        = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,63}$`)
	tagRe         = regexp.MustCompile(`^[a-zA-Z0-9_:-]{1,255}$`)
)

// createDropletRequest is godo's DropletCreateRequest as received: image and
// ssh_keys may be numbers or strings.
type createDropletRequest struct {
	Name     string            `json:"name"`
	Names    []string          `json:"names"`
	Region   string            `json:"region"`
	Size     string            `json:"size"`
	Image    json.RawMessage   `json:"image"`
	SSHKeys  []json.RawMessage `json:"ssh_keys"`
	UserData string            `json:"user_data"`
	Tags     []string          `json:"tags"`
	VPCUUID  string            `json:"vpc_uuid"`
}

func (s *Server) createDroplet(w http.ResponseWriter, r *http.Request) {
	var req createDropletRequest
	if err := decode(r, &req); err != nil {
		doError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	img, vpc, msg := s.checkCreateLocked(&req)
	if msg != "" {
		doError(w, http.StatusUnprocessableEntity, "unprocessable_entity", msg)
		return
	}
	if vpc == nil {
		vpc = s.defaultVPCLocked(req.Region)
	}
	size, _ := sizeBySlug(req.Size)
	s.st.Seq.Droplet++
	seq := s.st.Seq.Droplet
	pub, priv := s.opts.IPAllocator(seq)
	d := &droplet{Seq: seq, UserData: req.UserData, D: godo.Droplet{
		ID: dropletIDBase + seq, Name: req.Name, Memory: size.Memory, Vcpus: size.Vcpus, Disk: size.Disk,
		Region:   &godo.Region{Slug: req.Region, Name: req.Region, Available: true},
		Image:    img,
		Size:     &godo.Size{Slug: req.Size, Available: true},
		SizeSlug: req.Size, Status: statusNew, Created: nowDO(),
		Features:  []string{"monitoring", "private_networking"},
		Networks:  &godo.Networks{V4: []godo.NetworkV4{{IPAddress: pub, Netmask: "255.255.255.0", Type: "public"}, {IPAddress: priv, Netmask: "255.255.240.0", Type: "private"}}},
		Tags:      slices.Clone(req.Tags),
		VolumeIDs: []string{},
		VPCUUID:   vpc.ID,
	}}
	if d.D.Tags == nil {
		d.D.Tags = []string{}
	}
	s.st.Droplets[d.D.ID] = d
	a := s.newActionLocked("create", "droplet", d.D.ID, req.Region)
	a.DropletID = d.D.ID
	s.schedule(a.A.ID)
	s.changed()
	s.log.Info("droplet created", "id", d.D.ID, "name", d.D.Name)
	writeJSON(w, http.StatusAccepted, map[string]any{
		"droplet": s.dropletOf(d.D),
		"links":   godo.Links{Actions: []godo.LinkAction{{ID: a.A.ID, Rel: "create", HREF: "http://" + r.Host + "/v2/actions/" + strconv.Itoa(a.A.ID)}}},
	})
}

// checkCreateLocked validates a create request as DigitalOcean would and
// resolves its image and VPC; msg is the 422 message, "" if valid.
func (s *Server) checkCreateLocked(req *createDropletRequest) (img *godo.Image, vpc *godo.VPC, msg string) {
	switch {
	case len(req.Names) > 0:
		return nil, nil, "creating several droplets at once is not supported by the fake"
	case !dropletNameRe.MatchString(req.Name):
		return nil, nil, fmt.Sprintf("Name %q is invalid: only a-z, A-Z, 0-9, . and - are allowed.", req.Name)
	case !s.validRegion(req.Region):
		return nil, nil, fmt.Sprintf("Region %q is not available.", req.Region)
	case !knownSize(req.Size):
		return nil, nil, fmt.Sprintf("You specified an invalid size for Droplet creation: %q.", req.Size)
	case len(req.UserData) > 64<<10:
		return nil, nil, "user_data exceeds 64 KiB"
	}
	for _, t := range req.Tags {
		if !tagRe.MatchString(t) {
			return nil, nil, fmt.Sprintf("Tag %q is invalid.", t)
		}
	}
	var id int
	var slug string
	switch {
	case json.Unmarshal(req.Image, &id) == nil && id > 0 && id > distributionIDBase && id < distributionIDBase+1000:
		d, ok := distributionBy("", id)
		if !ok {
			return nil, nil, fmt.Sprintf("You specified an invalid image for Droplet creation: %d.", id)
		}
		c := distributionImage(d, s.opts.Regions)
		img = &c
	case json.Unmarshal(req.Image, &id) == nil && id > 0:
		im := s.st.Images[id]
		if im == nil {
			return nil, nil, fmt.Sprintf("Image %d does not exist.", id)
		}
		if !slices.Contains(im.I.Regions, req.Region) {
			return nil, nil, fmt.Sprintf("Image %d is not available in region %s (it is in %s).", id, req.Region, strings.Join(im.I.Regions, ", "))
		}
		c := im.I
		img = &c
	case json.Unmarshal(req.Image, &slug) == nil && slug != "":
		d, ok := distributionBy(slug, 0)
		switch {
		case ok:
			c := distributionImage(d, s.opts.Regions)
			img = &c
		case slices.Contains(s.opts.Images, slug):
			img = &godo.Image{Name: slug, Slug: slug, Type: "custom", Distribution: "Debian", Regions: slices.Clone(s.opts.Regions),
				MinDiskSize: 10, Status: "available", Tags: []string{}}
		default:
			return nil, nil, fmt.Sprintf("You specified an invalid image for Droplet creation: %q (the fake knows %s and your snapshots).", slug, distributionNames())
		}
	default:
		return nil, nil, "An image (id or slug) is required."
	}
	for _, k := range req.SSHKeys {
		var kid int
		var fp string
		switch {
		case json.Unmarshal(k, &kid) == nil:
			if s.st.Keys[kid] == nil {
				return nil, nil, fmt.Sprintf("SSH key %d does not exist.", kid)
			}
		case json.Unmarshal(k, &fp) == nil:
			if s.keyByRefLocked(fp) == nil {
				return nil, nil, fmt.Sprintf("SSH key %q does not exist.", fp)
			}
		default:
			return nil, nil, "ssh_keys must hold ids or fingerprints"
		}
	}
	if req.VPCUUID != "" {
		vpc = s.st.VPCs[req.VPCUUID]
		if vpc == nil {
			return nil, nil, fmt.Sprintf("VPC %s does not exist.", req.VPCUUID)
		}
		if vpc.RegionSlug != req.Region {
			return nil, nil, fmt.Sprintf("VPC %s is in %s, not %s.", vpc.ID, vpc.RegionSlug, req.Region)
		}
	}
	return img, vpc, ""
}

// knownSize reports whether slug is a size the fake sells.
func knownSize(slug string) bool {
	_, ok := sizeBySlug(slug)
	return ok
}

// sortedDroplets returns the droplets that keep, by id.
func (s *Server) sortedDroplets(keep func(*droplet) bool) []godo.Droplet {
	var out []godo.Droplet
	for _, d := range s.st.Droplets {
		if keep(d) {
			out = append(out, d.D)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *Server) listDroplets(w http.ResponseWriter, r *http.Request) {
	tag, name := r.URL.Query().Get("tag_name"), r.URL.Query().Get("name")
	s.mu.Lock()
	all := s.sortedDroplets(func(d *droplet) bool {
		return (tag == "" || slices.Contains(d.D.Tags, tag)) && (name == "" || d.D.Name == name)
	})
	s.mu.Unlock()
	page, links, meta, ok := doPage(w, r, all)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"droplets": s.dropletsOf(page), "links": links, "meta": meta})
}

// dropletLocked finds the droplet named by path value "id", answering 404
// itself when there is none.
func (s *Server) dropletLocked(w http.ResponseWriter, r *http.Request) *droplet {
	id, err := strconv.Atoi(r.PathValue("id"))
	d := s.st.Droplets[id]
	if err != nil || d == nil {
		doError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return nil
	}
	return d
}

func (s *Server) getDroplet(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.dropletLocked(w, r); d != nil {
		writeJSON(w, http.StatusOK, map[string]any{"droplet": s.dropletOf(d.D)})
	}
}

func (s *Server) deleteDroplet(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dropletLocked(w, r)
	if d == nil {
		return
	}
	s.removeDropletLocked(d)
	s.changed()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deleteDropletsByTag(w http.ResponseWriter, r *http.Request) {
	tag := r.URL.Query().Get("tag_name")
	if tag == "" {
		doError(w, http.StatusBadRequest, "bad_request", "tag_name is required to delete droplets in bulk")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, gd := range s.sortedDroplets(func(d *droplet) bool { return slices.Contains(d.D.Tags, tag) }) {
		s.removeDropletLocked(s.st.Droplets[gd.ID])
	}
	s.changed()
	w.WriteHeader(http.StatusNoContent)
}

// removeDropletLocked deletes a droplet and stops its backend if it ran.
// Its in-progress actions will end errored.
func (s *Server) removeDropletLocked(d *droplet) {
	delete(s.st.Droplets, d.D.ID)
	for _, fw := range s.st.Firewalls {
		fw.DropletIDs = slices.DeleteFunc(fw.DropletIDs, func(id int) bool { return id == d.D.ID })
	}
	if d.D.Status == statusActive {
		id := d.D.ID
		s.backend("stop", id, func(ctx context.Context, b DropletBackend) error { return b.Stop(ctx, id) })
	}
	s.log.Info("droplet deleted", "id", d.D.ID, "name", d.D.Name)
}

// newActionLocked records a new in-progress action.
func (s *Server) newActionLocked(typ, resourceType string, resourceID int, region string) *action {
	s.st.Seq.Action++
	now := godo.Timestamp{}
	now.Time = nowTime()
	a := &action{A: godo.Action{ID: actionIDBase + s.st.Seq.Action, Status: statusInProgress, Type: typ,
		StartedAt: &now, ResourceID: resourceID, ResourceType: resourceType, RegionSlug: region}}
	if region != "" {
		a.A.Region = &godo.Region{Slug: region, Name: region, Available: true}
	}
	s.st.Actions[a.A.ID] = a
	return a
}

// dropletActionTypes are the droplet actions the fake performs.
var dropletActionTypes = []string{"reboot", "power_cycle", "power_off", "power_on", "shutdown", "snapshot"}

func (s *Server) postDropletAction(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if err := decode(r, &req); err != nil {
		doError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dropletLocked(w, r)
	if d == nil {
		return
	}
	if !slices.Contains(dropletActionTypes, req.Type) {
		doError(w, http.StatusUnprocessableEntity, "unprocessable_entity", fmt.Sprintf("Action type %q is not supported (the fake knows %s).", req.Type, strings.Join(dropletActionTypes, ", ")))
		return
	}
	for _, a := range s.st.Actions {
		if a.DropletID == d.D.ID && a.A.Status == statusInProgress {
			doError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "Droplet already has a pending event.")
			return
		}
	}
	if req.Type == "snapshot" && (strings.TrimSpace(req.Name) == "" || len(req.Name) > 255) {
		doError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "A snapshot needs a name of 1-255 characters.")
		return
	}
	a := s.newActionLocked(req.Type, "droplet", d.D.ID, d.D.Region.Slug)
	a.DropletID = d.D.ID
	a.SnapshotName = req.Name
	s.schedule(a.A.ID)
	s.changed()
	s.log.Info("droplet action", "id", d.D.ID, "action", req.Type, "action_id", a.A.ID)
	writeJSON(w, http.StatusCreated, map[string]any{"action": actionOf(a.A)})
}

// actionsWhere returns the actions that keep, by id.
func (s *Server) actionsWhere(keep func(*action) bool) []godo.Action {
	var out []godo.Action
	for _, a := range s.st.Actions {
		if keep(a) {
			out = append(out, a.A)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *Server) listDropletActions(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	d := s.dropletLocked(w, r)
	if d == nil {
		s.mu.Unlock()
		return
	}
	all := s.actionsWhere(func(a *action) bool { return a.DropletID == d.D.ID })
	s.mu.Unlock()
	page, links, meta, ok := doPage(w, r, all)
	if ok {
		writeJSON(w, http.StatusOK, map[string]any{"actions": actionsOf(page), "links": links, "meta": meta})
	}
}

func (s *Server) getDropletAction(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dropletLocked(w, r)
	if d == nil {
		return
	}
	aid, _ := strconv.Atoi(r.PathValue("aid"))
	a := s.st.Actions[aid]
	if a == nil || a.DropletID != d.D.ID {
		doError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"action": actionOf(a.A)})
}

func (s *Server) listActions(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	all := s.actionsWhere(func(*action) bool { return true })
	s.mu.Unlock()
	page, links, meta, ok := doPage(w, r, all)
	if ok {
		writeJSON(w, http.StatusOK, map[string]any{"actions": actionsOf(page), "links": links, "meta": meta})
	}
}

func (s *Server) getAction(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.Actions[id]
	if a == nil {
		doError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"action": actionOf(a.A)})
}

// finishAction completes an action: its effect on the state first, then
// the backend call it implies (so a started droplet already reads active).
func (s *Server) finishAction(ctx context.Context, id int) {
	s.mu.Lock()
	delete(s.timers, id)
	a := s.st.Actions[id]
	if a == nil || a.A.Status != statusInProgress || s.closed {
		s.mu.Unlock()
		return
	}
	call := s.completeLocked(a)
	s.changed()
	b := s.opts.Backend
	s.mu.Unlock()
	if call != nil && b != nil {
		if err := call(ctx, b); err != nil {
			s.log.Warn("droplet backend failed", "action", a.A.Type, "resource", a.A.ResourceID, "err", err)
		}
	}
}

// completeLocked applies an action's effect and marks it completed (or
// errored if its resource is gone). It returns the backend call to make.
func (s *Server) completeLocked(a *action) func(context.Context, DropletBackend) error {
	done := godo.Timestamp{}
	done.Time = nowTime()
	a.A.CompletedAt = &done
	a.A.Status = statusCompleted
	if a.A.Type == "transfer" {
		im := s.st.Images[a.ImageID]
		if im == nil {
			a.A.Status = statusErrored
			return nil
		}
		if !slices.Contains(im.I.Regions, a.Region) {
			im.I.Regions = append(im.I.Regions, a.Region)
			sort.Strings(im.I.Regions)
		}
		return nil
	}
	d := s.st.Droplets[a.DropletID]
	if d == nil {
		a.A.Status = statusErrored
		return nil
	}
	was := d.D.Status
	id := d.D.ID
	start := func() func(context.Context, DropletBackend) error {
		bd := backed(d)
		return func(ctx context.Context, b DropletBackend) error { return b.Start(ctx, bd) }
	}
	switch a.A.Type {
	case "create":
		d.D.Status = statusActive
		return start()
	case "power_on":
		d.D.Status = statusActive
		if was != statusActive {
			return start()
		}
	case "reboot", "power_cycle":
		d.D.Status = statusActive
		if was != statusActive {
			return start()
		}
		return func(ctx context.Context, b DropletBackend) error { return b.Restart(ctx, id) }
	case "power_off", "shutdown":
		d.D.Status = statusOff
		if was == statusActive {
			return func(ctx context.Context, b DropletBackend) error { return b.Stop(ctx, id) }
		}
	case "snapshot":
		s.st.Seq.Image++
		distro := "Debian"
		if d.D.Image != nil && d.D.Image.Distribution != "" {
			distro = d.D.Image.Distribution
		}
		im := &image{DropletID: id, I: godo.Image{ID: imageIDBase + s.st.Seq.Image, Name: a.SnapshotName, Type: "snapshot",
			Distribution: distro, Regions: []string{d.D.Region.Slug}, MinDiskSize: d.D.Disk, SizeGigaBytes: 1.5,
			Created: nowDO(), Status: "available", Tags: []string{}}}
		s.st.Images[im.I.ID] = im
		d.D.SnapshotIDs = append(d.D.SnapshotIDs, im.I.ID)
	}
	return nil
}

// backed is what a backend is told about a droplet.
func backed(d *droplet) BackedDroplet {
	pub, _ := d.D.PublicIPv4()
	priv, _ := d.D.PrivateIPv4()
	region := ""
	if d.D.Region != nil {
		region = d.D.Region.Slug
	}
	return BackedDroplet{ID: d.D.ID, Name: d.D.Name, Region: region, Status: d.D.Status, PublicIP: pub, PrivateIP: priv,
		UserData: d.UserData, Tags: slices.Clone(d.D.Tags)}
}
