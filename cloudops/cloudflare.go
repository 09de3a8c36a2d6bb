package cloudops

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/zones"
)

// DefaultCFBaseURL is Cloudflare's API root.
const DefaultCFBaseURL = "https://api.cloudflare.com/client/v4/"

// CFConfig configures the Cloudflare client. Zero fields take the defaults
// named on each.
type CFConfig struct {
	// Token is the API token (required), scoped to Zone:Read and DNS:Edit.
	Token string
	// BaseURL is the API root; "" is DefaultCFBaseURL. A URL without a
	// path (the fake's URL, say) gets /client/v4/ appended.
	BaseURL string
	// Retry is the retry policy of every request (the client's own retries
	// are turned off).
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
	// TTL of unproxied records, in seconds; 0 is 60. Short lets clients
	// leave a dead droplet quickly; proxied records are always 1 (auto).
	TTL int
	// PageSize is the per_page of record listings; 0 is 100.
	PageSize int
}

// Cloudflare implements DNS with cloudflare-go v6. It is safe for
// concurrent use.
type Cloudflare struct {
	zones   *zones.ZoneService
	records *dns.RecordService
	cfg     CFConfig
	retry   RetryPolicy
	log     *slog.Logger
	err     error // a configuration error, returned by every call
}

var _ DNS = (*Cloudflare)(nil)

// NewCloudflare builds the client from explicit options only (not from the
// CLOUDFLARE_* environment the library would read). A bad configuration does
// not fail here: every call then returns the error, wrapping ErrInvalid.
func NewCloudflare(cfg CFConfig) *Cloudflare {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultCFBaseURL
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 60
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 100
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cf := &Cloudflare{cfg: cfg, retry: cfg.Retry.withDefaults(), log: log.With("cloud", "cloudflare")}
	token := strings.TrimSpace(cfg.Token)
	if token == "" {
		cf.err = fmt.Errorf("cloudflare: %w: empty token", ErrInvalid)
		return cf
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		cf.err = fmt.Errorf("cloudflare: %w: base URL %q is not an http(s) URL", ErrInvalid, cfg.BaseURL)
		return cf
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/client/v4/"
	}
	base := http.DefaultTransport
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		*hc = *cfg.HTTPClient
		if cfg.HTTPClient.Transport != nil {
			base = cfg.HTTPClient.Transport
		}
	}
	hc.Transport = NewRetryTransport(boundedTransport(base, cfg.RequestTimeout), cf.retry, cf.log)
	opts := []option.RequestOption{
		option.WithBaseURL(u.String()),
		option.WithAPIToken(token),
		option.WithMaxRetries(0), // one retry policy for both providers: ours
		option.WithHTTPClient(hc),
	}
	cf.zones = zones.NewZoneService(opts...)
	cf.records = dns.NewRecordService(opts...)
	return cf
}
