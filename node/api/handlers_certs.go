package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// listCerts answers GET /v1/certs: issued certificates, then uploaded ones.
func (s *server) listCerts(c *gin.Context) {
	out := control.CertsInfo{Certs: []control.CertInfo{}}
	s.ctrl.View(func(st *raftfsm.State) {
		cfg := st.ACME.Config
		out.ACME = control.ACMEInfo{Enabled: cfg.Enabled, Directory: cfg.Directory, Email: cfg.Email, RenewBefore: raftfsm.Duration(cfg.RenewWindow()).String()}
		if a := st.ACME.Account; a != nil && a.Directory == cfg.Directory {
			out.ACME.Account = a.URL
		}
		for _, name := range raftfsm.SortedKeys(st.ACME.Certs) {
			ic := st.ACME.Certs[name]
			info := control.CertInfo{Name: name, Source: "acme", Service: ic.Service, Hosts: append([]string{}, ic.Hosts...), Status: ic.Status,
				LastError: ic.LastError, Failures: ic.Failures}
			if ic.Servable() {
				na, ia := ic.NotAfter, ic.IssuedAt
				info.NotAfter, info.IssuedAt = &na, &ia
			}
			if !ic.NextAttempt.IsZero() {
				next := ic.NextAttempt
				info.NextAttempt = &next
			}
			out.Certs = append(out.Certs, info)
		}
		for _, zone := range raftfsm.SortedKeys(st.OriginCerts) {
			oc := st.OriginCerts[zone]
			na := oc.NotAfter
			info := control.CertInfo{Name: zone, Source: "uploaded", Zone: zone, Hosts: []string{}, Status: raftfsm.CertValid, NotAfter: &na}
			if leaf, err := raftfsm.ParseCertChain(oc.CertPEM); err == nil {
				info.Hosts = append(info.Hosts, leaf.DNSNames...)
			}
			out.Certs = append(out.Certs, info)
		}
	})
	ok(c, out)
}

// putACME answers PUT /v1/acme.
func (s *server) putACME(c *gin.Context) {
	var req control.ACMERequest
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	req.Email = strings.TrimSpace(req.Email)
	cfg, err := req.Config()
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.ctrl.SetACMEConfig(c.Request.Context(), cfg); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusNoContent, nil)
}
