package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// SnapshotPhaseBuild is the phase of a custom snapshot whose context is
// being built (followed by the context's digest): the source node's cue.
const SnapshotPhaseBuild = "building image"

// CreateSnapshot starts a custom snapshot: a node builds the uploaded
// context as local/base:latest, then the leader snapshots that node's
// droplet under the given name and replicates it to every region, in the
// background (the snapshot's phase and progress show in the state).
func (c *Controller) CreateSnapshot(ctx context.Context, req control.SnapshotRequest) error {
	if err := raftfsm.ValidateSnapshotName(req.Name); err != nil {
		return err
	}
	if err := raftfsm.ValidateContextDigest(req.Context); err != nil {
		return err
	}
	for _, r := range req.Regions {
		if err := raftfsm.ValidateRegion(r); err != nil {
			return err
		}
	}
	var (
		source  string
		regions []string
		err     error
	)
	c.node.View(func(s *raftfsm.State) {
		if _, ok := s.Contexts[req.Context]; !ok {
			err = fmt.Errorf("%w: build context %s was not uploaded", raftfsm.ErrInvalid, req.Context)
			return
		}
		if sn, ok := s.Cloud.Snapshots[req.Name]; ok && sn.Status != raftfsm.SnapshotFailed {
			err = fmt.Errorf("%w: snapshot %s exists (%s)", raftfsm.ErrConflict, req.Name, sn.Status)
			return
		}
		regions = slices.Clone(req.Regions)
		if len(regions) == 0 {
			regions = slices.Clone(s.Settings.Regions)
		}
		best := -1
		for _, id := range raftfsm.SortedKeys(s.Nodes) {
			n := s.Nodes[id]
			if n.Status != raftfsm.NodeActive || n.DropletID == 0 {
				continue
			}
			if load := len(s.InstancesOn(id)); best < 0 || load < best {
				source, best = id, load
			}
		}
	})
	if err != nil {
		return err
	}
	if source == "" {
		return fmt.Errorf("%w: no active node with a droplet to build the snapshot on", raftfsm.ErrConflict)
	}
	if !c.node.CloudReady() {
		return fmt.Errorf("%w: no DigitalOcean token", raftfsm.ErrConflict)
	}
	_, err = c.node.Apply(ctx, &raftfsm.PutSnapshot{At: c.now(), Snapshot: raftfsm.Snapshot{Name: req.Name, Kind: raftfsm.SnapshotCustom,
		Status: raftfsm.SnapshotBuilding, Phase: SnapshotPhaseBuild + " " + req.Context, Progress: 5, SourceNode: source, WantRegions: regions}})
	c.node.KickLeader()
	return err
}

// PutOriginCert stores the TLS certificate and key of a DNS zone (for
// example a Cloudflare origin certificate), the key sealed: every agent's
// edge then serves the zone's hosts on its TLS port with it. The pair must
// match and the certificate must cover the zone or its subdomains.
func (c *Controller) PutOriginCert(ctx context.Context, zone, certPEM, keyPEM string) error {
	if err := raftfsm.ValidateHostname(zone, false); err != nil {
		return fmt.Errorf("origin certificate zone: %w", err)
	}
	leaf, err := raftfsm.ParseCertChain(certPEM)
	if err != nil {
		return fmt.Errorf("origin certificate of %s: %w", zone, err)
	}
	if _, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM)); err != nil {
		return fmt.Errorf("%w: origin certificate of %s: certificate and key: %v", raftfsm.ErrInvalid, zone, err)
	}
	if !coversZone(leaf, zone) {
		return fmt.Errorf("%w: origin certificate of %s: it is for %v, not for %s or *.%s", raftfsm.ErrInvalid, zone, leaf.DNSNames, zone, zone)
	}
	key, err := raftfsm.Seal(c.sealer, raftfsm.OriginKeyLabel(zone), []byte(keyPEM))
	if err != nil {
		return err
	}
	_, err = c.node.Apply(ctx, &raftfsm.PutOriginCert{At: c.now(), Cert: raftfsm.OriginCert{Zone: zone, CertPEM: certPEM, Key: key}})
	return err
}

// DeleteOriginCert removes a zone's origin certificate: its hosts are then
// served over plain HTTP only.
func (c *Controller) DeleteOriginCert(ctx context.Context, zone string) error {
	_, err := c.node.Apply(ctx, &raftfsm.DeleteOriginCert{At: c.now(), Zone: zone})
	return err
}

// coversZone reports whether a certificate is valid for a zone's apex or
// for the names under it (a wildcard).
func coversZone(leaf *x509.Certificate, zone string) bool {
	return leaf.VerifyHostname(zone) == nil || leaf.VerifyHostname("dropmesh-check."+zone) == nil
}

// SetACMEConfig implements control.Controller: it commits the CA choice,
// which the leader's duty acts on.
func (c *Controller) SetACMEConfig(ctx context.Context, cfg raftfsm.ACMEConfig) error {
	_, err := c.node.Apply(ctx, &raftfsm.SetACMEConfig{At: c.now(), Config: cfg})
	return err
}

// RemoveNode drains a node: its services move elsewhere first; then the
// leader deletes its droplet and forgets it (healer.finishDrains).
func (c *Controller) RemoveNode(ctx context.Context, id string) error {
	var (
		found    bool
		stateful []string
		others   int
	)
	c.node.View(func(s *raftfsm.State) {
		_, found = s.Nodes[id]
		for _, in := range s.Instances {
			if in.Node == id && s.Services[in.Service].Spec.Kind == raftfsm.KindStateful {
				stateful = append(stateful, in.Service)
			}
		}
		for oid, o := range s.Nodes {
			if oid != id && o.Status == raftfsm.NodeActive {
				others++
			}
		}
	})
	if !found {
		return fmt.Errorf("node %s: %w", id, raftfsm.ErrNotFound)
	}
	if id == c.node.NodeID() {
		return fmt.Errorf("%w: %s leads the cluster; remove it from another node after leadership moves", raftfsm.ErrConflict, id)
	}
	if len(stateful) > 0 {
		slices.Sort(stateful)
		return fmt.Errorf("%w: stateful %s lives on %s; its volume cannot move: undeploy it first", raftfsm.ErrConflict, stateful[0], id)
	}
	if others == 0 {
		return fmt.Errorf("%w: %s is the only active node", raftfsm.ErrConflict, id)
	}
	if _, err := c.node.Apply(ctx, &raftfsm.SetNodeStatus{At: c.now(), Node: id, Status: raftfsm.NodeDraining, Reason: "removal requested"}); err != nil {
		return err
	}
	c.node.KickLeader()
	return nil
}
