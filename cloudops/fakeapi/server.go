package fakeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultToken is the bearer token the fake expects when Options.Token is "".
const DefaultToken = "dropmesh-fake-token"

// CloudflarePath is where the Cloudflare API lives on the fake; a client's
// base URL is the fake's URL + CloudflarePath.
const CloudflarePath = "/client/v4/"

// DefaultRegions returns the region slugs the fake accepts when
// Options.Regions is nil: DigitalOcean's.
func DefaultRegions() []string {
	return []string{"ams3", "atl1", "blr1", "fra1", "lon1", "nyc1", "nyc2", "nyc3", "ric1", "sfo2", "sfo3", "sgp1", "syd1", "tor1"}
}

// Options configures a Server.
type Options struct {
	// Token is the bearer token both APIs require; "" is DefaultToken.
	Token string
	// CFToken, if set, is the token the Cloudflare API requires instead.
	CFToken string
	// Zones are the Cloudflare zones that exist, e.g. "example.test"; zones
	// loaded from StatePath are kept.
	Zones []string
	// ActionDelay is how long actions stay in-progress (and new droplets
	// "new"); 0 completes them as soon as the answer is sent.
	ActionDelay time.Duration
	// IPAllocator gives droplet number n (1, 2, ...) its public and private
	// IPv4; nil hands out 127.0.0.(n+1) for both, which is what local mode
	// wants on Linux.
	IPAllocator func(n int) (public, private string)
	// Backend, if set, runs the droplets (see DropletBackend).
	Backend DropletBackend
	// StatePath, if set, is loaded by New and saved atomically after every
	// change. Loaded droplets are not started: the caller restarts them
	// from Droplets().
	StatePath string
	// Regions are the region slugs accepted; nil is DigitalOcean's list.
	Regions []string
	// Logger receives requests that changed something and backend errors;
	// nil discards.
	Logger *slog.Logger
	// Images are slugs of custom images droplets may be created from,
	// besides DigitalOcean's public distributions and the account's
	// snapshots: local mode's base image, which no real account has.
	// Any other slug is refused (422), as DigitalOcean refuses it.
	Images []string
	// RateLimit, if set, is the DigitalOcean hourly request budget the fake
	// enforces: past it every DigitalOcean request is a 429 until the hour
	// is over. 0 reports DefaultRateLimit in the headers without enforcing
	// it (a long-running local mesh is not cut off).
	RateLimit int
}

// LocalBaseImage is the custom image local mode's droplets boot from.
const LocalBaseImage = "dropmesh-local-base"

// DefaultOptions returns what local mode uses: the default token, the zone
// example.test, 50 ms actions and LocalBaseImage.
func DefaultOptions() Options {
	return Options{Token: DefaultToken, Zones: []string{"example.test"}, ActionDelay: 50 * time.Millisecond, Images: []string{LocalBaseImage}}
}

// Server is the fake DigitalOcean and Cloudflare API: an http.Handler to
// serve at the root of a URL. Close stops its background work.
type Server struct {
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux

	mu       sync.Mutex
	st       *store
	requests map[string]int
	faults   []*Fault
	timers   map[int]*time.Timer
	closed   bool
	rate     rateWindow

	work   *queue
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds a Server, loading Options.StatePath if it exists. In-progress
// actions found there are completed at once (without backend calls).
func New(opts Options) (*Server, error) {
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.CFToken == "" {
		opts.CFToken = opts.Token
	}
	if opts.ActionDelay < 0 {
		return nil, fmt.Errorf("fakeapi: negative action delay %v", opts.ActionDelay)
	}
	if opts.IPAllocator == nil {
		opts.IPAllocator = LoopbackIPs
	}
	if opts.Regions == nil {
		opts.Regions = DefaultRegions()
	} else {
		opts.Regions = slices.Clone(opts.Regions)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: log.With("component", "fakeapi"), requests: map[string]int{}, timers: map[int]*time.Timer{}, work: newQueue()}
	st := newStore()
	if opts.StatePath != "" {
		var err error
		if st, err = loadStore(opts.StatePath); err != nil {
			return nil, err
		}
	}
	s.st = st
	for _, a := range st.Actions {
		if a.A.Status == statusInProgress {
			s.completeLocked(a) // no backend: the caller restarts droplets itself
		}
	}
	for _, z := range opts.Zones {
		name := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(z)), ".")
		if !validHost(name) {
			return nil, fmt.Errorf("fakeapi: zone %q is not a domain name", z)
		}
		if s.zoneByName(name) == nil {
			s.addZone(name)
		}
	}
	if opts.StatePath != "" {
		if err := s.st.save(opts.StatePath); err != nil {
			return nil, err
		}
	}
	s.routes()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Go(func() { s.work.run(s.ctx) })
	return s, nil
}

