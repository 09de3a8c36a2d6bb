package node

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/converge"
	"github.com/dropmesh/dropmesh/node/pki"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// The leader's side of enrollment: join tokens, joins and renewals. The
// leader signs with the CA key it unseals from the state; followers' APIs
// forward these requests to it.

// eventJoinRefused is the event of a refused join (unknown, used or expired
// token, or a name already taken).
const eventJoinRefused = "node.join.refused"

var _ control.Enroller = (*Agent)(nil)

// CreateJoinToken makes a one-time join token: a random value chosen here,
// outside Apply, of which only the hash is committed.
func (a *Agent) CreateJoinToken(ctx context.Context, req control.JoinTokenRequest) (control.JoinTokenInfo, error) {
	ttl := raftfsm.DefaultJoinTokenTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > raftfsm.MaxJoinTokenTTL {
			return control.JoinTokenInfo{}, fmt.Errorf("%w: ttl %q: want a duration from 1s to %s, such as 1h", raftfsm.ErrInvalid, req.TTL, raftfsm.MaxJoinTokenTTL)
		}
		ttl = d
	}
	if req.Node != "" {
		if err := raftfsm.ValidateNodeID(req.Node); err != nil {
			return control.JoinTokenInfo{}, err
		}
	}
	purpose := req.Purpose
	if purpose == "" {
		purpose = "api"
	}
	return a.newJoinToken(ctx, req.Node, purpose, ttl)
}

// newJoinToken commits a join token's hash and returns the token.
func (a *Agent) newJoinToken(ctx context.Context, node, purpose string, ttl time.Duration) (control.JoinTokenInfo, error) {
	if !a.store.IsLeader() {
		return control.JoinTokenInfo{}, raftfsm.ErrNotLeader
	}
	token, hash, err := raftfsm.NewJoinToken()
	if err != nil {
		return control.JoinTokenInfo{}, err
	}
	now := a.now()
	expires := now.Add(ttl)
	if err := a.commitJoinToken(ctx, hash, node, purpose, now, expires); err != nil {
		return control.JoinTokenInfo{}, fmt.Errorf("join token: %w", err)
	}
	return control.JoinTokenInfo{Token: token, CAFingerprint: a.CAFingerprint(), ExpiresAt: expires, Node: node}, nil
}

// Join lets a new node in: its token is used (once: the command refuses an
// unknown, used or expired one, atomically), its certificate signed for the
// identity the leader decides, and the cluster's keys handed over.
func (a *Agent) Join(ctx context.Context, req control.JoinRequest, remoteIP string) (control.JoinAnswer, error) {
	if !a.store.IsLeader() {
		return control.JoinAnswer{}, raftfsm.ErrNotLeader
	}
	if err := raftfsm.ValidateNodeID(req.NodeID); err != nil {
		return control.JoinAnswer{}, err
	}
	ip := net.ParseIP(req.IP)
	if ip == nil || ip.IsUnspecified() {
		return control.JoinAnswer{}, fmt.Errorf("%w: ip %q is not a node address", raftfsm.ErrInvalid, req.IP)
	}
	if _, err := pki.ParseCSR([]byte(req.CSR)); err != nil {
		return control.JoinAnswer{}, fmt.Errorf("%w: certificate request: %v", raftfsm.ErrInvalid, err)
	}
	if err := a.nodeIDFree(req.NodeID); err != nil {
		a.joinRefused(ctx, req, remoteIP, err)
		return control.JoinAnswer{}, err
	}
	if err := a.useJoinToken(ctx, raftfsm.HashJoinToken(req.Token), req.NodeID); err != nil {
		a.joinRefused(ctx, req, remoteIP, err)
		return control.JoinAnswer{}, err
	}
	id := pki.Identity{NodeID: req.NodeID, IPs: []net.IP{ip}}
	cert, err := a.signNodeCert(ctx, []byte(req.CSR), id)
	if err != nil {
		return control.JoinAnswer{}, err
	}
	var g raftfsm.GossipKeyring
	var clusterName string
	a.fsm.View(func(s *raftfsm.State) { g, clusterName = s.Gossip, s.Settings.ClusterName })
	keys, err := converge.WantedGossipKeys(g, a.keys.Sealer, a.keys.GossipKey)
	if err != nil {
		return control.JoinAnswer{}, fmt.Errorf("join %s: gossip keys: %w", req.NodeID, err)
	}
	if clusterName == "" {
		clusterName = a.cfg.ClusterName
	}
	_, _ = a.apply(ctx, &raftfsm.AppendEvent{At: a.now(), Event: raftfsm.Event{Kind: raftfsm.EventNodeJoined, Severity: raftfsm.SeverityInfo,
		Node: req.NodeID, Message: fmt.Sprintf("node %s (%s, from %s) joined with a join token; certificate %s until %s",
			req.NodeID, req.IP, remoteIP, cert.Serial, cert.NotAfter.Format(time.RFC3339))}})
	a.logger.Info("a node joined with a join token", "target", req.NodeID, "ip", req.IP, "from", remoteIP, "serial", cert.Serial)
	return control.JoinAnswer{Certificate: cert.Certificate, CA: string(a.creds.CAPEM()), ClusterSecret: a.secret.String(),
		GossipKeys: converge.EncodeGossipKeys(keys), ClusterName: clusterName}, nil
}

