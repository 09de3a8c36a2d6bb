package fakeapi

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// An absurd page number is a 400 in the provider's own error shape, never
// a panic; an absurd per_page is capped as the providers do.
func TestAbsurdPagesAreRefused(t *testing.T) {
	s, url := start(t, Options{Zones: []string{"example.test"}})
	c := doClient(t, url, DefaultToken)
	createDroplet(t, c, "a")
	zid := s.State().Zones[0].ID
	lists := []struct {
		path       string
		cloudflare bool
	}{
		{"/v2/droplets", false}, {"/v2/actions", false}, {"/v2/snapshots", false}, {"/v2/firewalls", false},
		{"/client/v4/zones", true}, {"/client/v4/zones/" + zid + "/dns_records", true},
	}
	for _, l := range lists {
		for _, q := range []string{"page=9000000000000000000", "page=1000001", "page=1e18", "page=NaN", "page=Inf", "page=-1", "page=1.5", "per_page=0"} {
			r := get(t, url+l.path+"?"+q, DefaultToken)
			var body struct {
				ID      string `json:"id"`
				Message string `json:"message"`
				Success *bool  `json:"success"`
				Errors  []struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"errors"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				t.Fatalf("%s?%s: %d, body not JSON: %v", l.path, q, r.StatusCode, err)
			}
			if r.StatusCode != 400 {
				t.Fatalf("%s?%s: %d, want 400", l.path, q, r.StatusCode)
			}
			if l.cloudflare {
				if body.Success == nil || *body.Success || len(body.Errors) != 1 || body.Errors[0].Code != 1001 || !strings.Contains(body.Errors[0].Message, "page") {
					t.Fatalf("%s?%s: not Cloudflare's error shape: %+v", l.path, q, body)
				}
			} else if body.ID != "bad_request" || !strings.Contains(body.Message, "page") {
				t.Fatalf("%s?%s: not DigitalOcean's error shape: %+v", l.path, q, body)
			}
		}
		if r := get(t, url+l.path+"?page=1000000&per_page=9000000000000000000", DefaultToken); r.StatusCode != 200 {
			t.Fatalf("%s: the last allowed page with a huge per_page: %d, want 200 (empty)", l.path, r.StatusCode)
		}
	}
}

func TestWindowNeverOverflows(t *testing.T) {
	for _, tc := range []struct{ page, per, total, lo, hi int }{
		{1, 20, 5, 0, 5}, {2, 2, 5, 2, 4}, {3, 2, 5, 4, 5}, {4, 2, 5, 5, 5}, {1, 20, 0, 0, 0},
		{math.MaxInt, 200, 5, 5, 5}, {maxPage, math.MaxInt32, 5, 5, 5}, {2, math.MaxInt, 5, 5, 5},
	} {
		if lo, hi := window(tc.page, tc.per, tc.total); lo != tc.lo || hi != tc.hi {
			t.Errorf("window(%d, %d, %d) = %d, %d; want %d, %d", tc.page, tc.per, tc.total, lo, hi, tc.lo, tc.hi)
		}
	}
}
