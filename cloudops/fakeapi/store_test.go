package fakeapi

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/digitalocean/godo"
)

// serve runs s on 127.0.0.1 until the test ends.
func serve(t *testing.T, s *Server) string {
	hs := httptest.NewServer(contract.Wrap(s))
	t.Cleanup(hs.Close)
	return hs.URL
}

func TestStateSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloud.json")
	rec := &recorder{}
	s1, err := New(Options{StatePath: path, Zones: []string{"example.test"}, Backend: rec})
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, s1)
	c := doClient(t, url, DefaultToken)
	d := createDroplet(t, c, "node-1")
	if _, _, err := c.Firewalls.Create(ctx(t), &godo.FirewallRequest{Name: "fw", Tags: []string{"c1"},
		InboundRules:  []godo.InboundRule{{Protocol: "tcp", PortRange: "80", Sources: &godo.Sources{Addresses: []string{"0.0.0.0/0"}}}},
		OutboundRules: []godo.OutboundRule{{Protocol: "icmp", Destinations: &godo.Destinations{Addresses: []string{"0.0.0.0/0"}}}}}); err != nil {
		t.Fatal(err)
	}
	cf := cfClient(url, DefaultToken)
	zs, err := cf.Zones.List(ctx(t), zonesParams("example.test"))
	if err != nil || len(zs.Result) != 1 {
		t.Fatalf("zones: %v", err)
	}
	if _, err := cf.DNS.Records.New(ctx(t), dns.RecordNewParams{ZoneID: cloudflare.F(zs.Result[0].ID),
		Body: dns.ARecordParam{Name: cloudflare.F("web"), Type: cloudflare.F(dns.ARecordTypeA), Content: cloudflare.F("192.0.2.1"), TTL: cloudflare.F(dns.TTL(60))}}); err != nil {
		t.Fatal(err)
	}
	// An action still in progress when the fake stops is completed on load.
	s1.mu.Lock()
	s1.opts.ActionDelay = time.Hour
	s1.mu.Unlock()
	a, _, err := c.DropletActions.PowerOff(ctx(t), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	before := s1.State()
	s1.WaitIdle()
	startsBefore := len(rec.Calls())
	s1.Close()

	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "secret: x") {
		t.Fatal("the state file lost the droplet's user data")
	}

	s2, err := New(Options{StatePath: path, Zones: []string{"example.test", "new.test"}, Backend: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	after := s2.State()
	if len(after.Droplets) != 1 || after.Droplets[0].ID != d.ID || after.Droplets[0].Name != "node-1" {
		t.Fatalf("droplets after restart: %+v", after.Droplets)
	}
	if after.Droplets[0].Status != "off" {
		t.Fatalf("the pending power_off did not complete on load: %q", after.Droplets[0].Status)
	}
	if len(after.Firewalls) != 1 || after.Firewalls[0].ID != before.Firewalls[0].ID || len(after.DNSRecords) != 1 || after.DNSRecords[0].ID != before.DNSRecords[0].ID {
		t.Fatalf("firewalls/records after restart: %+v / %+v", after.Firewalls, after.DNSRecords)
	}
	if len(after.Zones) != 2 || after.Zones[0].ID != before.Zones[0].ID {
		t.Fatalf("zones after restart: %+v (before %+v)", after.Zones, before.Zones)
	}
	if got := rec.Calls(); len(got) != startsBefore {
		t.Fatalf("loading started droplets: %v", got[startsBefore:])
	}
	bd := s2.Droplets()
	if len(bd) != 1 || bd[0].ID != d.ID || bd[0].UserData == "" || bd[0].PublicIP != "127.0.0.2" {
		t.Fatalf("Droplets(): %+v", bd)
	}
	// Counters continue: the next droplet gets a new id and address.
	url2 := serve(t, s2)
	c2 := doClient(t, url2, DefaultToken)
	d2 := createDroplet(t, c2, "node-2")
	if d2.ID <= d.ID {
		t.Fatalf("new droplet id %d not after %d", d2.ID, d.ID)
	}
	if ip, _ := d2.PublicIPv4(); ip != "127.0.0.3" {
		t.Fatalf("new droplet address %s", ip)
	}
	got, _, err := c2.Actions.Get(ctx(t), a.ID)
	if err != nil || got.Status != "completed" {
		t.Fatalf("action after restart: %+v %v", got, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}

func TestCorruptStateIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloud.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{StatePath: path}); err == nil {
		t.Fatal("a corrupt state file loaded")
	}
	if err := os.WriteFile(path, []byte(`{"version": 99}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{StatePath: path}); err == nil || !strings.Contains(err.Error(), "version") {
		t.Fatalf("a future state file: %v", err)
	}
}
