package fakeapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/digitalocean/godo"
)

// The probes of issue 21: what DigitalOcean's and Cloudflare's clients
// depend on beyond the schemas (which the contract check covers).

// rawJSON GETs path and decodes the answer into a generic value.
func rawJSON(t *testing.T, url, path string) (map[string]any, http.Header) {
	t.Helper()
	r := get(t, url+path, DefaultToken)
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.StatusCode, b)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return v, r.Header
}

func TestDropletAnswersInDigitalOceansShape(t *testing.T) {
	_, url := start(t, Options{})
	c := doClient(t, url, DefaultToken)
	req := createReq("node-1")
	req.Size = "s-2vcpu-4gb"
	d, _, err := c.Droplets.Create(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := rawJSON(t, url, "/v2/droplets/"+strconv.Itoa(d.ID))
	dr := v["droplet"].(map[string]any)
	// Fields godo would leave out when empty are always there.
	for k, want := range map[string]string{"locked": "false", "backup_ids": "[]", "snapshot_ids": "[]",
		"next_backup_window": "null", "tags": `["c1"]`, "volume_ids": "[]", "size_slug": `"s-2vcpu-4gb"`} {
		got, ok := dr[k]
		b, _ := json.Marshal(got)
		if !ok || string(b) != want {
			t.Errorf("droplet.%s = %s (present %v), want %s", k, b, ok, want)
		}
	}
	// memory, vcpus and disk follow the size, and the size is the full
	// object DigitalOcean sends.
	size := dr["size"].(map[string]any)
	if dr["memory"] != 4096.0 || dr["vcpus"] != 2.0 || dr["disk"] != 80.0 || size["memory"] != 4096.0 || size["vcpus"] != 2.0 || size["disk"] != 80.0 {
		t.Errorf("memory/vcpus/disk %v/%v/%v, size %v", dr["memory"], dr["vcpus"], dr["disk"], size)
	}
	for _, k := range []string{"transfer", "price_monthly", "price_hourly", "regions", "description", "available"} {
		if _, ok := size[k]; !ok {
			t.Errorf("size lacks %s: %v", k, size)
		}
	}
	region := dr["region"].(map[string]any)
	if rs, _ := region["sizes"].([]any); !slices.Contains(rs, any("s-2vcpu-4gb")) || len(region["features"].([]any)) == 0 || region["name"] != "New York 3" {
		t.Errorf("region %v", region)
	}
	if img := dr["image"].(map[string]any); img["distribution"] != "Debian" || img["slug"] != "debian-12-x64" || img["type"] != "base" {
		t.Errorf("image %v", img)
	}
	// godo reads the same.
	got, _, err := c.Droplets.Get(ctx(t), d.ID)
	if err != nil || got.Memory != 4096 || got.Size == nil || got.Size.PriceMonthly != 24 || got.Region == nil || len(got.Region.Sizes) == 0 {
		t.Fatalf("godo: %+v %v", got, err)
	}
}

func TestActionsCarryTheirRegionAndSnapshotsTheirTags(t *testing.T) {
	s, url := start(t, Options{})
	c := doClient(t, url, DefaultToken)
	d := createDroplet(t, c, "node-1")
	a, _, err := c.DropletActions.Snapshot(ctx(t), d.ID, "base-1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Region == nil || a.Region.Slug != "nyc3" || a.Region.Name != "New York 3" || len(a.Region.Sizes) == 0 || len(a.Region.Features) == 0 || a.RegionSlug != "nyc3" {
		t.Fatalf("action region %+v %q", a.Region, a.RegionSlug)
	}
	waitFor(t, 5*time.Second, "the snapshot", func() bool { return len(s.State().Snapshots) == 1 })
	v, _ := rawJSON(t, url, "/v2/snapshots?resource_type=droplet")
	sn := v["snapshots"].([]any)[0].(map[string]any)
	if b, _ := json.Marshal(sn["tags"]); string(b) != "[]" {
		t.Fatalf("snapshot tags %s, want []", b)
	}
	v, _ = rawJSON(t, url, "/v2/actions/"+strconv.Itoa(a.ID))
	if r := v["action"].(map[string]any)["region"].(map[string]any); r["sizes"] == nil || r["features"] == nil {
		t.Fatalf("GET action region %v", r)
	}
}

func TestImagesByType(t *testing.T) {
	s, url := start(t, Options{})
	c := doClient(t, url, DefaultToken)
	d := createDroplet(t, c, "node-1")
	if _, _, err := c.DropletActions.Snapshot(ctx(t), d.ID, "base-1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the snapshot", func() bool { return len(s.State().Snapshots) == 1 })
	dists, _, err := c.Images.ListDistribution(ctx(t), &godo.ListOptions{PerPage: 200})
	if err != nil || len(dists) != len(distributions) {
		t.Fatalf("distributions: %d %v", len(dists), err)
	}
	for _, im := range dists {
		if im.Type == "snapshot" || !im.Public || im.Slug == "" {
			t.Fatalf("a distribution listing holds %+v", im)
		}
	}
	mine, _, err := c.Images.ListUser(ctx(t), nil)
	if err != nil || len(mine) != 1 || mine[0].Name != "base-1" || mine[0].Type != "snapshot" {
		t.Fatalf("private images: %+v %v", mine, err)
	}
	all, _, err := c.Images.List(ctx(t), &godo.ListOptions{PerPage: 200})
	if err != nil || len(all) != len(distributions)+1 {
		t.Fatalf("all images: %d %v", len(all), err)
	}
	if im, _, err := c.Images.GetBySlug(ctx(t), "ubuntu-24-04-x64"); err != nil || im.Distribution != "Ubuntu" {
		t.Fatalf("by slug: %+v %v", im, err)
	}
}

func TestRateLimitHeadersOnEveryAnswer(t *testing.T) {
	s, url := start(t, Options{})
	c := doClient(t, url, DefaultToken)
	_, resp, err := c.Droplets.List(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	first := resp.Rate
	if first.Limit != DefaultRateLimit || first.Remaining != DefaultRateLimit-1 || !first.Reset.After(time.Now()) || first.Reset.After(time.Now().Add(time.Hour+time.Minute)) {
		t.Fatalf("godo's Response.Rate %+v", first)
	}
	_, resp, err = c.Regions.List(ctx(t), nil)
	if err != nil || resp.Rate.Remaining != first.Remaining-1 || !resp.Rate.Reset.Equal(first.Reset) {
		t.Fatalf("second answer's rate %+v %v", resp.Rate, err)
	}
	// Errors carry them too: a 404, a 401, a 422.
	for _, path := range []string{"/v2/droplets/1", "/v2/nothing"} {
		r := get(t, url+path, DefaultToken)
		if r.Header.Get("Ratelimit-Limit") == "" || r.Header.Get("Ratelimit-Remaining") == "" || r.Header.Get("Ratelimit-Reset") == "" {
			t.Errorf("%s: %d without rate headers: %v", path, r.StatusCode, r.Header)
		}
	}
	if r := get(t, url+"/v2/droplets", "wrong"); r.StatusCode != 401 || r.Header.Get("Ratelimit-Remaining") == "" {
		t.Errorf("401 without rate headers: %v", r.Header)
	}
	// A 429 says nothing is left and when that changes.
	if err := s.InjectFault(Fault{Method: "GET", PathPrefix: "/v2/droplets", Status: 429, Times: 1}); err != nil {
		t.Fatal(err)
	}
	r := get(t, url+"/v2/droplets", DefaultToken)
	reset, _ := strconv.ParseInt(r.Header.Get("Ratelimit-Reset"), 10, 64)
	if r.StatusCode != 429 || r.Header.Get("Ratelimit-Remaining") != "0" || reset <= time.Now().Unix() || reset > time.Now().Add(3*time.Second).Unix() {
		t.Fatalf("429: %d remaining %q reset %q", r.StatusCode, r.Header.Get("Ratelimit-Remaining"), r.Header.Get("Ratelimit-Reset"))
	}
	if r.Header.Get("Retry-After") != "" {
		t.Fatalf("DigitalOcean's 429 sends no Retry-After, got %q", r.Header.Get("Retry-After"))
	}
	// Cloudflare paths carry no DigitalOcean headers.
	if r := get(t, url+"/client/v4/zones", DefaultToken); r.Header.Get("Ratelimit-Limit") != "" {
		t.Fatalf("cloudflare answer with DigitalOcean rate headers")
	}
}

func TestEnforcedRateLimit(t *testing.T) {
	_, url := start(t, Options{RateLimit: 2})
	c := doClient(t, url, DefaultToken)
	for range 2 {
		if _, _, err := c.Droplets.List(ctx(t), nil); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := c.Droplets.List(ctx(t), nil)
	var e *godo.ErrorResponse
	if doStatus(err) != 429 || !errors.As(err, &e) || e.Response.Header.Get("Ratelimit-Remaining") != "0" || e.Response.Header.Get("Ratelimit-Limit") != "2" {
		t.Fatalf("past the budget: %v", err)
	}
	if _, _, err := c.Droplets.Create(ctx(t), createReq("node-1")); doStatus(err) != 429 {
		t.Fatalf("a create past the budget: %v", err)
	}
}

func TestAccountRegionsSizesTags(t *testing.T) {
	_, url := start(t, Options{})
	c := doClient(t, url, DefaultToken)
	acct, _, err := c.Account.Get(ctx(t))
	if err != nil || acct.UUID == "" || acct.Status != "active" || acct.DropletLimit == 0 {
		t.Fatalf("account %+v %v", acct, err)
	}
	regions, _, err := c.Regions.List(ctx(t), &godo.ListOptions{PerPage: 200})
	if err != nil || len(regions) != len(DefaultRegions()) {
		t.Fatalf("regions %d %v", len(regions), err)
	}
	sz, _, err := c.Sizes.List(ctx(t), &godo.ListOptions{PerPage: 200})
	if err != nil || len(sz) != len(sizes) {
		t.Fatalf("sizes %d %v", len(sz), err)
	}
	for _, s := range sz {
		if s.Memory == 0 || s.Vcpus == 0 || s.Disk == 0 || s.PriceMonthly == 0 || len(s.Regions) == 0 {
			t.Fatalf("size %+v", s)
		}
	}
	createDroplet(t, c, "node-1")
	tags, _, err := c.Tags.List(ctx(t), nil)
	if err != nil || len(tags) != 1 || tags[0].Name != "c1" || tags[0].Resources.Count != 1 || tags[0].Resources.Droplets.Count != 1 {
		t.Fatalf("tags %+v %v", tags, err)
	}
	tag, _, err := c.Tags.Get(ctx(t), "c1")
	if err != nil || tag.Resources.Droplets.Count != 1 {
		t.Fatalf("tag c1: %+v %v", tag, err)
	}
	if _, _, err := c.Tags.Get(ctx(t), "nope"); doStatus(err) != 404 {
		t.Fatalf("unknown tag: %v", err)
	}
}

func TestFirewallPortsAsDigitalOceanAnswers(t *testing.T) {
	_, url := start(t, Options{})
	c := doClient(t, url, DefaultToken)
	req := &godo.FirewallRequest{Name: "fw", Tags: []string{"c1"},
		InboundRules: []godo.InboundRule{
			{Protocol: "tcp", PortRange: "all", Sources: &godo.Sources{Tags: []string{"c1"}}},
			{Protocol: "udp", PortRange: "0", Sources: &godo.Sources{Tags: []string{"c1"}}},
			{Protocol: "tcp", PortRange: "8000-8100", Sources: &godo.Sources{Addresses: []string{"0.0.0.0/0"}}},
		},
		OutboundRules: []godo.OutboundRule{{Protocol: "icmp", Destinations: &godo.Destinations{Addresses: []string{"0.0.0.0/0"}}}}}
	fw, _, err := c.Firewalls.Create(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range fw.InboundRules {
		got = append(got, r.Protocol+":"+r.PortRange)
	}
	for _, r := range fw.OutboundRules {
		got = append(got, r.Protocol+":"+r.PortRange)
	}
	if want := []string{"tcp:0", "udp:0", "tcp:8000-8100", "icmp:0"}; !slices.Equal(got, want) {
		t.Fatalf("ports %v, want %v", got, want)
	}
}

func TestCloudflareListFilters(t *testing.T) {
	_, url := start(t, Options{Zones: []string{"example.test"}})
	cf := cfClient(url, DefaultToken)
	zid := zoneID(t, cf, "example.test")
	for i, n := range []string{"www", "www2", "api", "api-internal"} {
		if _, err := cf.DNS.Records.New(ctx(t), dns.RecordNewParams{ZoneID: cloudflare.F(zid), Body: aRecord(n, "192.0.2."+strconv.Itoa(i+1), false)}); err != nil {
			t.Fatal(err)
		}
	}
	names := func(p dns.RecordListParamsName) []string {
		t.Helper()
		page, err := cf.DNS.Records.List(ctx(t), dns.RecordListParams{ZoneID: cloudflare.F(zid), Name: cloudflare.F(p)})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range page.Result {
			out = append(out, r.Name)
		}
		slices.Sort(out)
		return out
	}
	for what, c := range map[string]struct {
		p    dns.RecordListParamsName
		want []string
	}{
		"exact":      {dns.RecordListParamsName{Exact: cloudflare.F("WWW.example.test")}, []string{"www.example.test"}},
		"contains":   {dns.RecordListParamsName{Contains: cloudflare.F("api")}, []string{"api-internal.example.test", "api.example.test"}},
		"startswith": {dns.RecordListParamsName{Startswith: cloudflare.F("www")}, []string{"www.example.test", "www2.example.test"}},
		"endswith":   {dns.RecordListParamsName{Endswith: cloudflare.F("internal.example.test")}, []string{"api-internal.example.test"}},
		"nothing":    {dns.RecordListParamsName{Contains: cloudflare.F("mail")}, nil},
	} {
		if got := names(c.p); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", what, got, c.want)
		}
	}
	// match=any ORs the conditions.
	page, err := cf.DNS.Records.List(ctx(t), dns.RecordListParams{ZoneID: cloudflare.F(zid), Match: cloudflare.F(dns.RecordListParamsMatchAny),
		Name:    cloudflare.F(dns.RecordListParamsName{Exact: cloudflare.F("www.example.test")}),
		Content: cloudflare.F(dns.RecordListParamsContent{Exact: cloudflare.F("192.0.2.3")})})
	if err != nil || len(page.Result) != 2 {
		t.Fatalf("match any: %+v %v", page, err)
	}
	// A filter the fake does not know is refused, never ignored into
	// "every record".
	for _, q := range []string{"search=www", "tag=x", "comment.contains=a", "name.like=w"} {
		r := get(t, url+"/client/v4/zones/"+zid+"/dns_records?"+q, DefaultToken)
		if r.StatusCode != 400 {
			t.Errorf("%s: %d, want 400", q, r.StatusCode)
		}
	}
}

func TestCloudflareOtherRecordTypes(t *testing.T) {
	s, url := start(t, Options{Zones: []string{"example.test"}})
	cf := cfClient(url, DefaultToken)
	zid := zoneID(t, cf, "example.test")
	bodies := map[string]dns.RecordNewParamsBodyUnion{
		"MX": dns.MXRecordParam{Name: cloudflare.F("@"), Type: cloudflare.F(dns.MXRecordTypeMX), Content: cloudflare.F("mail.example.test"),
			Priority: cloudflare.F(10.0), TTL: cloudflare.F(dns.TTL(3600))},
		"TXT": dns.TXTRecordParam{Name: cloudflare.F("_acme-challenge"), Type: cloudflare.F(dns.TXTRecordTypeTXT), Content: cloudflare.F(`"v=spf1 -all"`), TTL: cloudflare.F(dns.TTL(1))},
		"CNAME": dns.CNAMERecordParam{Name: cloudflare.F("docs"), Type: cloudflare.F(dns.CNAMERecordTypeCNAME), Content: cloudflare.F("www.example.test"),
			Proxied: cloudflare.F(true), TTL: cloudflare.F(dns.TTL(1))},
		"AAAA": dns.AAAARecordParam{Name: cloudflare.F("v6"), Type: cloudflare.F(dns.AAAARecordTypeAAAA), Content: cloudflare.F("2001:db8::1"), TTL: cloudflare.F(dns.TTL(300))},
	}
	for typ, body := range bodies {
		rec, err := cf.DNS.Records.New(ctx(t), dns.RecordNewParams{ZoneID: cloudflare.F(zid), Body: body})
		if err != nil || string(rec.Type) != typ {
			t.Errorf("%s: %+v %v", typ, rec, err)
		}
	}
	for _, r := range s.State().DNSRecords {
		if r.Type == "MX" && (r.Priority == nil || *r.Priority != 10 || r.Proxiable) {
			t.Errorf("MX record %+v", r)
		}
	}
	// An MX without a priority is refused, as Cloudflare refuses it.
	if _, err := cf.DNS.Records.New(ctx(t), dns.RecordNewParams{ZoneID: cloudflare.F(zid), Body: dns.MXRecordParam{Name: cloudflare.F("x"),
		Type: cloudflare.F(dns.MXRecordTypeMX), Content: cloudflare.F("mail.example.test"), TTL: cloudflare.F(dns.TTL(1))}}); err == nil {
		t.Error("an MX record without a priority was accepted")
	}
	if n := len(s.State().DNSRecords); n != len(bodies) {
		t.Fatalf("%d records, want %d", n, len(bodies))
	}
}

func TestFaultAnswersInTheProvidersShape(t *testing.T) {
	s, url := start(t, Options{})
	if err := s.InjectFault(Fault{Status: 503, Times: 2}); err != nil {
		t.Fatal(err)
	}
	r := get(t, url+"/v2/droplets", DefaultToken)
	var do struct {
		ID        string `json:"id"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&do); err != nil || r.StatusCode != 503 || do.ID != "server_error" || do.Message == "" || do.RequestID == "" {
		t.Fatalf("DigitalOcean 503: %d %+v %v", r.StatusCode, do, err)
	}
	if r.Header.Get("Ratelimit-Remaining") == "" {
		t.Fatal("a DigitalOcean 503 without rate headers")
	}
	r = get(t, url+"/client/v4/zones", DefaultToken)
	var cf struct {
		Success bool
		Result  *struct{}
		Errors  []struct {
			Code    int
			Message string
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&cf); err != nil || r.StatusCode != 503 || cf.Success || cf.Result != nil || len(cf.Errors) != 1 || cf.Errors[0].Code < 1000 {
		t.Fatalf("Cloudflare 503: %d %+v %v", r.StatusCode, cf, err)
	}
}
