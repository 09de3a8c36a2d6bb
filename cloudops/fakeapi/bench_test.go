package fakeapi

import (
	"fmt"
	"testing"

	"github.com/digitalocean/godo"
)

// BenchmarkListDroplets1000: listing a 1000-droplet account, every page at
// per_page 200, through godo.
func BenchmarkListDroplets1000(b *testing.B) {
	s, url := serveFake(b, Options{}, nil)
	s.mu.Lock()
	for i := range 1000 {
		s.st.Seq.Droplet++
		id := dropletIDBase + s.st.Seq.Droplet
		s.st.Droplets[id] = &droplet{Seq: s.st.Seq.Droplet, D: godo.Droplet{ID: id, Name: fmt.Sprintf("n%d", i), Status: "active", Tags: []string{"c1"},
			Region: &godo.Region{Slug: "nyc3"}}}
	}
	s.mu.Unlock()
	c, err := godo.New(nil, godo.SetBaseURL(url), godo.SetRequestHeaders(map[string]string{"Authorization": "Bearer " + DefaultToken}))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		n := 0
		opt := &godo.ListOptions{Page: 1, PerPage: 200}
		for {
			ds, resp, err := c.Droplets.ListByTag(b.Context(), "c1", opt)
			if err != nil {
				b.Fatal(err)
			}
			n += len(ds)
			if resp.Links.IsLastPage() {
				break
			}
			opt.Page++
		}
		if n != 1000 {
			b.Fatalf("listed %d", n)
		}
	}
	b.ReportMetric(float64(s.Requests("GET /v2/droplets"))/float64(b.N), "requests/op")
}
