package fakeapi

import (
	"net/http"
	"slices"
	"sort"
	"strings"
)

// The read-only catalogue of the account: who it is, where it may create
// droplets and of what size, and the tags its resources carry. doctl's
// "account get", "region list", "size list" and "tag list" read these.

// accountUUID is the fake account's id.
const accountUUID = "d809fa4e-acc0-4000-8000-000000000001"

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"account": map[string]any{
		"droplet_limit": 25, "floating_ip_limit": 3, "volume_limit": 100, "email": "fake@dropmesh.invalid", "name": "dropmesh fake cloud",
		"uuid": accountUUID, "email_verified": true, "status": "active", "status_message": "",
		"team": map[string]any{"uuid": accountUUID, "name": "dropmesh"},
	}})
}

func (s *Server) listRegions(w http.ResponseWriter, r *http.Request) {
	all := make([]doRegion, 0, len(s.opts.Regions))
	for _, slug := range s.opts.Regions {
		all = append(all, regionOf(slug))
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Slug < all[j].Slug })
	page, links, meta, ok := doPage(w, r, all)
	if ok {
		writeJSON(w, http.StatusOK, map[string]any{"regions": page, "links": links, "meta": meta})
	}
}

func (s *Server) listSizes(w http.ResponseWriter, r *http.Request) {
	all := make([]doSize, 0, len(sizes))
	for _, si := range sizes {
		all = append(all, s.sizeOf(si.Slug))
	}
	page, links, meta, ok := doPage(w, r, all)
	if ok {
		writeJSON(w, http.StatusOK, map[string]any{"sizes": page, "links": links, "meta": meta})
	}
}

// tagCount is how many resources of one kind carry a tag.
type tagCount struct {
	Count         int    `json:"count"`
	LastTaggedURI string `json:"last_tagged_uri,omitempty"`
}

// doTag is a tag with the resources it is on.
type doTag struct {
	Name      string `json:"name"`
	Resources struct {
		tagCount
		Droplets        tagCount `json:"droplets"`
		Images          tagCount `json:"imgages"` // sic: DigitalOcean's spelling
		Volumes         tagCount `json:"volumes"`
		VolumeSnapshots tagCount `json:"volume_snapshots"`
		Databases       tagCount `json:"databases"`
	} `json:"resources"`
}

// tagsLocked counts the tags on droplets, snapshots and firewalls (a tag
// exists on DigitalOcean once something carries it).
func (s *Server) tagsLocked(host string) []doTag {
	byName := map[string]*doTag{}
	tag := func(name string) *doTag {
		t := byName[name]
		if t == nil {
			t = &doTag{Name: name}
			byName[name] = t
		}
		return t
	}
	for _, d := range s.sortedDroplets(func(*droplet) bool { return true }) {
		for _, name := range d.Tags {
			t := tag(name)
			t.Resources.Droplets.Count++
			t.Resources.Count++
			uri := "http://" + host + "/v2/droplets/" + itoaID(d.ID)
			t.Resources.Droplets.LastTaggedURI, t.Resources.LastTaggedURI = uri, uri
		}
	}
	for _, im := range s.sortedImages() {
		for _, name := range im.I.Tags {
			t := tag(name)
			t.Resources.Images.Count++
			t.Resources.Count++
		}
	}
	for _, fw := range s.st.Firewalls {
		for _, name := range fw.Tags {
			tag(name)
		}
	}
	out := make([]doTag, 0, len(byName))
	for _, t := range byName {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *Server) listTags(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	all := s.tagsLocked(r.Host)
	s.mu.Unlock()
	page, links, meta, ok := doPage(w, r, all)
	if ok {
		writeJSON(w, http.StatusOK, map[string]any{"tags": page, "links": links, "meta": meta})
	}
}

func (s *Server) getTag(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tag")
	s.mu.Lock()
	all := s.tagsLocked(r.Host)
	s.mu.Unlock()
	i := slices.IndexFunc(all, func(t doTag) bool { return strings.EqualFold(t.Name, name) })
	if i < 0 {
		doError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tag": all[i]})
}
