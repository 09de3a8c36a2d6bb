package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mholt/acmez/v3/acme"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// fulfil takes an order from wherever it is to a downloaded chain. An
// order without a CA URL is placed first and its URL committed; one with
// a URL is fetched and continued, never placed again.
func (d *duty) fulfil(ctx context.Context, st snapshot, o raftfsm.ACMEOrder) (string, error) {
	certKey, err := openKey(d.cfg, raftfsm.IssuedKeyLabel(o.Cert), o.Key)
	if err != nil {
		return "", fmt.Errorf("open the order's key: %w", err)
	}
	cl, err := d.client(st.config)
	if err != nil {
		return "", err
	}
	acct, err := d.account(ctx, cl, st)
	if err != nil {
		return "", err
	}
	var order acme.Order
	if o.URL == "" {
		ids := make([]acme.Identifier, len(o.Hosts))
		for i, h := range o.Hosts {
			ids[i] = acme.Identifier{Type: "dns", Value: h}
		}
		order, err = cl.NewOrder(ctx, acct, acme.Order{Identifiers: ids})
		if err != nil {
			return "", fmt.Errorf("place the order: %w", err)
		}
		if _, err := d.src.Apply(ctx, &raftfsm.PlaceACMEOrder{At: d.cfg.Now(), ID: o.ID, URL: order.Location}); err != nil {
			// The CA's order is never finalized: it cannot complete twice.
			return "", fmt.Errorf("%w: commit the order's URL: %v", errAborted, err)
		}
	} else {
		order, err = cl.GetOrder(ctx, acct, acme.Order{Location: o.URL})
		if err != nil {
			return "", fmt.Errorf("fetch the open order %s: %w", o.URL, err)
		}
	}
	if order.Status == acme.StatusPending {
		dnsc, err := d.dns()
		if err != nil {
			return "", err
		}
		for _, u := range order.Authorizations {
			if err := d.authorize(ctx, cl, acct, dnsc, st.config.Resolvers, u); err != nil {
				return "", err
			}
		}
		if order, err = cl.GetOrder(ctx, acct, order); err != nil {
			return "", fmt.Errorf("fetch the order after its authorizations: %w", err)
		}
	}
	if order.Status == acme.StatusReady {
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: o.Hosts}, certKey)
		if err != nil {
			return "", fmt.Errorf("make the CSR: %w", err)
		}
		if order, err = cl.FinalizeOrder(ctx, acct, order, csr); err != nil {
			return "", fmt.Errorf("finalize the order: %w", err)
		}
	}
	for order.Status == acme.StatusProcessing {
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w: %v", errAborted, ctx.Err())
		case <-time.After(d.cfg.PollInterval):
		}
		if order, err = cl.GetOrder(ctx, acct, order); err != nil {
			return "", fmt.Errorf("poll the order: %w", err)
		}
	}
	if order.Status != acme.StatusValid {
		if order.Error != nil {
			return "", fmt.Errorf("the order is %s: %w", order.Status, order.Error)
		}
		return "", fmt.Errorf("the order is %s", order.Status)
	}
	chains, err := cl.GetCertificateChain(ctx, acct, order.Certificate)
	if err != nil {
		return "", fmt.Errorf("download the certificate: %w", err)
	}
	if len(chains) == 0 {
		return "", errors.New("download the certificate: the CA offered no chain")
	}
	return string(chains[0].ChainPEM), nil
}

