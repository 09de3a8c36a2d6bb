package raftfsm

import (
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ACME is the state of automatic HTTPS: where certificates come from (the
// config and the registered account), the certificates issued, and the
// orders placed with the CA. The leader's ACME duty (node/leader/acme)
// writes it; every node's edge serves the issued certificates.
type ACME struct {
	// Config is what the operator chose; the duty is idle until Enabled.
	Config ACMEConfig `json:"config,omitzero"`
	// Account is the account registered with Config.Directory (nil before).
	Account *ACMEAccount `json:"account,omitempty"`
	// Certs are the issued certificates by name (CertNameForService,
	// CertNameForZone).
	Certs map[string]*IssuedCert `json:"certs,omitempty"`
	// Orders are the order intents by id: committed before the order is
	// placed with the CA, resolved after, so a new leader resumes an open
	// order instead of placing a second one.
	Orders map[string]*ACMEOrder `json:"orders,omitempty"`
}

// ACMEConfig is the operator's choice of CA.
type ACMEConfig struct {
	Enabled bool `json:"enabled"`
	// Directory is the CA's ACME directory URL (LetsEncryptDirectory by
	// default, LetsEncryptStagingDirectory, Pebble's in local mode).
	Directory string `json:"directory,omitempty"`
	// DirectoryCA is PEM of extra roots trusted for the directory's HTTPS
	// (a test CA's own TLS certificate); "" trusts the system roots only.
	DirectoryCA string `json:"directory_ca,omitempty"`
	// Email is the account's contact, optional.
	Email string `json:"email,omitempty"`
	// RenewBefore is how long before expiry a certificate is renewed;
	// 0 is DefaultRenewBefore.
	RenewBefore Duration `json:"renew_before,omitempty"`
	// Resolvers are DNS servers (host:port) the leader asks whether a
	// challenge record is visible before the CA looks (local mode: the
	// fake cloud's); empty asks the zone's authoritative servers.
	Resolvers []string `json:"resolvers,omitempty"`
}

// ACME directories and defaults.
const (
	LetsEncryptDirectory        = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStagingDirectory = "https://acme-staging-v02.api.letsencrypt.org/directory"
	DefaultRenewBefore          = 30 * 24 * time.Hour
)

// RenewWindow is Config.RenewBefore or its default.
func (c ACMEConfig) RenewWindow() time.Duration {
	if c.RenewBefore > 0 {
		return c.RenewBefore.D()
	}
	return DefaultRenewBefore
}

// ACMEAccount is an account registered with a CA. The key is sealed.
type ACMEAccount struct {
	Directory string `json:"directory"`
	// URL is the account's location at the CA.
	URL string `json:"url"`
	// Key is the PEM private key, sealed under ACMEAccountKeyLabel.
	Key       Sealed    `json:"key"`
	Email     string    `json:"email,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// ACMEAccountKeyLabel is the associated data of the sealed account key.
const ACMEAccountKeyLabel = "acme_account_key"

// IssuedKeyLabel is the associated data of an issued certificate's sealed
// key (and of an order's), so a key cannot be moved to another certificate.
func IssuedKeyLabel(certName string) string { return "acme_cert_key:" + certName }

// Issued certificate states.
const (
	CertPending = "pending" // no certificate yet, an order is due or open
	CertValid   = "valid"   // the last order succeeded
	CertFailed  = "failed"  // the last order failed; the old chain, if any, is still served
)

// IssuedCert is a certificate obtained from the CA for a set of hosts.
type IssuedCert struct {
	Name string `json:"name"`
	// Service is the key of the service it is for ("" for a zone wildcard).
	Service string   `json:"service,omitempty"`
	Hosts   []string `json:"hosts"`
	// CertPEM is the chain, leaf first; "" until the first issuance.
	CertPEM string `json:"cert_pem,omitempty"`
	// Key is the PEM private key, sealed under IssuedKeyLabel(Name).
	Key       Sealed    `json:"key,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	IssuedAt  time.Time `json:"issued_at,omitzero"`
	// Directory is the CA directory the chain came from: a certificate of
	// another directory than the configured one is re-ordered (staging to
	// production).
	Directory string `json:"directory,omitempty"`
	Status    string `json:"status"`
	LastError string `json:"last_error,omitempty"`
	// Failures counts failed orders since the last success; NextAttempt is
	// the earliest time the duty tries again (its backoff, in the state so
	// that a new leader keeps it).
	Failures    int       `json:"failures,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Servable reports whether the certificate has a chain and key to serve.
func (c *IssuedCert) Servable() bool { return c.CertPEM != "" && c.Key != "" }

// CertNameForService names the certificate of a service's hosts.
func CertNameForService(serviceKey string) string { return "svc:" + serviceKey }

// CertNameForUI names the web UI host's certificate.
func CertNameForUI(host string) string { return "ui:" + host }

// CertNameForZone names a zone's wildcard certificate.
func CertNameForZone(zone string) string { return "zone:" + zone }

// Order intent states.
const (
	OrderOpen   = "open"
	OrderDone   = "done"
	OrderFailed = "failed"
)

// ACMEOrder is the intent of one order: committed before the CA is asked,
// with the key the CSR is made of, so a new leader finishing it submits
// the same CSR; URL is set once the CA has made the order.
type ACMEOrder struct {
	ID    string   `json:"id"`
	Cert  string   `json:"cert"`
	Hosts []string `json:"hosts"`
	Key   Sealed   `json:"key"`
	URL   string   `json:"url,omitempty"`
	// Directory is the configured CA directory when the intent was
	// recorded (set by the FSM from the state).
	Directory string    `json:"directory,omitempty"`
	Status    string    `json:"status"`
	Error     string    `json:"error,omitempty"`
	Node      string    `json:"node,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MaxACMEOrders bounds the finished orders kept for history.
const MaxACMEOrders = 200

// Event kinds of the ACME duty.
const (
	EventCertIssued = "cert.issued"
	EventCertFailed = "cert.failed"
)

func (a *ACME) fillMaps() {
	if a.Certs == nil {
		a.Certs = map[string]*IssuedCert{}
	}
	if a.Orders == nil {
		a.Orders = map[string]*ACMEOrder{}
	}
}

// OpenOrder returns the open order of a certificate, or nil.
func (a *ACME) OpenOrder(cert string) *ACMEOrder {
	for _, id := range slices.Sorted(maps.Keys(a.Orders)) {
		if o := a.Orders[id]; o.Cert == cert && o.Status == OrderOpen {
			return o
		}
	}
	return nil
}

// SetACMEConfig replaces the ACME configuration.
type SetACMEConfig struct {
	At     time.Time  `json:"at"`
	Config ACMEConfig `json:"config"`
}

// SetACMEAccount records the account registered with the CA.
type SetACMEAccount struct {
	At      time.Time   `json:"at"`
	Account ACMEAccount `json:"account"`
}

// RecordACMEOrder commits an order intent before the order is placed. It
// is refused while the certificate has another open order.
type RecordACMEOrder struct {
	At    time.Time `json:"at"`
	Order ACMEOrder `json:"order"`
}

// PlaceACMEOrder records the CA's URL of an open order.
type PlaceACMEOrder struct {
	At  time.Time `json:"at"`
	ID  string    `json:"id"`
	URL string    `json:"url"`
}

// ResolveACMEOrder closes an open order: with the issued chain (done) or
// an error and the time of the next attempt (failed, the old chain stays).
type ResolveACMEOrder struct {
	At          time.Time `json:"at"`
	ID          string    `json:"id"`
	Status      string    `json:"status"`
	CertPEM     string    `json:"cert_pem,omitempty"`
	Error       string    `json:"error,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
}

// DeleteIssuedCert removes a certificate whose hosts are no longer served
// (its service was undeployed), with its open orders.
type DeleteIssuedCert struct {
	At   time.Time `json:"at"`
	Name string    `json:"name"`
}

// Type implementations of the ACME commands.

func (*SetACMEConfig) Type() CommandType    { return CmdSetACMEConfig }
func (*SetACMEAccount) Type() CommandType   { return CmdSetACMEAccount }
func (*RecordACMEOrder) Type() CommandType  { return CmdRecordACMEOrder }
func (*PlaceACMEOrder) Type() CommandType   { return CmdPlaceACMEOrder }
func (*ResolveACMEOrder) Type() CommandType { return CmdResolveACMEOrder }
func (*DeleteIssuedCert) Type() CommandType { return CmdDeleteIssuedCert }

func validateDirectory(u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" || p.Host == "" || len(u) > 1024 {
		return invalidf("acme directory %q: want an https URL", u)
	}
	return nil
}

func validateCertName(name string) error {
	kind, rest, ok := strings.Cut(name, ":")
	if !ok || (kind != "svc" && kind != "zone" && kind != "ui") || rest == "" || len(name) > 300 || strings.ContainsAny(name, " \n\t") {
		return invalidf("certificate name %q: want svc:<service>, zone:<zone> or ui:<host>", name)
	}
	return nil
}

func validateCertHosts(hosts []string) error {
	if len(hosts) == 0 || len(hosts) > 100 {
		return invalidf("certificate hosts: want 1 to 100")
	}
	for _, h := range hosts {
		if err := ValidateHostname(h, true); err != nil {
			return fmt.Errorf("certificate host: %w", err)
		}
	}
	return nil
}

func applySetACMEConfig(s *State, c *SetACMEConfig) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	cfg := c.Config
	if cfg.Enabled || cfg.Directory != "" {
		if err := validateDirectory(cfg.Directory); err != nil {
			return nil, err
		}
	}
	if len(cfg.DirectoryCA) > MaxOriginCertPEM || len(cfg.Email) > 254 || strings.ContainsAny(cfg.Email, " \n\t,") {
		return nil, invalidf("acme config: directory CA over %d KiB or a bad email", MaxOriginCertPEM>>10)
	}
	if cfg.RenewBefore < 0 {
		return nil, invalidf("acme renew_before: negative")
	}
	if len(cfg.Resolvers) > 8 {
		return nil, invalidf("acme resolvers: at most 8")
	}
	for _, r := range cfg.Resolvers {
		if _, err := netip.ParseAddrPort(r); err != nil {
			return nil, invalidf("acme resolver %q: want ip:port", r)
		}
	}
	cfg.Resolvers = slices.Clone(cfg.Resolvers)
	s.ACME.Config = cfg
	return nil, nil
}

func applySetACMEAccount(s *State, c *SetACMEAccount) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	a := c.Account
	if err := validateDirectory(a.Directory); err != nil {
		return nil, err
	}
	if a.URL == "" || len(a.URL) > 1024 {
		return nil, invalidf("acme account url %q", a.URL)
	}
	if !a.Key.Valid() {
		return nil, invalidf("acme account: the key is not sealed")
	}
	a.CreatedAt = c.At
	s.ACME.Account = &a
	return nil, nil
}

func applyRecordACMEOrder(s *State, c *RecordACMEOrder) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	o := c.Order
	if err := validateID("acme order id", o.ID); err != nil {
		return nil, err
	}
	if _, ok := s.ACME.Orders[o.ID]; ok {
		return nil, fmt.Errorf("%w: acme order %s exists", ErrConflict, o.ID)
	}
	if err := validateCertName(o.Cert); err != nil {
		return nil, err
	}
	if err := validateCertHosts(o.Hosts); err != nil {
		return nil, err
	}
	if !o.Key.Valid() {
		return nil, invalidf("acme order: the key is not sealed")
	}
	if open := s.ACME.OpenOrder(o.Cert); open != nil {
		return nil, fmt.Errorf("%w: certificate %s has the open order %s", ErrConflict, o.Cert, open.ID)
	}
	s.ACME.Orders[o.ID] = &ACMEOrder{ID: o.ID, Cert: o.Cert, Hosts: slices.Clone(o.Hosts), Key: o.Key, Status: OrderOpen,
		Directory: s.ACME.Config.Directory, Node: o.Node, CreatedAt: c.At, UpdatedAt: c.At}
	cert := s.ACME.Certs[o.Cert]
	if cert == nil {
		cert = &IssuedCert{Name: o.Cert, Status: CertPending}
		s.ACME.Certs[o.Cert] = cert
	}
	if svc, ok := strings.CutPrefix(o.Cert, "svc:"); ok {
		cert.Service = svc
	}
	if !cert.Servable() {
		cert.Hosts = slices.Clone(o.Hosts)
	}
	cert.UpdatedAt = c.At
	s.ACME.trimOrders()
	return o.ID, nil
}

func (s *State) openOrder(id string) (*ACMEOrder, error) {
	o, ok := s.ACME.Orders[id]
	if !ok {
		return nil, fmt.Errorf("acme order %s: %w", id, ErrNotFound)
	}
	if o.Status != OrderOpen {
		return nil, fmt.Errorf("%w: acme order %s is already %s", ErrConflict, id, o.Status)
	}
	return o, nil
}

func applyPlaceACMEOrder(s *State, c *PlaceACMEOrder) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	o, err := s.openOrder(c.ID)
	if err != nil {
		return nil, err
	}
	if c.URL == "" || len(c.URL) > 1024 {
		return nil, invalidf("acme order url %q", c.URL)
	}
	if o.URL != "" && o.URL != c.URL {
		return nil, fmt.Errorf("%w: acme order %s was placed as %s", ErrConflict, c.ID, o.URL)
	}
	o.URL, o.UpdatedAt = c.URL, c.At
	return nil, nil
}

func applyResolveACMEOrder(s *State, c *ResolveACMEOrder) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	o, err := s.openOrder(c.ID)
	if err != nil {
		return nil, err
	}
	cert := s.ACME.Certs[o.Cert]
	switch c.Status {
	case OrderDone:
		leaf, err := ParseCertChain(c.CertPEM)
		if err != nil {
			return nil, fmt.Errorf("acme order %s: %w", c.ID, err)
		}
		if cert == nil { // deleted while the order was open: the order is moot
			o.Status, o.UpdatedAt = OrderDone, c.At
			return nil, nil
		}
		cert.CertPEM, cert.Key, cert.Hosts, cert.Directory = c.CertPEM, o.Key, slices.Clone(o.Hosts), o.Directory
		cert.NotBefore, cert.NotAfter, cert.IssuedAt = leaf.NotBefore.UTC(), leaf.NotAfter.UTC(), c.At
		cert.Status, cert.LastError, cert.Failures, cert.NextAttempt = CertValid, "", 0, time.Time{}
		s.event(c.At, EventCertIssued, SeverityInfo, fmt.Sprintf("certificate %s issued for %s, valid until %s",
			cert.Name, strings.Join(cert.Hosts, ", "), cert.NotAfter.Format(time.RFC3339)), func(e *Event) { e.Service = cert.Service })
	case OrderFailed:
		if c.Error == "" || len(c.Error) > 2000 {
			return nil, invalidf("acme order %s: a failure needs an error of 1-2000 characters", c.ID)
		}
		o.Error = c.Error
		if cert != nil {
			cert.Status, cert.LastError, cert.NextAttempt = CertFailed, c.Error, c.NextAttempt
			cert.Failures++
			msg := fmt.Sprintf("certificate %s for %s failed (attempt %d): %s", cert.Name, strings.Join(o.Hosts, ", "), cert.Failures, c.Error)
			if cert.Servable() {
				msg += fmt.Sprintf("; the current certificate (valid until %s) is still served", cert.NotAfter.Format(time.RFC3339))
			}
			s.event(c.At, EventCertFailed, SeverityError, msg, func(e *Event) { e.Service = cert.Service })
		}
	default:
		return nil, invalidf("acme order status %q: want done or failed", c.Status)
	}
	o.Status, o.UpdatedAt = c.Status, c.At
	if cert != nil {
		cert.UpdatedAt = c.At
	}
	s.ACME.trimOrders()
	return nil, nil
}

func applyDeleteIssuedCert(s *State, c *DeleteIssuedCert) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if _, ok := s.ACME.Certs[c.Name]; !ok {
		return nil, fmt.Errorf("certificate %s: %w", c.Name, ErrNotFound)
	}
	delete(s.ACME.Certs, c.Name)
	for _, o := range s.ACME.Orders {
		if o.Cert == c.Name && o.Status == OrderOpen {
			o.Status, o.Error, o.UpdatedAt = OrderFailed, "certificate deleted", c.At
		}
	}
	return nil, nil
}

// trimOrders drops the oldest finished orders past MaxACMEOrders.
func (a *ACME) trimOrders() {
	if len(a.Orders) <= MaxACMEOrders {
		return
	}
	var done []*ACMEOrder
	for _, o := range a.Orders {
		if o.Status != OrderOpen {
			done = append(done, o)
		}
	}
	slices.SortFunc(done, func(x, y *ACMEOrder) int {
		if c := x.UpdatedAt.Compare(y.UpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	for i := 0; i < len(done) && len(a.Orders) > MaxACMEOrders; i++ {
		delete(a.Orders, done[i].ID)
	}
}

// TLSSpec is a service's automatic HTTPS choice (spec field "tls").
type TLSSpec struct {
	// Auto: obtain a certificate for the hosts when ACME is enabled; nil
	// is true.
	Auto *bool `json:"auto,omitempty"`
	// Wildcard asks for the zone's wildcard certificate (*.zone) instead
	// of one for the service's hosts: one certificate shared by every
	// service of the zone that asks for it.
	Wildcard bool `json:"wildcard,omitempty"`
	// Redirect sends plain HTTP on port 80 to HTTPS for hosts that have a
	// certificate; nil is true.
	Redirect *bool `json:"redirect,omitempty"`
}

func (t *TLSSpec) clone() *TLSSpec {
	if t == nil {
		return nil
	}
	c := *t
	if t.Auto != nil {
		v := *t.Auto
		c.Auto = &v
	}
	if t.Redirect != nil {
		v := *t.Redirect
		c.Redirect = &v
	}
	return &c
}

// AutoTLS reports whether the service's hosts get an issued certificate.
func (s ServiceSpec) AutoTLS() bool {
	return s.Routed() && len(s.Hosts) > 0 && (s.TLS == nil || s.TLS.Auto == nil || *s.TLS.Auto)
}

// WildcardTLS reports whether the service asks for its zones' wildcard
// certificates.
func (s ServiceSpec) WildcardTLS() bool { return s.TLS != nil && s.TLS.Wildcard }

// RedirectHTTPS reports whether port 80 redirects to 443 for the service's
// hosts that have a certificate.
func (s ServiceSpec) RedirectHTTPS() bool {
	return s.TLS == nil || s.TLS.Redirect == nil || *s.TLS.Redirect
}
