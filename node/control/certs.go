package control

import "time"

// CertInfo is one TLS certificate of the edge as GET /v1/certs shows it:
// an issued one (source "acme") or an uploaded origin certificate (source
// "uploaded", named by its zone). Never a key.
type CertInfo struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	// Zone is an uploaded certificate's zone.
	Zone        string     `json:"zone,omitempty"`
	Service     string     `json:"service,omitempty"`
	Hosts       []string   `json:"hosts"`
	Status      string     `json:"status"`
	NotAfter    *time.Time `json:"not_after,omitempty"`
	IssuedAt    *time.Time `json:"issued_at,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	Failures    int        `json:"failures,omitempty"`
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
}

// CertsInfo is GET /v1/certs: the ACME CA in use and every certificate.
type CertsInfo struct {
	ACME  ACMEInfo   `json:"acme"`
	Certs []CertInfo `json:"certs"`
}

// ACMEInfo is the ACME configuration without its secrets (there are none
// but the account key, which is never shown).
type ACMEInfo struct {
	Enabled     bool   `json:"enabled"`
	Directory   string `json:"directory,omitempty"`
	Email       string `json:"email,omitempty"`
	RenewBefore string `json:"renew_before"`
	Account     string `json:"account,omitempty"`
}
