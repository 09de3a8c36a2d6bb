package edge

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// goldenCert is a fixed self-signed certificate for example.test (test
// only), so the certificate file names in the golden output are stable.
func goldenCert(t testing.TB) Cert {
	t.Helper()
	crt, err := os.ReadFile("testdata/example.test.crt")
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile("testdata/example.test.key")
	if err != nil {
		t.Fatal(err)
	}
	return Cert{Zone: "example.test", CertPEM: crt, KeyPEM: key}
}

// goldenFull has every feature: routes with one and two upstreams, a
// wildcard, hosts in and out of a certificate's zone, the UI host.
func goldenFull(t testing.TB) Config {
	return Config{
		Routes: []Route{
			{Host: "shop.example.test", Service: "9fe5e6/shop/prod/web", Upstreams: []string{"10.0.0.5:32768", "10.0.0.6:32768"}},
			{Host: "*.tenants.example.test", Service: "9fe5e6/shop/prod/tenants", Upstreams: []string{"10.0.0.5:32770"}},
			{Host: "api.other.test", Service: "demo/api/staging/gateway", Upstreams: []string{"[fd00::5]:8080"}},
		},
		UIHost:     "mesh.example.test",
		UIUpstream: "127.0.0.2:8080",
		Certs:      []Cert{goldenCert(t)},
	}
}

func goldenOptions(tls bool) NginxOptions {
	o := NginxOptions{Dir: "/var/lib/dropmesh/nginx", Listen: "127.0.0.2:80"}
	if tls {
		o.ListenTLS = "127.0.0.2:443"
	}
	return o
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the rendered output (run with -update if the change is intended):\n%s", path, got)
	}
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		o    NginxOptions
	}{
		{"empty.golden", Config{}, goldenOptions(false)},
		{"full.golden", goldenFull(t), goldenOptions(true)},
		{"full-notls.golden", goldenFull(t), goldenOptions(false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(tc.cfg, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.name, got)
		})
	}
	t.Run("main.golden", func(t *testing.T) {
		o := goldenOptions(true)
		checkGolden(t, "main.golden", renderMain(o, nginxLayout{dir: o.Dir}.routesConf()))
	})
}

func TestRenderIsPureAndOrderFree(t *testing.T) {
	cfg := goldenFull(t)
	a, err := Render(cfg, goldenOptions(true))
	if err != nil {
		t.Fatal(err)
	}
	rev := cfg
	rev.Routes = nil
	for i := len(cfg.Routes) - 1; i >= 0; i-- {
		rev.Routes = append(rev.Routes, cfg.Routes[i])
	}
	b, err := Render(rev, goldenOptions(true))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("route order changed the rendered config")
	}
}