// authorize solves one authorization with DNS-01 unless it is valid
// already (authorizations of a resumed order, or reused by the CA).
func (d *duty) authorize(ctx context.Context, cl *acme.Client, acct acme.Account, dnsc cloudops.ChallengeDNS, resolvers []string, authzURL string) error {
	authz, err := cl.GetAuthorization(ctx, acct, authzURL)
	if err != nil {
		return fmt.Errorf("fetch authorization %s: %w", authzURL, err)
	}
	host := authz.IdentifierValue()
	switch authz.Status {
	case acme.StatusValid:
		return nil
	case acme.StatusPending:
	default:
		return fmt.Errorf("authorization of %s is %s", host, authz.Status)
	}
	var chal *acme.Challenge
	for i := range authz.Challenges {
		if authz.Challenges[i].Type == acme.ChallengeTypeDNS01 {
			chal = &authz.Challenges[i]
		}
	}
	if chal == nil {
		return fmt.Errorf("authorization of %s offers no dns-01 challenge", host)
	}
	zone, err := dnsc.FindZone(ctx, authz.Identifier.Value)
	if err != nil {
		return fmt.Errorf("zone of %s: %w", host, err)
	}
	value := chal.DNS01KeyAuthorization()
	if _, err := dnsc.PresentChallenge(ctx, zone.ID, authz.Identifier.Value, value); err != nil {
		return err
	}
	defer func() {
		// The record goes whatever happened, even when ctx is done.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := dnsc.CleanupChallenge(cctx, zone.ID, authz.Identifier.Value, value); err != nil {
			d.cfg.Logger.Warn("remove the challenge record", "host", host, "err", err)
		}
	}()
	if err := d.waitVisible(ctx, resolvers, zone.Name, chal.DNS01TXTRecordName(), value); err != nil {
		return err
	}
	if _, err := cl.InitiateChallenge(ctx, acct, *chal); err != nil {
		return fmt.Errorf("start the dns-01 challenge of %s: %w", host, err)
	}
	if _, err := cl.PollAuthorization(ctx, acct, authz); err != nil {
		return fmt.Errorf("dns-01 challenge of %s: %w", host, err)
	}
	return nil
}

// dns builds the Cloudflare client.
func (d *duty) dns() (cloudops.ChallengeDNS, error) {
	if d.cfg.DNS == nil {
		return nil, errors.New("no Cloudflare client: set the cluster's Cloudflare token")
	}
	c, err := d.cfg.DNS()
	if err != nil {
		return nil, fmt.Errorf("cloudflare client: %w", err)
	}
	if c == nil {
		return nil, errors.New("no Cloudflare client: set the cluster's Cloudflare token")
	}
	return c, nil
}

// client is an ACME client for the configured directory, trusting its
// extra CA if one is set.
func (d *duty) client(cfg raftfsm.ACMEConfig) (*acme.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.DirectoryCA != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(cfg.DirectoryCA)) {
			return nil, errors.New("acme directory CA: no PEM certificate")
		}
		tlsCfg.RootCAs = pool
	}
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment}}
	return &acme.Client{Directory: cfg.Directory, HTTPClient: hc, UserAgent: "dropmesh", Logger: d.cfg.Logger.With("acme", "client"),
		PollInterval: d.cfg.PollInterval, PollTimeout: d.cfg.PollTimeout}, nil
}

// account returns the registered account of the directory, registering a
// new one (and committing it) when there is none.
func (d *duty) account(ctx context.Context, cl *acme.Client, st snapshot) (acme.Account, error) {
	if a := st.account; a != nil && a.Directory == st.config.Directory {
		key, err := openKey(d.cfg, raftfsm.ACMEAccountKeyLabel, a.Key)
		if err != nil {
			return acme.Account{}, fmt.Errorf("open the ACME account key: %w", err)
		}
		return acme.Account{Status: acme.StatusValid, Location: a.URL, PrivateKey: key}, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return acme.Account{}, fmt.Errorf("account key: %w", err)
	}
	want := acme.Account{TermsOfServiceAgreed: true, PrivateKey: key}
	if e := strings.TrimSpace(st.config.Email); e != "" {
		want.Contact = []string{"mailto:" + e}
	}
	acct, err := cl.NewAccount(ctx, want)
	if err != nil {
		return acme.Account{}, fmt.Errorf("register the ACME account at %s: %w", st.config.Directory, err)
	}
	sealed, err := sealKey(d.cfg, raftfsm.ACMEAccountKeyLabel, key)
	if err != nil {
		return acme.Account{}, err
	}
	if _, err := d.src.Apply(ctx, &raftfsm.SetACMEAccount{At: d.cfg.Now(), Account: raftfsm.ACMEAccount{
		Directory: st.config.Directory, URL: acct.Location, Key: sealed, Email: st.config.Email}}); err != nil {
		return acme.Account{}, fmt.Errorf("%w: commit the ACME account: %v", errAborted, err)
	}
	d.cfg.Logger.Info("ACME account registered", "directory", st.config.Directory, "account", acct.Location)
	return acct, nil
}