// LoopbackIPs is the default IPAllocator: 127.0.0.(n+1) as both addresses
// (carrying into the third octet past 254).
func LoopbackIPs(n int) (public, private string) {
	v := n + 1
	ip := fmt.Sprintf("127.%d.%d.%d", (v>>16)&0xff, (v>>8)&0xff, v&0xff)
	return ip, ip
}

// Close stops pending action timers and the backend queue; calls already
// running get a cancelled context. It does not stop droplets' backends.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for id, t := range s.timers {
		t.Stop()
		delete(s.timers, id)
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// WaitIdle returns when no action completion or backend call is queued or
// running. Actions still waiting for their delay are not counted.
func (s *Server) WaitIdle() { s.work.wait() }

// ServeHTTP counts the request, applies any matching fault, then serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_fake/") {
		s.mux.ServeHTTP(w, r)
		return
	}
	_, pattern := s.mux.Handler(r)
	if pattern == "" {
		pattern = r.Method + " " + r.URL.Path
	}
	do := strings.HasPrefix(r.URL.Path, "/v2/")
	s.mu.Lock()
	s.requests[pattern]++
	f := s.takeFaultLocked(r)
	allowed := !do || s.rateHeadersLocked(w, time.Now())
	s.mu.Unlock()
	if !allowed {
		doError(w, http.StatusTooManyRequests, "too_many_requests", "API Rate limit exceeded.")
		return
	}
	if f != nil && s.applyFault(w, r, *f) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// handle registers a provider route behind the token check.
