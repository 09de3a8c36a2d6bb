package edge

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// safePath is what a path must look like to be written into nginx config
// unquoted: absolute, no spaces, quotes, braces, ';', '$', '#' or '\'.
var safePath = regexp.MustCompile(`^/[A-Za-z0-9._/+@=,-]*$`)

// nginxLayout is where a private nginx keeps its files, all under Dir (its
// prefix): the main file, the routes file and its .new/.prev, the pid file
// and the status socket, logs, temp paths and certificates.
type nginxLayout struct {
	dir string
}

func (l nginxLayout) path(parts ...string) string {
	return filepath.Join(append([]string{l.dir}, parts...)...)
}
func (l nginxLayout) mainConf() string   { return l.path("nginx.conf") }
func (l nginxLayout) testConf() string   { return l.path("nginx-test.conf") }
func (l nginxLayout) routesConf() string { return l.path("dropmesh.conf") }
func (l nginxLayout) newConf() string    { return l.path("dropmesh.conf.new") }
func (l nginxLayout) prevConf() string   { return l.path("dropmesh.conf.prev") }
func (l nginxLayout) runDir() string     { return l.path("run") }
func (l nginxLayout) pidFile() string    { return l.path("run", "nginx.pid") }
func (l nginxLayout) statusSock() string { return l.path("run", "status.sock") }
func (l nginxLayout) logDir() string     { return l.path("logs") }
func (l nginxLayout) errorLog() string   { return l.path("logs", "error.log") }
func (l nginxLayout) startLog() string   { return l.path("logs", "start.log") }
func (l nginxLayout) tempDir() string    { return l.path("temp") }
func (l nginxLayout) certDir() string    { return l.path("certs") }

// accessLog is the edge's one access log: every line names its host and
// service (log_format dropmesh). One file for all routes, not one per
// service: nginx opens every log file of the config on each reload, so at
// 1,000 routes per-service files were half of a reload's time and at 10,000
// more than the master may open.
func (l nginxLayout) accessLog() string { return l.path("logs", "access.log") }

// certFiles names a zone's certificate and key files after their content,
// so a new certificate never overwrites the one the live config uses.
func (l nginxLayout) certFiles(c Cert) (crt, key string) {
	h := sha256.New()
	h.Write(c.CertPEM)
	h.Write([]byte{0})
	h.Write(c.KeyPEM)
	base := c.Zone + "-" + hex.EncodeToString(h.Sum(nil))[:16]
	return l.path("certs", base+".crt"), l.path("certs", base+".key")
}

// checkNginxOptions validates the options that reach the config text.
func checkNginxOptions(o NginxOptions) error {
	if o.Dir == "" || filepath.Clean(o.Dir) != o.Dir || !safePath.MatchString(o.Dir) {
		return fmt.Errorf("nginx dir %q: want a clean absolute path of letters, digits and ._/+@=,-", o.Dir)
	}
	if err := validateListen("listen address", o.Listen); err != nil {
		return err
	}
	if o.ListenTLS != "" {
		if err := validateListen("TLS listen address", o.ListenTLS); err != nil {
			return err
		}
		if o.ListenTLS == o.Listen {
			return fmt.Errorf("TLS listen address %q: same as the plain HTTP one", o.ListenTLS)
		}
	}
	if o.ClientMaxBodySize < 0 {
		return fmt.Errorf("client max body size %d: negative", o.ClientMaxBodySize)
	}
	return nil
}

// zoneFor returns the index of the longest zone in certs that host is equal
// to or under, or -1.
func zoneFor(host string, certs []Cert) int {
	best := -1
	for i, c := range certs {
		if host == c.Zone || strings.HasSuffix(host, "."+c.Zone) {
			if best < 0 || len(c.Zone) > len(certs[best].Zone) {
				best = i
			}
		}
	}
	return best
}

// nginxListen renders a listen address: ":80" means every address.
func nginxListen(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "*" + addr
	}
	return addr
}

// serverNamesHashSize is a server name hash table size that fits n names
// (nginx's default, 512, until that is tight).
func serverNamesHashSize(n int) int {
	size := 512
	for size < 4*n {
		size *= 2
	}
	return size
}

// serverNamesBucketSize is a server name hash bucket size that holds the
// longest host name (nginx needs the name plus about 16 bytes).
func serverNamesBucketSize(cfg Config) int {
	longest := len(cfg.UIHost)
	for _, r := range cfg.Routes {
		longest = max(longest, len(r.Host))
	}
	size := 64
	for size < longest+32 {
		size *= 2
	}
	return size
}

// nginxSize renders a byte count the way nginx reads it.
func nginxSize(n int64) string {
	switch {
	case n > 0 && n%(1<<20) == 0:
		return fmt.Sprintf("%dm", n>>20)
	case n > 0 && n%(1<<10) == 0:
		return fmt.Sprintf("%dk", n>>10)
	}
	return fmt.Sprint(n)
}