// joinRefused records a refused join in the events.
func (a *Agent) joinRefused(ctx context.Context, req control.JoinRequest, remoteIP string, why error) {
	a.logger.Warn("join refused", "target", req.NodeID, "from", remoteIP, "err", why)
	_, _ = a.apply(ctx, &raftfsm.AppendEvent{At: a.now(), Event: raftfsm.Event{Kind: eventJoinRefused, Severity: raftfsm.SeverityWarn,
		Node: req.NodeID, Message: fmt.Sprintf("refused a join as %s from %s: %v", req.NodeID, remoteIP, why)}})
}

// nodeIDFree refuses a join that would give a second machine the identity of
// a node the cluster knows: a token cannot buy another node's name.
func (a *Agent) nodeIDFree(id string) error {
	var known bool
	a.fsm.View(func(s *raftfsm.State) { _, known = s.Nodes[id] })
	if known || id == a.cfg.NodeID {
		return fmt.Errorf("%w: node %s is already a member; a joining node needs a new id (remove the old node first)", control.ErrForbidden, id)
	}
	return nil
}

// RenewCertificate signs a fresh certificate for a member, from its request:
// the identity (node id, address) is the one the state knows for that node.
func (a *Agent) RenewCertificate(ctx context.Context, nodeID string, csrPEM []byte) (control.CertificateAnswer, error) {
	if !a.store.IsLeader() {
		return control.CertificateAnswer{}, raftfsm.ErrNotLeader
	}
	if _, err := pki.ParseCSR(csrPEM); err != nil {
		return control.CertificateAnswer{}, fmt.Errorf("%w: certificate request: %v", raftfsm.ErrInvalid, err)
	}
	var ip string
	var found bool
	a.fsm.View(func(s *raftfsm.State) {
		if n, ok := s.Nodes[nodeID]; ok {
			ip, found = n.PrivateIP, true
		}
	})
	if nodeID == a.cfg.NodeID {
		ip, found = a.cfg.AdvertiseIP, true
	}
	if !found || net.ParseIP(ip) == nil {
		return control.CertificateAnswer{}, fmt.Errorf("%w: node %s is not a member with an address; it cannot renew", control.ErrForbidden, nodeID)
	}
	return a.signNodeCert(ctx, csrPEM, pki.Identity{NodeID: nodeID, IPs: []net.IP{net.ParseIP(ip)}})
}

// signNodeCert signs a certificate with the CA key from the state and
// records it (node, serial, expiry) before handing it out.
func (a *Agent) signNodeCert(ctx context.Context, csrPEM []byte, id pki.Identity) (control.CertificateAnswer, error) {
	ca, err := a.clusterCA()
	if err != nil {
		return control.CertificateAnswer{}, err
	}
	certPEM, serial, notAfter, err := ca.Sign(csrPEM, id, a.now(), a.cfg.CertValidity)
	if err != nil {
		return control.CertificateAnswer{}, fmt.Errorf("%w: %v", raftfsm.ErrInvalid, err)
	}
	cert, err := pki.ParseCertificate(certPEM)
	if err != nil {
		return control.CertificateAnswer{}, err
	}
	if err := a.recordCert(ctx, id.NodeID, serial, cert.NotBefore, notAfter); err != nil {
		return control.CertificateAnswer{}, fmt.Errorf("record the certificate of %s: %w", id.NodeID, err)
	}
	return control.CertificateAnswer{Certificate: string(certPEM), Serial: serial, NotAfter: notAfter}, nil
}

// renewOwn is this node's pki.RenewFunc: the leader signs its own; others
// ask the leader over mutual TLS with their current certificate.
func (a *Agent) renewOwn(ctx context.Context, csrPEM []byte) ([]byte, error) {
	if a.store.IsLeader() {
		ans, err := a.RenewCertificate(ctx, a.cfg.NodeID, csrPEM)
		return []byte(ans.Certificate), err
	}
	_, api := a.Leader()
	if api == "" {
		return nil, control.ErrNoLeader
	}
	c, err := a.peers.to(api)
	if err != nil {
		return nil, err
	}
	ans, err := c.RenewCertificate(ctx, csrPEM)
	return []byte(ans.Certificate), err
}

// runRenewer renews this node's certificate after two thirds of its life,
// without a restart: listeners and clients take the new one at their next
// handshake.
func (a *Agent) runRenewer(ctx context.Context) {
	r := &pki.Renewer{Creds: a.creds, Renew: a.renewOwn, Dir: a.cfg.tlsDir(), Logger: a.logger, MaxBackoff: time.Minute}
	if err := r.Run(ctx); err != nil && ctx.Err() == nil {
		a.logger.Error("certificate renewal stopped", "err", err)
	}
}
