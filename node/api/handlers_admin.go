package api

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/egress"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Events, snapshots, state, users, settings, webhooks, registries, reports.

func (s *server) listEvents(c *gin.Context) {
	q := s.query(c)
	since := q.uint("since")
	limit := int(q.int("limit", 100, 1, control.MaxEventsPage))
	kind := q.str("kind")
	if kind != "" && !kindPattern.MatchString(kind) {
		q.failf("query parameter kind=%q: want an event kind or prefix such as deploy. or heal.restart", kind)
	}
	if !q.check() {
		return
	}
	n, filter, good := s.serviceFilter(c)
	if !good {
		return
	}
	out := []raftfsm.Event{}
	s.ctrl.View(func(st *raftfsm.State) {
		key := ""
		if filter {
			w := st.ResolveWorkspace(n.Workspace)
			if w == nil {
				return
			}
			key = raftfsm.ServiceKey(w.ID, n.Project, n.Env, n.Service)
		}
		for _, e := range st.Events.Since(since, 0) {
			if (key == "" || e.Service == key) && strings.HasPrefix(e.Kind, kind) {
				out = append(out, e)
			}
		}
	})
	// With since, page forward (the oldest first); without, the newest.
	if len(out) > limit {
		if c.Query("since") != "" {
			out = out[:limit]
		} else {
			out = out[len(out)-limit:]
		}
	}
	ok(c, out)
}

func (s *server) listSnapshots(c *gin.Context) {
	out := []raftfsm.Snapshot{}
	s.ctrl.View(func(st *raftfsm.State) {
		for _, name := range raftfsm.SortedKeys(st.Cloud.Snapshots) {
			out = append(out, cloneSnapshot(st.Cloud.Snapshots[name]))
		}
	})
	ok(c, out)
}

func (s *server) createSnapshot(c *gin.Context) {
	var req control.SnapshotRequest
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := raftfsm.ValidateSnapshotName(req.Name); err != nil {
		s.fail(c, err)
		return
	}
	if err := raftfsm.ValidateContextDigest(req.Context); err != nil {
		s.fail(c, err)
		return
	}
	for _, r := range req.Regions {
		if err := raftfsm.ValidateRegion(r); err != nil {
			s.fail(c, err)
			return
		}
	}
	if err := s.ctrl.CreateSnapshot(c.Request.Context(), req); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusAccepted, nil)
}

func (s *server) exportState(c *gin.Context) {
	secrets := c.Query("secrets")
	if secrets != "" && secrets != "plain" {
		invalid(c, fmt.Sprintf("query parameter secrets=%q: the only value is plain", secrets))
		return
	}
	doc, err := s.ctrl.ExportState(c.Request.Context(), secrets == "plain")
	if err != nil {
		s.fail(c, err)
		return
	}
	if secrets == "plain" {
		c.Header("Cache-Control", "no-store")
	}
	ok(c, doc)
}

func (s *server) importState(c *gin.Context) {
	doc, err := raftfsm.ReadExport(c.Request.Body, s.opts.Limits.MaxStateBytes)
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.ctrl.ImportState(c.Request.Context(), doc)
	if err != nil {
		s.fail(c, err)
		return
	}
	if res.Services == nil {
		res.Services = []string{}
	}
	ok(c, res)
}

func (s *server) listUsers(c *gin.Context) {
	out := []control.UserInfo{}
	s.ctrl.View(func(st *raftfsm.State) {
		for _, name := range raftfsm.SortedKeys(st.Users) {
			u := st.Users[name]
			out = append(out, control.UserInfo{Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt})
		}
	})
	ok(c, out)
}

func (s *server) putUser(c *gin.Context) {
	var req control.UserRequest
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := raftfsm.ValidateUserName(req.Name); err != nil {
		s.fail(c, err)
		return
	}
	if !req.Role.Valid() {
		invalid(c, fmt.Sprintf("role %q: want admin, deployer or viewer", req.Role))
		return
	}
	if err := s.ctrl.PutUser(c.Request.Context(), req); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusNoContent, nil)
}

func (s *server) deleteUser(c *gin.Context) {
	name := c.Param("name")
	if err := raftfsm.ValidateUserName(name); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.ctrl.DeleteUser(c.Request.Context(), name); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusNoContent, nil)
}

func (s *server) getSettings(c *gin.Context) {
	var out raftfsm.Settings
	s.ctrl.View(func(st *raftfsm.State) { out = redactSettings(st.Settings) })
	ok(c, out)
}

