package raftfsm

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

func validIntentKind(k IntentKind) bool {
	switch k {
	case IntentCreateDroplet, IntentDeleteDroplet, IntentPowerCycle, IntentEnsureDNS, IntentDeleteDNS,
		IntentEnsureVPC, IntentEnsureFirewall, IntentCreateSnapshot, IntentTransferSnapshot:
		return true
	}
	return false
}

func applyRecordIntent(s *State, c *RecordIntent) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	in := c.Intent
	if err := validateID("intent id", in.ID); err != nil {
		return nil, err
	}
	if _, ok := s.Cloud.Intents[in.ID]; ok {
		return nil, fmt.Errorf("%w: intent %s exists", ErrConflict, in.ID)
	}
	if !validIntentKind(in.Kind) {
		return nil, invalidf("intent kind %q", in.Kind)
	}
	if in.Target == "" || len(in.Target) > 255 {
		return nil, invalidf("intent target %q", in.Target)
	}
	s.Cloud.Intents[in.ID] = &Intent{ID: in.ID, Kind: in.Kind, Target: in.Target, Params: cloneStrings(in.Params), Status: IntentPending, CreatedAt: c.At}
	return in.ID, nil
}

func applyResolveIntent(s *State, c *ResolveIntent) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	var in *Intent
	if c.IntentID != "" {
		var ok bool
		if in, ok = s.Cloud.Intents[c.IntentID]; !ok {
			return nil, fmt.Errorf("intent %s: %w", c.IntentID, ErrNotFound)
		}
		if in.Status != IntentPending {
			return nil, fmt.Errorf("%w: intent %s is already %s", ErrConflict, c.IntentID, in.Status)
		}
		if !c.Retry && c.Status != IntentDone && c.Status != IntentFailed {
			return nil, invalidf("intent status %q: want done or failed", c.Status)
		}
	}
	if err := c.Changes.validate(); err != nil {
		return nil, err
	}
	if in != nil {
		in.Attempts++
		in.Error = c.Error
		if !c.Retry {
			in.Status, in.FinishedAt = c.Status, c.At
		}
	}
	s.Cloud.apply(c.Changes, c.At)
	if in != nil && in.Status == IntentFailed {
		s.event(c.At, EventCloud, SeverityError, fmt.Sprintf("%s %s failed: %s", in.Kind, in.Target, c.Error), nil)
	}
	s.Cloud.trimIntents()
	return nil, nil
}

func (ch CloudChanges) validate() error {
	if d := ch.Droplet; d != nil {
		if err := ValidateNodeID(d.NodeID); err != nil {
			return err
		}
		if d.Name == "" || len(d.Name) > 255 {
			return invalidf("droplet name %q", d.Name)
		}
		for field, ip := range map[string]string{"public_ip": d.PublicIP, "private_ip": d.PrivateIP} {
			if err := validateIP(field, ip); err != nil {
				return err
			}
		}
	}
	if d := ch.DNS; d != nil {
		if err := ValidateHostname(d.Host, true); err != nil {
			return err
		}
		for _, ip := range d.IPs {
			if err := validateIP("dns ip", ip); err != nil {
				return err
			}
		}
	}
	if sn := ch.Snapshot; sn != nil {
		if err := validateSnapshot(*sn); err != nil {
			return err
		}
	}
	if ch.NextNodeSeq < 0 {
		return invalidf("next node seq %d", ch.NextNodeSeq)
	}
	return nil
}

func validateSnapshot(sn Snapshot) error {
	if err := ValidateSnapshotName(sn.Name); err != nil {
		return err
	}
	if sn.Kind != SnapshotBase && sn.Kind != SnapshotCustom {
		return invalidf("snapshot kind %q: want base or custom", sn.Kind)
	}
	switch sn.Status {
	case SnapshotBuilding, SnapshotReady, SnapshotFailed:
	default:
		return invalidf("snapshot status %q", sn.Status)
	}
	for _, r := range append(slices.Clone(sn.Regions), sn.WantRegions...) {
		if err := ValidateRegion(r); err != nil {
			return err
		}
	}
	if sn.Progress < 0 || sn.Progress > 100 {
		return invalidf("snapshot progress %d", sn.Progress)
	}
	return nil
}

