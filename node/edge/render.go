package edge

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

// upstreamName names a route's upstream block after its host: "up_" plus the
// host with '.' as '_' and a wildcard dropped ("*.example.com" ->
// "up__example_com"), which no plain host can produce.
func upstreamName(host string) string {
	b := make([]byte, 0, len(host)+3)
	b = append(b, "up_"...)
	for i := 0; i < len(host); i++ {
		switch c := host[i]; c {
		case '*':
		case '.':
			b = append(b, '_')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// uiUpstreamName is the UI's upstream; no host yields it (hosts have two
// labels).
const uiUpstreamName = "up_ui"

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
	p("# Websockets: pass the upgrade on; other requests send no Connection header,")
	p("# so the upstream connection stays open for the next request (keepalive).")
	p("map $http_upgrade $connection_upgrade {")
	p("    default upgrade;")
	p("    ''      '';")
	p("}")
	p("")
	// Room for every host name in nginx's server name hash (long names
	// need the larger buckets; many names a larger table).
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
	p("")
	p("# Unknown hosts.")
	p("server {")
	p("    listen %s default_server;", listen)
	if tls {
		p("    listen %s ssl default_server;", listenTLS)
		p("    ssl_reject_handshake on;")
	}
	p("    server_name _;")
	p(`    set $dropmesh_service "-";`)
	p("    return 404;")
	p("}")

	type site struct {
		host, service, upstream string
		servers                 []string
		redirect                bool
	}
	var sites []site
	for _, r := range cfg.Routes {
		sites = append(sites, site{host: r.Host, service: r.Service, upstream: upstreamName(r.Host), servers: r.Upstreams, redirect: r.RedirectHTTPS})
	}
	sort.Slice(sites, func(i, j int) bool { return sites[i].host < sites[j].host })
	if cfg.UIHost != "" {
		sites = append(sites, site{host: cfg.UIHost, service: "ui", upstream: uiUpstreamName, servers: []string{cfg.UIUpstream}})
	}
	for _, s := range sites {
		p("")
		p("# %s -> %s", s.host, s.service)
		p("upstream %s {", s.upstream)
		for _, u := range s.servers {
			p("    server %s max_fails=1 fail_timeout=%s;", u, nginxTime(t.FailTimeout))
		}
		// Idle connections kept open to the containers, per worker: a
		// request reuses one instead of connecting anew.
		p("    keepalive %d;", upstreamKeepalive)
		p("    keepalive_timeout %s;", nginxTime(upstreamIdleTimeout))
		p("}")
		p("server {")
		p("    listen %s;", listen)
		if z := zoneFor(strings.TrimPrefix(s.host, "*."), cfg.Certs); tls && z >= 0 {
			crt, key := l.certFiles(cfg.Certs[z])
			p("    listen %s ssl;", listenTLS)
			p("    ssl_certificate %s;", crt)
			p("    ssl_certificate_key %s;", key)
		}
		p("    server_name %s;", s.host)
		p(`    set $dropmesh_service "%s";`, s.service)
		if z := zoneFor(strings.TrimPrefix(s.host, "*."), cfg.Certs); tls && z >= 0 && s.redirect {
			p("    if ($scheme = http) {")
			p("        return 308 %s;", httpsURL("$host", o.ListenTLS, "$request_uri"))
			p("    }")
		}
		p("    location / {")
		p("        proxy_pass http://%s;", s.upstream)
		p("    }")
		p("}")
	}
	return b.Bytes(), nil
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