func (s *server) patchSettings(c *gin.Context) {
	var req control.SettingsRequest
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	for _, r := range req.Regions {
		if err := raftfsm.ValidateRegion(r); err != nil {
			s.fail(c, err)
			return
		}
	}
	if err := s.ctrl.UpdateSettings(c.Request.Context(), req); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusNoContent, nil)
}

func (s *server) listWebhooks(c *gin.Context) {
	out := []raftfsm.Webhook{}
	s.ctrl.View(func(st *raftfsm.State) {
		for _, id := range raftfsm.SortedKeys(st.Webhooks) {
			out = append(out, cloneWebhook(st.Webhooks[id]))
		}
	})
	ok(c, out)
}

func (s *server) putWebhook(c *gin.Context) {
	var w raftfsm.Webhook
	if err := decodeJSON(c.Request.Body, &w); err != nil {
		s.fail(c, err)
		return
	}
	if w.ID == "" {
		b := make([]byte, 6)
		if _, err := rand.Read(b); err != nil {
			s.fail(c, fmt.Errorf("make webhook id: %w", err))
			return
		}
		w.ID = "hook-" + hex.EncodeToString(b)
	}
	if err := validateID("webhook id", w.ID); err != nil {
		s.fail(c, err)
		return
	}
	if u, err := url.Parse(w.URL); err == nil && u.Host != "" {
		// The message names the host only: the URL carries the token.
		if err := s.checkEgressHost(c.Request.Context(), "webhook", u.Hostname(), u.Host); err != nil {
			s.fail(c, err)
			return
		}
	}
	if err := s.ctrl.PutWebhook(c.Request.Context(), w); err != nil {
		s.fail(c, err)
		return
	}
	s.ctrl.View(func(st *raftfsm.State) {
		if stored, ok := st.Webhooks[w.ID]; ok {
			w = cloneWebhook(stored)
		}
	})
	respond(c, http.StatusCreated, w)
}

func (s *server) deleteWebhook(c *gin.Context) {
	id := c.Param("id")
	if err := validateID("webhook id", id); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.ctrl.DeleteWebhook(c.Request.Context(), id); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusNoContent, nil)
}

func (s *server) listRegistries(c *gin.Context) {
	out := []control.RegistryInfo{}
	s.ctrl.View(func(st *raftfsm.State) {
		for _, r := range raftfsm.SortedKeys(st.Registries) {
			out = append(out, control.RegistryInfo{Registry: r, Username: st.Registries[r].Username})
		}
	})
	ok(c, out)
}

func (s *server) putRegistry(c *gin.Context) {
	var req control.RegistryRequest
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := validateRegistry(req.Registry); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.checkEgressHost(c.Request.Context(), "registry", req.Registry, req.Registry); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.ctrl.PutRegistry(c.Request.Context(), req); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusNoContent, nil)
}

func (s *server) deleteRegistry(c *gin.Context) {
	r := c.Param("registry")
	if err := validateRegistry(r); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.ctrl.DeleteRegistry(c.Request.Context(), r); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusNoContent, nil)
}

func (s *server) gossipKeys(c *gin.Context) {
	info, err := s.ctrl.GossipKeys(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	ok(c, info)
}

func (s *server) rotateGossipKey(c *gin.Context) {
	info, err := s.ctrl.RotateGossipKey(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusAccepted, info)
}

func (s *server) getCA(c *gin.Context) {
	var info control.CAInfo
	found := false
	s.ctrl.View(func(st *raftfsm.State) {
		p := &st.PKI
		if p.CACertPEM == "" {
			return
		}
		found = true
		info = control.CAInfo{Subject: p.CASubject, Fingerprint: p.CAFingerprint, NotAfter: p.CANotAfter, CreatedAt: p.CreatedAt,
			CertPEM: p.CACertPEM, Certs: []control.NodeCertInfo{}}
		for _, serial := range raftfsm.SortedKeys(p.Certs) {
			nc := p.Certs[serial]
			ci := control.NodeCertInfo{Node: nc.Node, Serial: nc.Serial, NotBefore: nc.NotBefore, NotAfter: nc.NotAfter}
			if r, ok := p.Revoked[serial]; ok {
				at := r.At
				ci.Revoked, ci.RevokedAt, ci.Reason = true, &at, r.Reason
			}
			info.Certs = append(info.Certs, ci)
		}
	})
	if !found {
		s.fail(c, fmt.Errorf("cluster CA: %w (the cluster has not created one yet)", raftfsm.ErrNotFound))
		return
	}
	slices.SortStableFunc(info.Certs, func(a, b control.NodeCertInfo) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), a.NotAfter.Compare(b.NotAfter))
	})
	ok(c, info)
}

