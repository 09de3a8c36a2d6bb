package fakeapi

import (
	"encoding/json"
	"testing"
	"time"
)

func TestAuthentication(t *testing.T) {
	_, url := start(t, Options{Token: "do-secret", CFToken: "cf-secret", Zones: []string{"example.test"}})
	for _, tc := range []struct {
		path, token string
		status      int
	}{
		{"/v2/droplets", "", 401}, {"/v2/droplets", "cf-secret", 401}, {"/v2/droplets", "do-secret", 200},
		{"/client/v4/zones", "do-secret", 401}, {"/client/v4/zones", "cf-secret", 200},
		{"/_fake/state", "", 200},
	} {
		if r := get(t, url+tc.path, tc.token); r.StatusCode != tc.status {
			t.Errorf("%s with %q: %d, want %d", tc.path, tc.token, r.StatusCode, tc.status)
		}
	}
	var do struct{ ID, Message string }
	if err := json.NewDecoder(get(t, url+"/v2/droplets", "x").Body).Decode(&do); err != nil || do.ID != "unauthorized" || do.Message == "" {
		t.Fatalf("DigitalOcean 401 body: %+v %v", do, err)
	}
	var cf struct {
		Success bool
		Errors  []struct {
			Code    int
			Message string
		}
	}
	if err := json.NewDecoder(get(t, url+"/client/v4/zones", "x").Body).Decode(&cf); err != nil || cf.Success || len(cf.Errors) != 1 || cf.Errors[0].Code != 10000 {
		t.Fatalf("Cloudflare 401 body: %+v %v", cf, err)
	}
}

func TestUnknownRoutes(t *testing.T) {
	_, url := start(t, Options{})
	if r := get(t, url+"/v2/kubernetes/clusters", DefaultToken); r.StatusCode != 404 {
		t.Fatalf("unknown DO route: %d", r.StatusCode)
	}
	if r := get(t, url+"/client/v4/accounts", DefaultToken); r.StatusCode != 404 {
		t.Fatalf("unknown CF route: %d", r.StatusCode)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	if _, err := New(Options{Zones: []string{"not a zone"}}); err == nil {
		t.Fatal("bad zone accepted")
	}
	if _, err := New(Options{ActionDelay: -time.Second}); err == nil {
		t.Fatal("negative delay accepted")
	}
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
