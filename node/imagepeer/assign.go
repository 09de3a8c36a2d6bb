package imagepeer

import (
	"slices"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Assignments are the builder choices the leader should commit: for every
// build (a context and Dockerfile, named by refOf) that an instance's
// desired generation needs and that has no image id yet, one node builds
// it. The builder is one of the active nodes that will run it, the one
// with the fewest instances (the state knows no free memory or disk, so
// that is its room), and it stays the builder while it is active and still
// runs it. Pure: the
// caller stamps the commands with the time.
func Assignments(s *raftfsm.State, refOf func(raftfsm.ServiceSpec) string) []raftfsm.PutImage {
	load := map[string]int{}
	runners := map[string][]string{}
	for _, in := range s.Instances {
		if in.DesiredGeneration == 0 {
			continue
		}
		load[in.Node]++
		svc, ok := s.Services[in.Service]
		if !ok {
			continue
		}
		spec, ok := svc.Revision(in.DesiredGeneration)
		if !ok || spec.Build == "" {
			continue
		}
		ref := refOf(spec)
		if img, ok := s.Images[ref]; ok && img.ID != "" {
			continue
		}
		if !slices.Contains(runners[ref], in.Node) {
			runners[ref] = append(runners[ref], in.Node)
		}
	}
	active := func(id string) bool {
		n, ok := s.Nodes[id]
		return ok && n.Status == raftfsm.NodeActive
	}
	var out []raftfsm.PutImage
	refs := make([]string, 0, len(runners))
	for ref := range runners {
		refs = append(refs, ref)
	}
	slices.Sort(refs)
	for _, ref := range refs {
		if img, ok := s.Images[ref]; ok && img.Builder != "" && active(img.Builder) && slices.Contains(runners[ref], img.Builder) {
			continue
		}
		best := ""
		for _, n := range runners[ref] {
			if !active(n) {
				continue
			}
			if best == "" || load[n] < load[best] || (load[n] == load[best] && n < best) {
				best = n
			}
		}
		if best != "" {
			out = append(out, raftfsm.PutImage{Ref: ref, Builder: best})
		}
	}
	return out
}

// Allowed says whether the state references image ref (a reference as a
// spec names it, a build's reference, or an image id): what a node may
// serve to its peers. canon puts references in one form (Docker's full
// name with tag); refOf names a build.
func Allowed(s *raftfsm.State, ref string, canon func(string) string, refOf func(raftfsm.ServiceSpec) string) bool {
	if ValidDigest(ref) == nil {
		for _, img := range s.Images {
			if img.ID == ref {
				return true
			}
		}
		for _, in := range s.Instances {
			if in.ImageDigest == ref {
				return true
			}
		}
		return false
	}
	want := canon(ref)
	if want == "" {
		return false
	}
	for _, svc := range s.Services {
		for _, rev := range svc.Revisions {
			if rev.Spec.Build != "" && refOf(rev.Spec) == ref {
				return true
			}
			if rev.Spec.Image != "" && canon(rev.Spec.Image) == want {
				return true
			}
		}
		if svc.Spec.Image != "" && canon(svc.Spec.Image) == want {
			return true
		}
	}
	return false
}

// StaleBuilds are the tags of built images (created by this node, tag
// "dropmesh-build/...") that no kept revision of any service names and
// that are older than grace: housekeeping removes them. Kept revisions
// are what a rollback may return to, so their images stay.
func StaleBuilds(s *raftfsm.State, built map[string]time.Time, refOf func(raftfsm.ServiceSpec) string, now time.Time, grace time.Duration) []string {
	used := map[string]bool{}
	for _, svc := range s.Services {
		for _, rev := range svc.Revisions {
			if rev.Spec.Build != "" {
				used[refOf(rev.Spec)] = true
			}
		}
		if svc.Spec.Build != "" {
			used[refOf(svc.Spec)] = true
		}
	}
	var out []string
	for tag, created := range built {
		if !used[tag] && now.Sub(created) > grace {
			out = append(out, tag)
		}
	}
	slices.Sort(out)
	return out
}