// TestRenderFullAcceptedByNginx checks that nginx itself accepts the
// rendering with every feature (the golden file's content, in a real dir).
func TestRenderFullAcceptedByNginx(t *testing.T) {
	bin := nginxBinary(t)
	o := NginxOptions{Binary: bin, Dir: t.TempDir(), Listen: "127.0.0.1:18080", ListenTLS: "127.0.0.1:18443"}
	n := &Nginx{o: o, l: nginxLayout{dir: o.Dir}}
	for _, d := range []string{n.l.runDir(), n.l.logDir(), n.l.tempDir(), n.l.certDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cfg := goldenFull(t)
	body, err := Render(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.writeCerts(cfg.Certs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.l.routesConf(), withStatus(body, n.l.statusSock(), "g-1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.test(context.Background(), n.l.routesConf()); err != nil {
		t.Fatalf("nginx refuses the full rendering: %v", err)
	}
}

func TestRenderRefusesBadInput(t *testing.T) {
	good := goldenOptions(false)
	for name, o := range map[string]NginxOptions{
		"empty dir":     {Listen: good.Listen},
		"relative dir":  {Dir: "var/lib", Listen: good.Listen},
		"unclean dir":   {Dir: "/var/lib/../x", Listen: good.Listen},
		"dir semicolon": {Dir: "/var/lib;x", Listen: good.Listen},
		"dir space":     {Dir: "/var/lib x", Listen: good.Listen},
		"dir dollar":    {Dir: "/var/$lib", Listen: good.Listen},
		"no listen":     {Dir: good.Dir},
		"host listen":   {Dir: good.Dir, Listen: "localhost:80"},
		"listen inject": {Dir: good.Dir, Listen: "127.0.0.1:80;"},
		"bad tls":       {Dir: good.Dir, Listen: good.Listen, ListenTLS: "x:443"},
		"negative body": {Dir: good.Dir, Listen: good.Listen, ClientMaxBodySize: -1},
	} {
		if _, err := Render(Config{}, o); err == nil {
			t.Errorf("%s: Render accepted %+v", name, o)
		}
	}
	up := []string{"10.0.0.5:80"}
	for _, tc := range invalidConfigs("9fe5e6/shop/prod/web", up) {
		cfg := tc.cfg
		cfg.Routes = append([]Route{{Host: "good.example.test", Service: "9fe5e6/shop/prod/web", Upstreams: up}}, cfg.Routes...)
		if _, err := Render(cfg, good); err == nil {
			t.Errorf("%s: Render accepted it", tc.name)
		}
	}
}

func TestStatusBlock(t *testing.T) {
	body, err := Render(Config{}, goldenOptions(false))
	if err != nil {
		t.Fatal(err)
	}
	f1 := withStatus(body, "/run/s.sock", "gen-1")
	if !bytes.Equal(stripStatus(f1), body) {
		t.Fatal("stripStatus(withStatus(body)) != body")
	}
	f2 := withStatus(f1, "/run/s.sock", "gen-2")
	if strings.Count(string(f2), statusMarker) != 1 || !strings.Contains(string(f2), `"gen-2"`) || strings.Contains(string(f2), "gen-1") {
		t.Fatalf("re-stamping kept the old generation:\n%s", f2)
	}
}

func TestUpstreamNamesAreDistinct(t *testing.T) {
	var sites []site
	for i := range 5000 {
		sites = append(sites, site{servers: []string{fmt.Sprintf("10.0.%d.%d:80", i/250, i%250)}})
	}
	sites = append(sites, sites[0]) // the same list again shares its name
	names := upstreamNames(sites)
	if len(names) != 5000 {
		t.Fatalf("%d names for 5000 upstream lists", len(names))
	}
	seen := map[string]string{}
	for key, n := range names {
		if prev, ok := seen[n]; ok {
			t.Fatalf("%q and %q share upstream %q", prev, key, n)
		}
		if len(n) < 10 || strings.Trim(n, "abcdefghijklmnopqrstuvwxyz") != "" {
			t.Fatalf("upstream name %q: want 10 or more lowercase letters", n)
		}
		seen[n] = key
	}
	if again := upstreamNames(sites); !maps.Equal(again, names) {
		t.Fatal("naming is not deterministic")
	}
}

// FuzzRender: any route Validate accepts renders without error, and the
// host reaches the config only as a plain server_name token.
func FuzzRender(f *testing.F) {
	for _, s := range []string{"app.example.test", "*.example.test", "a;b.example.test", "a\nb.test", "xn--bcher-kva.example", "a.b.c.d.e", "}", "10.0.0.5:80"} {
		f.Add(s, "10.0.0.5:8080")
	}
	f.Add("app.example.test", "[::1]:80")
	f.Add("app.example.test", "10.0.0.5:80 down")
	o := goldenOptions(true)
	f.Fuzz(func(t *testing.T, host, upstream string) {
		cfg := Config{Routes: []Route{{Host: host, Service: "9fe5e6/shop/prod/web", Upstreams: []string{upstream}}}}
		out, err := Render(cfg, o)
		if Validate(cfg) != nil {
			if err == nil {
				t.Fatal("Render accepted what Validate refuses")
			}
			return
		}
		if err != nil {
			t.Fatalf("Render failed on a valid config: %v", err)
		}
		if strings.ContainsAny(host, " ;{}\"'$\\\n\r\t#") || strings.ContainsAny(upstream, " ;{}\"'$\\\n\r\t#") {
			t.Fatalf("metacharacters passed validation: %q %q", host, upstream)
		}
		if !bytes.Contains(out, []byte("\n    "+host+` "9fe5e6/shop/prod/web";`+"\n")) {
			t.Fatalf("host %q not rendered as a single map key", host)
		}
	})
}

// TestRenderHasNoServerPerHost: the routes are map entries; the number of
// server blocks does not grow with them (one plain server, and with TLS a
// default and one per certificate in use), and hosts sharing their
// containers share one upstream block.
func TestRenderHasNoServerPerHost(t *testing.T) {
	var cfg Config
	for i := range 500 {
		cfg.Routes = append(cfg.Routes, Route{Host: fmt.Sprintf("svc%d.example.test", i), Service: "9fe5e6/shop/prod/web",
			Upstreams: []string{fmt.Sprintf("10.0.%d.%d:8080", i/2/250, i/2%250)}})
	}
	cfg.Certs = []Cert{goldenCert(t)}
	for _, tc := range []struct {
		tls     bool
		servers int
	}{{false, 1}, {true, 3}} {
		out, err := Render(cfg, goldenOptions(tc.tls))
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(out, []byte("\nserver {")); n != tc.servers {
			t.Errorf("tls=%v: %d server blocks for 500 routes, want %d", tc.tls, n, tc.servers)
		}
		if n := bytes.Count(out, []byte("\nupstream ")); n != 250 {
			t.Errorf("tls=%v: %d upstream blocks for 250 distinct container sets, want 250", tc.tls, n)
		}
		if !tc.tls && bytes.Contains(out, []byte("$dropmesh_https")) {
			t.Error("a redirect to HTTPS rendered for an edge without a TLS listener")
		}
	}
}