func (s *server) listOriginCerts(c *gin.Context) {
	out := []control.OriginCertInfo{}
	s.ctrl.View(func(st *raftfsm.State) {
		for _, zone := range raftfsm.SortedKeys(st.OriginCerts) {
			oc := st.OriginCerts[zone]
			info := control.OriginCertInfo{Zone: zone, NotAfter: oc.NotAfter, UpdatedAt: oc.UpdatedAt, Names: []string{}}
			if leaf, err := raftfsm.ParseCertChain(oc.CertPEM); err == nil {
				info.Names = append(info.Names, leaf.DNSNames...)
			}
			out = append(out, info)
		}
	})
	ok(c, out)
}

func (s *server) putOriginCert(c *gin.Context) {
	zone := c.Param("zone")
	if err := raftfsm.ValidateHostname(zone, false); err != nil {
		s.fail(c, fmt.Errorf("origin certificate zone: %w", err))
		return
	}
	var req control.OriginCertRequest
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.ctrl.PutOriginCert(c.Request.Context(), zone, req.CertPEM, req.KeyPEM); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusNoContent, nil)
}

func (s *server) deleteOriginCert(c *gin.Context) {
	zone := c.Param("zone")
	if err := raftfsm.ValidateHostname(zone, false); err != nil {
		s.fail(c, fmt.Errorf("origin certificate zone: %w", err))
		return
	}
	if err := s.ctrl.DeleteOriginCert(c.Request.Context(), zone); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusNoContent, nil)
}

func (s *server) commitCommand(c *gin.Context) {
	data, err := io.ReadAll(c.Request.Body)
	if err != nil {
		s.fail(c, fmt.Errorf("read command: %w", err))
		return
	}
	cmd, err := raftfsm.Decode(data)
	if err != nil {
		s.fail(c, fmt.Errorf("%w: command: %v", raftfsm.ErrInvalid, err))
		return
	}
	if node, named := reportingNode(cmd); named && node != callerNode(c) {
		abortWith(c, http.StatusForbidden, control.CodeForbidden, fmt.Sprintf("a %s for node %s came with node %s's certificate: a node reports only for itself",
			cmd.Type(), node, callerNode(c)))
		return
	}
	v, err := s.ctrl.Commit(c.Request.Context(), cmd)
	if err != nil {
		s.fail(c, err)
		return
	}
	ok(c, control.CommitResult{Value: v})
}

// reportingNode is the node a report speaks for, when its type names one:
// only that node's certificate may send it.
func reportingNode(cmd raftfsm.Command) (string, bool) {
	switch c := cmd.(type) {
	case *raftfsm.ReportInstances:
		return c.Node, true
	case *raftfsm.ReportHealth:
		return c.Node, true
	case *raftfsm.RecordCronRun:
		return c.Node, true
	case *raftfsm.PutBuildContext:
		return c.Node, true
	}
	return "", false
}

// checkEgressHost refuses a target (a webhook's host, a registry) at a
// loopback, link-local or, unless the cluster's egress_allow names its
// range, private address, before anything is stored: a clear 400 rather
// than a delivery refused later. A name is resolved here and refused when
// any of its addresses is (a name that does not resolve yet is accepted:
// nothing is known about it). For webhooks node/egress checks again at
// dial time, also for names that re-resolve elsewhere; for a registry this
// is the only check, since the nodes' Docker dials it, out of dropmesh's
// reach. what names the target in the message, hostport is shown.
func (s *server) checkEgressHost(ctx context.Context, what, hostport, shown string) error {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return fmt.Errorf("%w: %s %q: a loopback target is refused (it would be each node itself)", raftfsm.ErrInvalid, what, shown)
	}
	var ranges []string
	s.ctrl.View(func(st *raftfsm.State) { ranges = slices.Clone(st.Settings.EgressAllow) })
	allow, _ := egress.ParseAllowed(ranges)
	policy := egress.Policy{Allow: allow}
	addr, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err == nil {
		if err := policy.Check(addr); err != nil {
			return fmt.Errorf("%w: %s %q: %v", raftfsm.ErrInvalid, what, shown, err)
		}
		return nil
	}
	lookup := s.opts.LookupHost
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	addrs, err := lookup(ctx, strings.TrimSuffix(host, "."))
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if err := policy.Check(a.Unmap()); err != nil {
			return fmt.Errorf("%w: %s %q resolves to %s: %v", raftfsm.ErrInvalid, what, shown, a, err)
		}
	}
	return nil
}
