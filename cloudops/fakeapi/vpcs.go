package fakeapi

import (
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"sort"
	"time"

	"github.com/digitalocean/godo"
)

// vpcNameRe is the name pattern of DigitalOcean's spec.
var vpcNameRe = regexp.MustCompile(`^[a-zA-Z0-9.-]{1,255}$`)

func (s *Server) sortedVPCs() []godo.VPC {
	out := make([]godo.VPC, 0, len(s.st.VPCs))
	for _, v := range s.st.VPCs {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// overlapsLocked reports whether p overlaps an existing VPC's range.
func (s *Server) overlapsLocked(p netip.Prefix) bool {
	for _, v := range s.st.VPCs {
		if q, err := netip.ParsePrefix(v.IPRange); err == nil && q.Overlaps(p) {
			return true
		}
	}
	return false
}

// nextRangeLocked picks a free 10.x.0.0/20 for a VPC created without one.
func (s *Server) nextRangeLocked() string {
	for range 256 {
		s.st.Seq.Range++
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + s.st.Seq.Range%150), 0, 0}), 20)
		if !s.overlapsLocked(p) {
			return p.String()
		}
	}
	return "10.255.0.0/20"
}

// addVPCLocked stores a new VPC.
func (s *Server) addVPCLocked(name, region, ipRange, description string, isDefault bool) *godo.VPC {
	id := s.uuidLocked()
	v := &godo.VPC{ID: id, URN: "do:vpc:" + id, Name: name, Description: description, IPRange: ipRange,
		RegionSlug: region, CreatedAt: nowTime().Truncate(time.Second), Default: isDefault}
	s.st.VPCs[id] = v
	return v
}

// defaultVPCLocked returns the region's default VPC, creating it as
// DigitalOcean does on the first droplet there.
func (s *Server) defaultVPCLocked(region string) *godo.VPC {
	for _, v := range s.st.VPCs {
		if v.Default && v.RegionSlug == region {
			return v
		}
	}
	return s.addVPCLocked("default-"+region, region, s.nextRangeLocked(), "", true)
}

func (s *Server) listVPCs(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	all := s.sortedVPCs()
	s.mu.Unlock()
	page, links, meta, ok := doPage(w, r, all)
	if ok {
		writeJSON(w, http.StatusOK, map[string]any{"vpcs": page, "links": links, "meta": meta})
	}
}

func (s *Server) createVPC(w http.ResponseWriter, r *http.Request) {
	var req godo.VPCCreateRequest
	if err := decode(r, &req); err != nil {
		doError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !vpcNameRe.MatchString(req.Name) {
		doError(w, http.StatusUnprocessableEntity, "unprocessable_entity", fmt.Sprintf("Name %q is invalid: use letters, digits, '-' and '.'.", req.Name))
		return
	}
	if !s.validRegion(req.RegionSlug) {
		doError(w, http.StatusUnprocessableEntity, "unprocessable_entity", fmt.Sprintf("Region %q is not available.", req.RegionSlug))
		return
	}
	for _, v := range s.st.VPCs {
		if v.Name == req.Name {
			doError(w, http.StatusConflict, "conflict", fmt.Sprintf("A VPC named %q already exists.", req.Name))
			return
		}
	}
	ipRange := req.IPRange
	if ipRange == "" {
		ipRange = s.nextRangeLocked()
	} else {
		p, err := netip.ParsePrefix(ipRange)
		if err != nil || !p.Addr().Is4() || !p.Addr().IsPrivate() || p.Bits() < 16 || p.Bits() > 28 || p.Masked() != p {
			doError(w, http.StatusUnprocessableEntity, "unprocessable_entity", fmt.Sprintf("ip_range %q must be a private IPv4 network between /16 and /28.", ipRange))
			return
		}
		if s.overlapsLocked(p) {
			doError(w, http.StatusUnprocessableEntity, "unprocessable_entity", fmt.Sprintf("ip_range %q overlaps another VPC.", ipRange))
			return
		}
	}
	v := s.addVPCLocked(req.Name, req.RegionSlug, ipRange, req.Description, false)
	s.changed()
	s.log.Info("vpc created", "id", v.ID, "name", v.Name)
	writeJSON(w, http.StatusCreated, map[string]any{"vpc": v})
}

func (s *Server) getVPC(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.st.VPCs[r.PathValue("id")]
	if v == nil {
		doError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"vpc": v})
}

func (s *Server) deleteVPC(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.st.VPCs[r.PathValue("id")]
	if v == nil {
		doError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return
	}
	// DigitalOcean: "Attempting to delete a region's default VPC or a VPC
	// that still has members will result in a 403 Forbidden error."
	if v.Default {
		doError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("VPC %s is the default VPC of %s and cannot be deleted.", v.ID, v.RegionSlug))
		return
	}
	for _, d := range s.sortedDroplets(func(d *droplet) bool { return d.D.VPCUUID == v.ID }) {
		doError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("Cannot delete VPC %s: it still has members (droplet %d).", v.ID, d.ID))
		return
	}
	delete(s.st.VPCs, v.ID)
	s.changed()
	w.WriteHeader(http.StatusNoContent)
}
