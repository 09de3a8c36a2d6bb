package cloudops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/digitalocean/godo"
	"golang.org/x/oauth2"
)

// DefaultDOBaseURL is DigitalOcean's API root.
const DefaultDOBaseURL = "https://api.digitalocean.com/"

// maxPages bounds every paged listing, so a server that always claims one
// more page cannot keep a caller looping.
const maxPages = 1000

// DOConfig configures the DigitalOcean client. Zero fields take the defaults
// named on each.
type DOConfig struct {
	// Token is the API token (required).
	Token string
	// BaseURL is the API root; "" is DefaultDOBaseURL. The fake serves at the
	// root of its URL, as godo uses absolute paths for some resources.
	BaseURL string
	// Retry is the retry policy of every request.
	Retry RetryPolicy
	// Logger receives retries and changes; nil discards.
	Logger *slog.Logger
	// HTTPClient supplies the base transport and timeout; nil uses a
	// transport of its own from NewHTTPTransport. It is not modified.
	HTTPClient *http.Client
	// RequestTimeout bounds each attempt of a request until the answer's
	// headers arrive (see NewHTTPTransport), when HTTPClient brings no such
	// timeout of its own; 0 is DefaultRequestTimeout.
	RequestTimeout time.Duration
	// PollInterval is how often WaitForAction and WaitForDropletStatus ask;
	// 0 is 2 s. Shorter notices completion sooner but spends rate limit
	// (DigitalOcean allows 250 requests a minute).
	PollInterval time.Duration
	// PageSize is the per_page of listings; 0 is 200 (DigitalOcean's max).
	PageSize int
	// DefaultImageSlug is the image of a droplet whose spec names none; ""
	// is "debian-12-x64".
	DefaultImageSlug string
}

// DigitalOcean implements Droplets, Snapshots, Firewalls, VPCs and SSHKeys
// with godo. It is safe for concurrent use.
type DigitalOcean struct {
	c     *godo.Client
	cfg   DOConfig
	retry RetryPolicy
	log   *slog.Logger
	err   error // a configuration error, returned by every call
}

var (
	_ Droplets  = (*DigitalOcean)(nil)
	_ Snapshots = (*DigitalOcean)(nil)
	_ Firewalls = (*DigitalOcean)(nil)
	_ VPCs      = (*DigitalOcean)(nil)
	_ SSHKeys   = (*DigitalOcean)(nil)
)

// NewDigitalOcean builds the client. A bad configuration (empty token,
// malformed URL) does not fail here: every call then returns the error,
// wrapping ErrInvalid.
func NewDigitalOcean(cfg DOConfig) *DigitalOcean {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultDOBaseURL
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 200
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.DefaultImageSlug == "" {
		cfg.DefaultImageSlug = "debian-12-x64"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	do := &DigitalOcean{cfg: cfg, retry: cfg.Retry.withDefaults(), log: log.With("cloud", "digitalocean")}
	token := strings.TrimSpace(cfg.Token)
	if token == "" {
		do.err = fmt.Errorf("digitalocean: %w: empty token", ErrInvalid)
		return do
	}
	if u, err := url.Parse(cfg.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		do.err = fmt.Errorf("digitalocean: %w: base URL %q is not an http(s) URL", ErrInvalid, cfg.BaseURL)
		return do
	}
	base := http.DefaultTransport
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		*hc = *cfg.HTTPClient
		if cfg.HTTPClient.Transport != nil {
			base = cfg.HTTPClient.Transport
		}
	}
	// Retries sit outside the token transport, so every attempt carries the
	// header. godo's own WithRetryAndBackoffs is not used: it assumes an
	// *oauth2.Transport and retries POSTs on 5xx.
	auth := &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}), Base: boundedTransport(base, cfg.RequestTimeout)}
	hc.Transport = NewRetryTransport(auth, do.retry, do.log)
	c, err := godo.New(hc, godo.SetBaseURL(cfg.BaseURL), godo.SetUserAgent("dropmesh"))
	if err != nil {
		do.err = fmt.Errorf("digitalocean: %w: %v", ErrInvalid, err)
		return do
	}
	do.c = c
	return do
}

// listAll fetches every page of a godo listing.
func listAll[T any](ctx context.Context, pageSize int, fetch func(context.Context, *godo.ListOptions) ([]T, *godo.Response, error)) ([]T, error) {
	opt := &godo.ListOptions{Page: 1, PerPage: pageSize}
	var all []T
	for range maxPages {
		items, resp, err := fetch(ctx, opt)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if len(items) == 0 || resp == nil || resp.Links == nil || resp.Links.IsLastPage() {
			return all, nil
		}
		opt.Page++
	}
	return nil, fmt.Errorf("listing has more than %d pages", maxPages)
}

// again runs op, and again after a backoff while it fails in a way only an
// operation-level retry can handle (see retryableByOperation). op must be
// idempotent as a whole: it looks the resource up before it creates it.
func again(ctx context.Context, p RetryPolicy, log *slog.Logger, what string, op func() error) error {
	for n := 1; ; n++ {
		err := op()
		if err == nil || n >= p.MaxAttempts || !retryableByOperation(ctx, err) {
			return err
		}
		wait := p.backoff(n)
		log.Warn("cloud operation failed, looking again", "op", what, "attempt", n, "err", err, "wait", wait)
		if serr := p.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (after: %w)", serr, apiError(err))
		}
	}
}

// poll calls check every interval (the first time at once) until it reports
// done, fails, or ctx ends.
func poll(ctx context.Context, interval time.Duration, check func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// ignoreNotFound turns a 404 into success, for deletes of things already gone.
func ignoreNotFound(err error) error {
	if errors.Is(apiError(err), ErrNotFound) {
		return nil
	}
	return err
}