func (cl *Cloud) apply(ch CloudChanges, at time.Time) {
	if ch.VPC != nil {
		v := *ch.VPC
		cl.VPC = &v
	}
	if ch.Firewall != nil {
		f := *ch.Firewall
		cl.Firewall = &f
	}
	if ch.Droplet != nil {
		d := *ch.Droplet
		if old, ok := cl.Droplets[d.Name]; ok && d.CreatedAt.IsZero() {
			d.CreatedAt = old.CreatedAt
		}
		if d.CreatedAt.IsZero() {
			d.CreatedAt = at
		}
		cl.Droplets[d.Name] = &d
	}
	if ch.DeleteDroplet != "" {
		delete(cl.Droplets, ch.DeleteDroplet)
	}
	if ch.Snapshot != nil {
		cl.putSnapshot(*ch.Snapshot, at)
	}
	if ch.DeleteSnapshot != "" {
		delete(cl.Snapshots, ch.DeleteSnapshot)
	}
	if ch.DNS != nil {
		d := *ch.DNS
		d.IPs = slices.Clone(d.IPs)
		d.RecordIDs = slices.Clone(d.RecordIDs)
		d.UpdatedAt = at
		cl.DNS[d.Host] = &d
	}
	if ch.DeleteDNS != "" {
		delete(cl.DNS, ch.DeleteDNS)
	}
	if ch.NextNodeSeq > cl.NextNodeSeq {
		cl.NextNodeSeq = ch.NextNodeSeq
	}
}

func (cl *Cloud) putSnapshot(sn Snapshot, at time.Time) {
	sn.Regions = slices.Clone(sn.Regions)
	sn.WantRegions = slices.Clone(sn.WantRegions)
	if old, ok := cl.Snapshots[sn.Name]; ok {
		sn.CreatedAt = old.CreatedAt
	} else if sn.CreatedAt.IsZero() {
		sn.CreatedAt = at
	}
	sn.UpdatedAt = at
	cl.Snapshots[sn.Name] = &sn
}

// trimIntents drops the oldest finished intents beyond MaxFinishedIntents.
func (cl *Cloud) trimIntents() {
	var finished []*Intent
	for _, in := range cl.Intents {
		if in.Status != IntentPending {
			finished = append(finished, in)
		}
	}
	over := len(finished) - MaxFinishedIntents
	if over <= 0 {
		return
	}
	slices.SortFunc(finished, func(a, b *Intent) int {
		if c := a.FinishedAt.Compare(b.FinishedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for _, in := range finished[:over] {
		delete(cl.Intents, in.ID)
	}
}

// PendingIntents returns the intents not yet resolved, oldest first.
func (cl *Cloud) PendingIntents() []*Intent {
	var out []*Intent
	for _, in := range cl.Intents {
		if in.Status == IntentPending {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b *Intent) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func applyPutSnapshot(s *State, c *PutSnapshot) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if err := validateSnapshot(c.Snapshot); err != nil {
		return nil, err
	}
	prev, existed := s.Cloud.Snapshots[c.Snapshot.Name]
	s.Cloud.putSnapshot(c.Snapshot, c.At)
	if !existed || prev.Status != c.Snapshot.Status {
		sev := SeverityInfo
		if c.Snapshot.Status == SnapshotFailed {
			sev = SeverityError
		}
		msg := fmt.Sprintf("snapshot %s is %s", c.Snapshot.Name, c.Snapshot.Status)
		if c.Snapshot.Error != "" {
			msg += ": " + c.Snapshot.Error
		}
		s.event(c.At, EventSnapshot, sev, msg, func(e *Event) { e.Node = c.Snapshot.SourceNode })
	}
	return nil, nil
}