func (s *Server) handle(pattern string, cloudflare bool, h http.HandlerFunc) {
	token := s.opts.Token
	if cloudflare {
		token = s.opts.CFToken
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || got != token {
			if cloudflare {
				cfError(w, http.StatusUnauthorized, 10000, "Authentication error")
			} else {
				doError(w, http.StatusUnauthorized, "unauthorized", "Unable to authenticate you.")
			}
			return
		}
		h(w, r)
	})
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	do := func(p string, h http.HandlerFunc) { s.handle(p, false, h) }
	cf := func(p string, h http.HandlerFunc) { s.handle(p, true, h) }

	do("GET /v2/droplets", s.listDroplets)
	do("POST /v2/droplets", s.createDroplet)
	do("DELETE /v2/droplets", s.deleteDropletsByTag)
	do("GET /v2/droplets/{id}", s.getDroplet)
	do("DELETE /v2/droplets/{id}", s.deleteDroplet)
	do("GET /v2/droplets/{id}/actions", s.listDropletActions)
	do("POST /v2/droplets/{id}/actions", s.postDropletAction)
	do("GET /v2/droplets/{id}/actions/{aid}", s.getDropletAction)
	do("GET /v2/actions", s.listActions)
	do("GET /v2/actions/{id}", s.getAction)

	do("GET /v2/snapshots", s.listSnapshots)
	do("GET /v2/snapshots/{id}", s.getSnapshot)
	do("DELETE /v2/snapshots/{id}", s.deleteImage)
	do("GET /v2/images", s.listImages)
	do("GET /v2/images/{id}", s.getImage)
	do("DELETE /v2/images/{id}", s.deleteImage)
	do("POST /v2/images/{id}/actions", s.postImageAction)
	do("GET /v2/images/{id}/actions/{aid}", s.getImageAction)

	do("GET /v2/firewalls", s.listFirewalls)
	do("POST /v2/firewalls", s.createFirewall)
	do("GET /v2/firewalls/{id}", s.getFirewall)
	do("PUT /v2/firewalls/{id}", s.updateFirewall)
	do("DELETE /v2/firewalls/{id}", s.deleteFirewall)

	do("GET /v2/vpcs", s.listVPCs)
	do("POST /v2/vpcs", s.createVPC)
	do("GET /v2/vpcs/{id}", s.getVPC)
	do("DELETE /v2/vpcs/{id}", s.deleteVPC)

	do("GET /v2/account", s.getAccount)
	do("GET /v2/regions", s.listRegions)
	do("GET /v2/sizes", s.listSizes)
	do("GET /v2/tags", s.listTags)
	do("GET /v2/tags/{tag}", s.getTag)

	do("GET /v2/account/keys", s.listKeys)
	do("POST /v2/account/keys", s.createKey)
	do("GET /v2/account/keys/{id}", s.getKey)
	do("DELETE /v2/account/keys/{id}", s.deleteKey)

	cf("GET /client/v4/zones", s.listZones)
	cf("GET /client/v4/zones/{zid}", s.getZone)
	cf("GET /client/v4/zones/{zid}/dns_records", s.listRecords)
	cf("POST /client/v4/zones/{zid}/dns_records", s.createRecord)
	cf("GET /client/v4/zones/{zid}/dns_records/{id}", s.getRecord)
	cf("PUT /client/v4/zones/{zid}/dns_records/{id}", s.putRecord)
	cf("PATCH /client/v4/zones/{zid}/dns_records/{id}", s.patchRecord)
	cf("DELETE /client/v4/zones/{zid}/dns_records/{id}", s.deleteRecord)

	s.mux.HandleFunc("GET /_fake/state", s.serveState)
	s.mux.HandleFunc("GET /_fake/faults", s.listFaults)
	s.mux.HandleFunc("POST /_fake/faults", s.postFaults)
	s.mux.HandleFunc("DELETE /_fake/faults", s.deleteFaults)
	s.mux.HandleFunc("DELETE /_fake/requests", s.deleteRequests)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/client/v4/") {
			cfError(w, http.StatusNotFound, 7000, "No route for that URI")
			return
		}
		doError(w, http.StatusNotFound, "not_found", "The fake does not serve "+r.Method+" "+r.URL.Path+".")
	})
}

// changed persists the store after a mutation; the caller holds s.mu.
func (s *Server) changed() {
	if s.opts.StatePath == "" {
		return
	}
	if err := s.st.save(s.opts.StatePath); err != nil {
		s.log.Error("fake cloud state not saved", "err", err)
	}
}

// schedule completes action id after Options.ActionDelay; the caller holds
// s.mu.
func (s *Server) schedule(id int) {
	if s.closed {
		return
	}
	job := func(ctx context.Context) { s.finishAction(ctx, id) }
	if s.opts.ActionDelay == 0 {
		s.work.push(job)
		return
	}
	s.timers[id] = time.AfterFunc(s.opts.ActionDelay, func() { s.work.push(job) })
}

// backend queues a backend call; the caller may hold s.mu.
func (s *Server) backend(what string, id int, call func(context.Context, DropletBackend) error) {
	b := s.opts.Backend
	if b == nil || s.closed {
		return
	}
	s.work.push(func(ctx context.Context) {
		if err := call(ctx, b); err != nil {
			s.log.Warn("droplet backend failed", "call", what, "droplet", id, "err", err)
		}
	})
}

// nowTime is the fake's clock, to the second as DigitalOcean shows it.
func nowTime() time.Time { return time.Now().UTC().Truncate(time.Second) }

// nowDO is a DigitalOcean time stamp.
func nowDO() string { return nowTime().Format(time.RFC3339) }

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// doError answers in DigitalOcean's error shape.
func doError(w http.ResponseWriter, status int, id, msg string) {
	writeJSON(w, status, map[string]string{"id": id, "message": msg, "request_id": fmt.Sprintf("fake-%d", time.Now().UnixNano())})
}

// decode reads a JSON body of at most 1 MiB into v.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty body, JSON expected")
		}
		return fmt.Errorf("body is not valid JSON: %v", err)
	}
	return nil
}

func (s *Server) validRegion(slug string) bool { return slices.Contains(s.opts.Regions, slug) }
