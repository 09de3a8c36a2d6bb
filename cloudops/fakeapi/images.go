package fakeapi

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"

	"github.com/digitalocean/godo"
)

// sortedImages returns the snapshot images, by id.
func (s *Server) sortedImages() []*image {
	out := make([]*image, 0, len(s.st.Images))
	for _, im := range s.st.Images {
		out = append(out, im)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].I.ID < out[j].I.ID })
	return out
}

// snapshotOf shows an image the way /v2/snapshots does (string ids).
func snapshotOf(im *image) godo.Snapshot {
	return godo.Snapshot{ID: strconv.Itoa(im.I.ID), Name: im.I.Name, ResourceID: strconv.Itoa(im.DropletID), ResourceType: "droplet",
		Regions: append([]string{}, im.I.Regions...), MinDiskSize: im.I.MinDiskSize, SizeGigaBytes: im.I.SizeGigaBytes,
		Created: im.I.Created, Tags: append([]string{}, im.I.Tags...)}
}

func (s *Server) listSnapshots(w http.ResponseWriter, r *http.Request) {
	rt := r.URL.Query().Get("resource_type")
	if rt != "" && rt != "droplet" && rt != "volume" {
		doError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("resource_type %q: use droplet or volume", rt))
		return
	}
	s.mu.Lock()
	var all []godo.Snapshot
	if rt != "volume" {
		for _, im := range s.sortedImages() {
			all = append(all, snapshotOf(im))
		}
	}
	s.mu.Unlock()
	page, links, meta, ok := doPage(w, r, all)
	if ok {
		out := make([]doSnapshot, len(page))
		for i, sn := range page {
			out[i] = snapshotJSON(sn)
		}
		writeJSON(w, http.StatusOK, map[string]any{"snapshots": out, "links": links, "meta": meta})
	}
}

// imageLocked finds the image named by path value "id", answering 404
// itself when there is none.
func (s *Server) imageLocked(w http.ResponseWriter, r *http.Request) *image {
	id, err := strconv.Atoi(r.PathValue("id"))
	im := s.st.Images[id]
	if err != nil || im == nil {
		doError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return nil
	}
	return im
}

func (s *Server) getSnapshot(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if im := s.imageLocked(w, r); im != nil {
		writeJSON(w, http.StatusOK, map[string]any{"snapshot": snapshotJSON(snapshotOf(im))})
	}
}

// listImages lists images as DigitalOcean does: type=distribution gives
// the public distributions, private=true (or tag_name) the account's own
// snapshots, no filter both; type=application has none in the fake.
func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	typ, private, tag := q.Get("type"), q.Get("private"), q.Get("tag_name")
	if typ != "" && typ != "distribution" && typ != "application" {
		doError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("type %q: use distribution or application", typ))
		return
	}
	if private != "" && private != "true" && private != "false" {
		doError(w, http.StatusBadRequest, "bad_request", "private must be true or false")
		return
	}
	var all []godo.Image
	if typ == "" && private != "true" && tag == "" {
		for _, d := range distributions {
			all = append(all, distributionImage(d, s.opts.Regions))
		}
	} else if typ == "distribution" {
		for _, d := range distributions {
			all = append(all, distributionImage(d, s.opts.Regions))
		}
	}
	s.mu.Lock()
	if typ == "" {
		for _, im := range s.sortedImages() {
			if tag == "" || slices.Contains(im.I.Tags, tag) {
				all = append(all, im.I)
			}
		}
	}
	s.mu.Unlock()
	page, links, meta, ok := doPage(w, r, all)
	if ok {
		out := make([]doImage, len(page))
		for i, im := range page {
			out[i] = imageOf(im)
		}
		writeJSON(w, http.StatusOK, map[string]any{"images": out, "links": links, "meta": meta})
	}
}

func (s *Server) getImage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := distributionBy(r.PathValue("id"), atoi(r.PathValue("id"))); ok {
		writeJSON(w, http.StatusOK, map[string]any{"image": imageOf(distributionImage(d, s.opts.Regions))})
		return
	}
	if im := s.imageLocked(w, r); im != nil {
		writeJSON(w, http.StatusOK, map[string]any{"image": imageOf(im.I)})
	}
}

func (s *Server) deleteImage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	im := s.imageLocked(w, r)
	if im == nil {
		return
	}
	delete(s.st.Images, im.I.ID)
	s.changed()
	s.log.Info("image deleted", "id", im.I.ID, "name", im.I.Name)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) postImageAction(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Type   string `json:"type"`
		Region string `json:"region"`
	}
	if err := decode(r, &req); err != nil {
		doError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	im := s.imageLocked(w, r)
	if im == nil {
		return
	}
	if req.Type != "transfer" {
		doError(w, http.StatusUnprocessableEntity, "unprocessable_entity", fmt.Sprintf("Image action %q is not supported (the fake knows transfer).", req.Type))
		return
	}
	if !s.validRegion(req.Region) {
		doError(w, http.StatusUnprocessableEntity, "unprocessable_entity", fmt.Sprintf("Region %q is not available.", req.Region))
		return
	}
	a := s.newActionLocked("transfer", "image", im.I.ID, req.Region)
	a.ImageID, a.Region = im.I.ID, req.Region
	s.schedule(a.A.ID)
	s.changed()
	s.log.Info("image transfer", "id", im.I.ID, "region", req.Region, "action_id", a.A.ID)
	writeJSON(w, http.StatusCreated, map[string]any{"action": actionOf(a.A)})
}

func (s *Server) getImageAction(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	im := s.imageLocked(w, r)
	if im == nil {
		return
	}
	aid, _ := strconv.Atoi(r.PathValue("aid"))
	a := s.st.Actions[aid]
	if a == nil || a.ImageID != im.I.ID {
		doError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"action": actionOf(a.A)})
}

// atoi is strconv.Atoi with 0 for anything else.
func atoi(v string) int {
	n, _ := strconv.Atoi(v)
	return n
}
