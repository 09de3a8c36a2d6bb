package fakeapi

import (
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/digitalocean/godo"
)

var resNameRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,254}$`)

// uuidLocked hands out a UUID-shaped id.
func (s *Server) uuidLocked() string {
	s.st.Seq.UUID++
	return fmt.Sprintf("d809fa4e-0000-4000-8000-%012d", s.st.Seq.UUID)
}

// checkFirewall validates a firewall request as DigitalOcean would; "" if
// valid.
func (s *Server) checkFirewallLocked(req *godo.FirewallRequest) string {
	if !resNameRe.MatchString(req.Name) {
		return fmt.Sprintf("Name %q is invalid: use letters, digits, '.', '_' and '-'.", req.Name)
	}
	for _, t := range req.Tags {
		if !tagRe.MatchString(t) {
			return fmt.Sprintf("Tag %q is invalid.", t)
		}
	}
	for _, id := range req.DropletIDs {
		if s.st.Droplets[id] == nil {
			return fmt.Sprintf("Droplet %d does not exist.", id)
		}
	}
	for i, r := range req.InboundRules {
		var src godo.Sources
		if r.Sources != nil {
			src = *r.Sources
		}
		if msg := checkRule(r.Protocol, r.PortRange, src.Addresses, len(src.Tags)+len(src.DropletIDs)+len(src.LoadBalancerUIDs)+len(src.KubernetesIDs)); msg != "" {
			return fmt.Sprintf("inbound rule %d: %s", i, msg)
		}
	}
	for i, r := range req.OutboundRules {
		var dst godo.Destinations
		if r.Destinations != nil {
			dst = *r.Destinations
		}
		if msg := checkRule(r.Protocol, r.PortRange, dst.Addresses, len(dst.Tags)+len(dst.DropletIDs)+len(dst.LoadBalancerUIDs)+len(dst.KubernetesIDs)); msg != "" {
			return fmt.Sprintf("outbound rule %d: %s", i, msg)
		}
	}
	return ""
}

func checkRule(proto, ports string, addrs []string, others int) string {
	switch proto {
	case "tcp", "udp":
		if !validPorts(ports) {
			return fmt.Sprintf("ports %q are invalid: use all, a port or a range.", ports)
		}
	case "icmp":
		if ports != "" && ports != "0" {
			return "icmp rules take no ports."
		}
	default:
		return fmt.Sprintf("protocol %q is invalid: use tcp, udp or icmp.", proto)
	}
	if len(addrs)+others == 0 {
		return "a rule needs at least one address, tag, droplet, load balancer or cluster."
	}
	for _, a := range addrs {
		_, perr := netip.ParsePrefix(a)
		_, aerr := netip.ParseAddr(a)
		if perr != nil && aerr != nil {
			return fmt.Sprintf("address %q is not an IP or CIDR.", a)
		}
	}
	return ""
}

func validPorts(p string) bool {
	if p == "all" || p == "0" {
		return true
	}
	lo, hi, isRange := strings.Cut(p, "-")
	a, err1 := strconv.Atoi(lo)
	b, err2 := a, error(nil)
	if isRange {
		b, err2 = strconv.Atoi(hi)
	}
	return err1 == nil && err2 == nil && a >= 1 && b <= 65535 && a <= b
}

// applyFirewall sets fw's rules and targets to exactly req.
func applyFirewall(fw *godo.Firewall, req *godo.FirewallRequest) {
	fw.Name = req.Name
	fw.InboundRules = nonNil(req.InboundRules)
	fw.OutboundRules = nonNil(req.OutboundRules)
	fw.DropletIDs = nonNil(req.DropletIDs)
	fw.Tags = nonNil(req.Tags)
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return slices.Clone(v)
}

func (s *Server) sortedFirewalls() []godo.Firewall {
	out := make([]godo.Firewall, 0, len(s.st.Firewalls))
	for _, fw := range s.st.Firewalls {
		out = append(out, *fw)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *Server) listFirewalls(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	all := s.sortedFirewalls()
	s.mu.Unlock()
	page, links, meta, ok := doPage(w, r, all)
	if ok {
		writeJSON(w, http.StatusOK, map[string]any{"firewalls": firewallsOf(page), "links": links, "meta": meta})
	}
}

func (s *Server) createFirewall(w http.ResponseWriter, r *http.Request) {
	var req godo.FirewallRequest
	if err := decode(r, &req); err != nil {
		doError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if msg := s.checkFirewallLocked(&req); msg != "" {
		doError(w, http.StatusUnprocessableEntity, "unprocessable_entity", msg)
		return
	}
	fw := &godo.Firewall{ID: s.uuidLocked(), Status: "succeeded", Created: nowDO(), PendingChanges: []godo.PendingChange{}}
	applyFirewall(fw, &req)
	s.st.Firewalls[fw.ID] = fw
	s.changed()
	s.log.Info("firewall created", "id", fw.ID, "name", fw.Name)
	writeJSON(w, http.StatusAccepted, map[string]any{"firewall": firewallOf(*fw)})
}

// firewallLocked finds the firewall named by path value "id", answering 404
// itself when there is none.
func (s *Server) firewallLocked(w http.ResponseWriter, r *http.Request) *godo.Firewall {
	fw := s.st.Firewalls[r.PathValue("id")]
	if fw == nil {
		doError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
	}
	return fw
}

func (s *Server) getFirewall(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fw := s.firewallLocked(w, r); fw != nil {
		writeJSON(w, http.StatusOK, map[string]any{"firewall": firewallOf(*fw)})
	}
}

func (s *Server) updateFirewall(w http.ResponseWriter, r *http.Request) {
	var req godo.FirewallRequest
	if err := decode(r, &req); err != nil {
		doError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fw := s.firewallLocked(w, r)
	if fw == nil {
		return
	}
	if msg := s.checkFirewallLocked(&req); msg != "" {
		doError(w, http.StatusUnprocessableEntity, "unprocessable_entity", msg)
		return
	}
	applyFirewall(fw, &req)
	s.changed()
	s.log.Info("firewall updated", "id", fw.ID, "name", fw.Name)
	writeJSON(w, http.StatusOK, map[string]any{"firewall": firewallOf(*fw)})
}

func (s *Server) deleteFirewall(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fw := s.firewallLocked(w, r)
	if fw == nil {
		return
	}
	delete(s.st.Firewalls, fw.ID)
	s.changed()
	s.log.Info("firewall deleted", "id", fw.ID, "name", fw.Name)
	w.WriteHeader(http.StatusNoContent)
}