// nginxTime renders a duration the way nginx reads it.
func nginxTime(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

// Render returns the routes file an nginx edge includes inside its http
// block: shared proxy settings, a default server answering 404, and per
// host an upstream (the route's containers) and a server. It is pure: the
// same Config and options always give the same bytes. Certificate paths are
// named after the certificate content under o.Dir/certs; Nginx.Apply writes
// those files.
func Render(cfg Config, o NginxOptions) ([]byte, error) {
	if err := checkNginxOptions(o); err != nil {
		return nil, err
	}
	if err := Validate(cfg); err != nil {
		return nil, err
	}
	l := nginxLayout{dir: o.Dir}
	t := o.Timings.withDefaults()
	maxBody := o.ClientMaxBodySize
	if maxBody == 0 {
		maxBody = DefaultClientMaxBodySize
	}
	tls := o.ListenTLS != ""
	listen := nginxListen(o.Listen)
	listenTLS := nginxListen(o.ListenTLS)

	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	p("# Generated by dropmesh; do not edit: the agent rewrites this file on every change.")
	p("# Included inside the http block of %s.", l.mainConf())
	p("")
	p(`log_format dropmesh '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '`)
	p(`                    '"$http_referer" "$http_user_agent" host=$host service=$dropmesh_service '`)
	p(`                    'upstream=$upstream_addr request_time=$request_time upstream_time=$upstream_response_time';`)
	p("access_log %s dropmesh buffer=64k flush=1s;", l.accessLog())
	p("server_tokens off;")
	p("")
	// The map hashes are sized before the first map: room for every host.
	p("map_hash_bucket_size %d;", serverNamesBucketSize(cfg))
	p("map_hash_max_size %d;", serverNamesHashSize(len(cfg.Routes)+1))
	p("")
	p("# Websockets: pass the upgrade on; other requests send no Connection header,")
	p("# so the upstream connection stays open for the next request (keepalive).")
	p("map $http_upgrade $connection_upgrade {")
	p("    default upgrade;")
	p("    ''      '';")
	p("}")
	p("")
	// Room for every host name in nginx's server name hash (long names
	// need the larger buckets; many names a larger table): the TLS servers
	// list their hosts.
	p("server_names_hash_bucket_size %d;", serverNamesBucketSize(cfg))
	p("server_names_hash_max_size %d;", serverNamesHashSize(len(cfg.Routes)+1))
	p("client_max_body_size %s;", nginxSize(maxBody))
	p("client_header_timeout %s;", nginxTime(t.HeaderTimeout))
	p("keepalive_timeout %s;", nginxTime(t.IdleTimeout))
	p("")
	p("# Bodies stream to the container and responses never spill to disk, so workers")
	p("# need no file access (they run as an unprivileged user) and behave like the")
	p("# built-in proxy.")
	p("proxy_http_version 1.1;")
	p("proxy_request_buffering off;")
	p("proxy_max_temp_file_size 0;")
	p("proxy_buffer_size 16k;")
	p("proxy_buffers 16 16k;")
	p("proxy_busy_buffers_size 32k;")
	p("proxy_connect_timeout %s;", nginxTime(t.ConnectTimeout))
	p("proxy_read_timeout %s;", nginxTime(t.ReadTimeout))
	p("proxy_send_timeout %s;", nginxTime(t.SendTimeout))
	p("proxy_next_upstream error timeout;")
	p("proxy_set_header Host $host;")
	p("proxy_set_header X-Real-IP $remote_addr;")
	p("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;")
	p("proxy_set_header X-Forwarded-Proto $scheme;")
	p("proxy_set_header X-Forwarded-Host $host;")
	p("proxy_set_header Upgrade $http_upgrade;")
	p("proxy_set_header Connection $connection_upgrade;")
	if tls {
		p("ssl_protocols TLSv1.2 TLSv1.3;")
		p("ssl_session_cache shared:dropmesh_ssl:4m;")
	}
	sites := renderSites(cfg, tls)
	p("")
	p("# The routes, looked up by host as nginx picks a server_name: the exact")
	p("# name first, then the longest wildcard. One map entry per host instead of a")
	p("# server block per host keeps a reload cheap: nginx parses and allocates a")
	p("# server block's whole module configuration, a map entry is a hash slot.")
	p("map $host $dropmesh_upstream {")
	p("    hostnames;")
	p(`    default "";`)
	for _, s := range sites {
		p("    %s %s;", s.host, s.upstream)
	}
	p("}")
	p("map $host $dropmesh_service {")
	p("    hostnames;")
	p(`    default "-";`)
	for _, s := range sites {
		p(`    %s "%s";`, s.host, s.service)
	}
	p("}")
	redirect := ""
	if tls {
		redirect = "https://$host" + httpsPortSuffix(o.ListenTLS) + "$request_uri"
		p("# Hosts served over HTTPS only: plain HTTP answers with a redirect.")
		p("map $host $dropmesh_https {")
		p("    hostnames;")
		p(`    default "";`)
		for _, s := range sites {
			if s.https {
				p("    %s 1;", s.host)
			}
		}
		p("}")
	}

	for _, u := range renderUpstreams(sites) {
		p("")
		p("# %s", strings.Join(u.hosts, " "))
		p("upstream %s {", u.name)
		for _, a := range u.servers {
			p("    server %s max_fails=1 fail_timeout=%s;", a, nginxTime(t.FailTimeout))
		}
		// Idle connections kept open to the containers, per worker: a
		// request reuses one instead of connecting anew.
		p("    keepalive %d;", upstreamKeepalive)
		p("    keepalive_timeout %s;", nginxTime(upstreamIdleTimeout))
		p("}")
	}

	// Every server proxies the same way; the maps pick the upstream.
	proxy := func() {
		p(`    if ($dropmesh_upstream = "") {`)
		p("        return 404;")
		p("    }")
		p("    location / {")
		p("        proxy_pass http://$dropmesh_upstream;")
		p("    }")
	}
	p("")
	p("# Plain HTTP, every host (an unknown one gets 404).")
	p("server {")
	p("    listen %s default_server;", listen)
	p("    server_name _;")
	if tls {
		p("    if ($dropmesh_https) {")
		p("        return 308 %s;", redirect)
		p("    }")
	}
	proxy()
	p("}")
	if tls {
		p("")
		p("# TLS for a name no certificate covers: the handshake is refused.")
		p("server {")
		p("    listen %s ssl default_server;", listenTLS)
		p("    ssl_reject_handshake on;")
		p("    server_name _;")
		p("    return 404;")
		p("}")
		for _, z := range renderZones(cfg, sites) {
			crt, key := l.certFiles(cfg.Certs[z.cert])
			p("")
			p("# TLS for the hosts under %s.", cfg.Certs[z.cert].Zone)
			p("server {")
			p("    listen %s ssl;", listenTLS)
			p("    ssl_certificate %s;", crt)
			p("    ssl_certificate_key %s;", key)
			for _, h := range z.hosts {
				p("    server_name %s;", h)
			}
			proxy()
			p("}")
		}
	}
	return b.Bytes(), nil
}

// site is one routed host as rendered: its upstream block, its service (for
// the access log), the certificate that covers it and whether plain HTTP
// redirects to HTTPS.
type site struct {
	host, service, upstream string
	servers                 []string
	cert                    int // index in Config.Certs, -1 for none
	https                   bool
}

// renderSites lists the routes and the UI host in host order, each with its
// upstream block's name. A host redirects to HTTPS when the edge has a TLS
// listener, a certificate covers the host, and the route asks for it
// (RedirectHTTPS); the UI host always does then: the management plane is
// not served in clear where it can be served over TLS.
func renderSites(cfg Config, tls bool) []site {
	var sites []site
	add := func(host, service string, servers []string, redirect bool) {
		z := zoneFor(strings.TrimPrefix(host, "*."), cfg.Certs)
		if !tls {
			z = -1
		}
		sites = append(sites, site{host: host, service: service, servers: servers, cert: z, https: redirect && z >= 0})
	}
	for _, r := range cfg.Routes {
		add(r.Host, r.Service, r.Upstreams, r.RedirectHTTPS)
	}
	if cfg.UIHost != "" {
		add(cfg.UIHost, "ui", []string{cfg.UIUpstream}, true)
	}
	sort.Slice(sites, func(i, j int) bool { return sites[i].host < sites[j].host })
	names := upstreamNames(sites)
	for i := range sites {
		sites[i].upstream = names[strings.Join(sites[i].servers, " ")]
	}
	return sites
}

// renderedUpstream is one upstream block: the hosts that share it (routes
// with the same upstream list, such as a service's several hosts).
type renderedUpstream struct {
	name    string
	servers []string
	hosts   []string
}

// renderUpstreams groups the sites by upstream block, in name order.
func renderUpstreams(sites []site) []renderedUpstream {
	by := map[string]*renderedUpstream{}
	for _, s := range sites {
		u, ok := by[s.upstream]
		if !ok {
			u = &renderedUpstream{name: s.upstream, servers: s.servers}
			by[s.upstream] = u
		}
		u.hosts = append(u.hosts, s.host)
	}
	out := make([]renderedUpstream, 0, len(by))
	for _, u := range by {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// renderedZone is one TLS server: a certificate and the hosts it serves.
type renderedZone struct {
	cert  int
	hosts []string
}

// renderZones groups the sites with a certificate by that certificate, in
// the order of Config.Certs.
func renderZones(cfg Config, sites []site) []renderedZone {
	hosts := make([][]string, len(cfg.Certs))
	for _, s := range sites {
		if s.cert >= 0 {
			hosts[s.cert] = append(hosts[s.cert], s.host)
		}
	}
	var out []renderedZone
	for i, h := range hosts {
		if len(h) > 0 {
			out = append(out, renderedZone{cert: i, hosts: h})
		}
	}
	return out
}

// upstreamNames names each distinct upstream list (the servers in their
// order, joined by spaces) after a hash of it: lowercase letters, 10 to 17
// of them. nginx finds an upstream block by comparing its name with every
// block defined before it (when parsing, and for a proxy_pass with a
// variable, on each request), length first, then byte by byte: names that
// differ in length and in their first letter make both scans cheap, where
// names sharing a long prefix ("up_svc1_example_test") made the parse of
// 10,000 routes quadratic in string compares. A hash collision is resolved
// by hashing again with a counter, so the names stay distinct and the
// rendering deterministic.
func upstreamNames(sites []site) map[string]string {
	names := map[string]string{}
	taken := map[string]bool{}
	for _, s := range sites {
		key := strings.Join(s.servers, " ")
		if _, ok := names[key]; ok {
			continue
		}
		for salt := 0; ; salt++ {
			h := sha256.Sum256([]byte(fmt.Sprintf("%d %s", salt, key)))
			n := 10 + int(h[0]%8)
			b := make([]byte, n)
			for i := range b {
				b[i] = 'a' + h[1+i]%26
			}
			if name := string(b); !taken[name] {
				names[key], taken[name] = name, true
				break
			}
		}
	}
	return names
}

// httpsPortSuffix is ":port" for a TLS listen address not on 443, else "".
func httpsPortSuffix(listenTLS string) string {
	_, port, err := net.SplitHostPort(listenTLS)
	if err != nil || port == "443" {
		return ""
	}
	return ":" + port
}

// upstreamKeepalive is how many idle connections each nginx worker keeps
// per upstream block; upstreamIdleTimeout how long one stays idle. It is
// shorter than the idle timeouts of common servers (Node's 5 s is the
// shortest usual default), so the edge closes an idle connection before the
// container does and does not send a request on one the container is
// closing. Under load connections never idle that long.
const (
	upstreamKeepalive   = 32
	upstreamIdleTimeout = 4 * time.Second
)

// statusMarker starts the status block Nginx appends to the rendered routes.
const statusMarker = "# dropmesh status: "

// withStatus appends to a rendered routes file a server on a private unix
// socket that answers the config's generation: after a reload, Apply asks
// it until the new generation answers, which proves the new workers serve.
func withStatus(body []byte, sock, gen string) []byte {
	var b bytes.Buffer
	b.Write(stripStatus(body))
	fmt.Fprintf(&b, "\n%sgeneration %s on a private socket\n", statusMarker, gen)
	fmt.Fprintf(&b, "server {\n    listen unix:%s;\n    access_log off;\n", sock)
	fmt.Fprintf(&b, "    location = /generation {\n        default_type text/plain;\n        return 200 %q;\n    }\n", gen)
	fmt.Fprintf(&b, "    location / {\n        return 404;\n    }\n}\n")
	return b.Bytes()
}

// stripStatus removes the status block from a routes file.
func stripStatus(file []byte) []byte {
	if i := bytes.Index(file, []byte("\n"+statusMarker)); i >= 0 {
		return file[:i]
	}
	return file
}

// renderMain returns the main nginx.conf: the process settings of this
// private master (pid, logs, temp paths all under Dir) and an include of the
// routes file, so `nginx -t` can check a copy that includes a new one.
func renderMain(o NginxOptions, include string) []byte {
	l := nginxLayout{dir: o.Dir}
	t := o.Timings.withDefaults()
	workers := "auto"
	if o.WorkerProcesses > 0 {
		workers = fmt.Sprint(o.WorkerProcesses)
	}
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Generated by dropmesh; do not edit. A private nginx master: nginx -p %s -c %s", o.Dir, l.mainConf())
	p("daemon on;")
	p("worker_processes %s;", workers)
	p("worker_rlimit_nofile 10240;")
	p("worker_shutdown_timeout %s;", nginxTime(t.WorkerShutdownTimeout))
	p("pid %s;", l.pidFile())
	p("lock_file %s;", l.path("run", "nginx.lock"))
	p("error_log %s notice;", l.errorLog())
	p("")
	p("events {")
	p("    worker_connections 4096;")
	p("}")
	p("")
	p("http {")
	for _, tp := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		p("    %s_temp_path %s;", tp, l.path("temp", tp))
	}
	p("    include %s;", include)
	p("}")
	return b.Bytes()
}
