package fakeapi

import (
	"maps"
	"net/http"
	"sort"

	"github.com/digitalocean/godo"
)

// State is everything the fake holds, in the providers' JSON shapes; it is
// what GET /_fake/state answers.
type State struct {
	Droplets   []StateDroplet  `json:"droplets"`
	Firewalls  []godo.Firewall `json:"firewalls"`
	VPCs       []godo.VPC      `json:"vpcs"`
	Snapshots  []godo.Snapshot `json:"snapshots"`
	DNSRecords []CFRecord      `json:"dns_records"`
	Zones      []CFZone        `json:"zones"`
	Keys       []godo.Key      `json:"keys"`
	// Requests counts the requests per route pattern ("POST /v2/droplets",
	// "GET /v2/droplets/{id}", ...), faulted ones included.
	Requests map[string]int `json:"requests"`
}

// StateDroplet is a droplet in DigitalOcean's shape plus its actions.
type StateDroplet struct {
	godo.Droplet
	Actions []ActionSummary `json:"actions"`
}

// ActionSummary is one action of a droplet.
type ActionSummary struct {
	ID     int    `json:"id"`
	Type   string `json:"type"`
	Status string `json:"status"`
}

// State returns a copy of everything the fake holds.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Firewalls: s.sortedFirewalls(), VPCs: s.sortedVPCs(), Keys: s.sortedKeys(),
		Droplets: []StateDroplet{}, Snapshots: []godo.Snapshot{}, DNSRecords: []CFRecord{}, Zones: []CFZone{},
		Requests: maps.Clone(s.requests)}
	for _, d := range s.sortedDroplets(func(*droplet) bool { return true }) {
		sd := StateDroplet{Droplet: d, Actions: []ActionSummary{}}
		for _, a := range s.actionsWhere(func(a *action) bool { return a.DropletID == d.ID }) {
			sd.Actions = append(sd.Actions, ActionSummary{ID: a.ID, Type: a.Type, Status: a.Status})
		}
		st.Droplets = append(st.Droplets, sd)
	}
	for _, im := range s.sortedImages() {
		st.Snapshots = append(st.Snapshots, snapshotOf(im))
	}
	for _, z := range s.st.Zones {
		st.Zones = append(st.Zones, *z)
		st.DNSRecords = append(st.DNSRecords, s.zoneRecords(z.ID)...)
	}
	sort.Slice(st.Zones, func(i, j int) bool { return st.Zones[i].Name < st.Zones[j].Name })
	sort.Slice(st.DNSRecords, func(i, j int) bool { return st.DNSRecords[i].ID < st.DNSRecords[j].ID })
	return st
}

// Droplets returns every droplet as a backend sees it, by id: after a
// restart from StatePath, local mode starts the active ones again.
func (s *Server) Droplets() []BackedDroplet {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []BackedDroplet
	for _, d := range s.sortedDroplets(func(*droplet) bool { return true }) {
		out = append(out, backed(s.st.Droplets[d.ID]))
	}
	return out
}

// Requests returns how many requests matched a route pattern, e.g.
// "POST /v2/droplets" or "GET /client/v4/zones/{zid}/dns_records".
func (s *Server) Requests(pattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[pattern]
}

// ResetRequests zeroes the request counts.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	clear(s.requests)
	s.mu.Unlock()
}

// wireState is State as GET /_fake/state sends it: each object in the
// provider's own JSON shape, as its API answers it (godo's structs would
// drop their empty fields). It decodes into State.
type wireState struct {
	Droplets   []wireStateDroplet `json:"droplets"`
	Firewalls  []doFirewall       `json:"firewalls"`
	VPCs       []godo.VPC         `json:"vpcs"`
	Snapshots  []doSnapshot       `json:"snapshots"`
	DNSRecords []CFRecord         `json:"dns_records"`
	Zones      []CFZone           `json:"zones"`
	Keys       []godo.Key         `json:"keys"`
	Requests   map[string]int     `json:"requests"`
}

type wireStateDroplet struct {
	doDroplet
	Actions []ActionSummary `json:"actions"`
}

func (s *Server) serveState(w http.ResponseWriter, r *http.Request) {
	st := s.State()
	out := wireState{Droplets: []wireStateDroplet{}, Firewalls: firewallsOf(st.Firewalls), VPCs: st.VPCs, Snapshots: []doSnapshot{},
		DNSRecords: st.DNSRecords, Zones: st.Zones, Keys: st.Keys, Requests: st.Requests}
	for _, d := range st.Droplets {
		out.Droplets = append(out.Droplets, wireStateDroplet{doDroplet: s.dropletOf(d.Droplet), Actions: d.Actions})
	}
	for _, sn := range st.Snapshots {
		out.Snapshots = append(out.Snapshots, snapshotJSON(sn))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteRequests(w http.ResponseWriter, r *http.Request) {
	s.ResetRequests()
	w.WriteHeader(http.StatusNoContent)
}
