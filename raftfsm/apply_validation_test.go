package raftfsm

import (
	"errors"
	"testing"
)

// What a library parses (the image reference, the cron schedule) is
// checked at the endpoint (ServiceSpec.Validate, which the controller runs
// before it commits), not in Apply: replicas with different library
// versions cannot then diverge over the same entry. Apply still refuses
// what breaks the spec's shape, the same way on every release.
func TestLibraryValidationIsTheEndpointsNotApplys(t *testing.T) {
	f := newFixture(t)
	place := []Assignment{{Slot: 0, Node: "node-1"}, {Slot: 1, Node: "node-2"}}

	upper := webSpec()
	upper.Image = "Shop/Web:1" // distribution/reference: repository names are lower case
	if err := upper.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate(%q) = %v, want the endpoint's ErrInvalid", upper.Image, err)
	}
	f.must(&DeployService{At: t0, DeployID: "d1", WorkspaceID: testWS, Spec: upper, Placement: place})

	cronSpec := webSpec()
	cronSpec.Service, cronSpec.Kind, cronSpec.Port, cronSpec.Hosts, cronSpec.Schedule = "job", KindCron, 0, nil, "61 * * * *"
	cronSpec.Replicas = 1
	if err := cronSpec.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate(schedule %q) = %v, want the endpoint's ErrInvalid", cronSpec.Schedule, err)
	}
	f.must(&DeployService{At: t0, DeployID: "d2", WorkspaceID: testWS, Spec: cronSpec, Placement: place[:1]})

	// The shape is still Apply's: no image, a character no reference has,
	// a cron service without a schedule.
	for _, mut := range []func(s *ServiceSpec){
		func(s *ServiceSpec) { s.Image = "" },
		func(s *ServiceSpec) { s.Image = "web;rm -rf:1" },
		func(s *ServiceSpec) { s.Kind, s.Port, s.Hosts, s.Schedule = KindCron, 0, nil, "" },
	} {
		spec := webSpec()
		spec.Service = "shape"
		mut(&spec)
		f.refuse(&DeployService{At: t0, DeployID: "d3", WorkspaceID: testWS, Spec: spec, Placement: place})
	}
}
