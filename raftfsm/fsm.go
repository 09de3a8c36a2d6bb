package raftfsm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Result is what applying one command returned: a value for the caller (the
// new deploy's generation, for instance) or the reason it changed nothing.
type Result struct {
	Index uint64
	Value any
	Err   error
}

// FSM is the replicated state machine. Writes come only through raft (Apply);
// reads go through View, which holds a read lock for the callback's duration.
type FSM struct {
	logger *slog.Logger
	// proto is the protocol the FSM decodes at: Protocol, or an older one
	// when a test plays an older replica (NewFSMAt).
	proto int

	mu      sync.RWMutex
	state   *State
	changed chan struct{}
	// undecodable counts the entries this replica could not decode (an
	// unknown type, a field it does not know, a bad envelope); onRefused
	// hears of each (OnUndecodable).
	undecodable uint64
	onRefused   func(index uint64, err error)
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// NewFSM returns an FSM over an empty state.
func NewFSM(logger *slog.Logger) *FSM { return NewFSMAt(logger, Protocol) }

// NewFSMAt is NewFSM decoding at protocol proto: what a replica of the
// release at that protocol applies, for tests of a rolling upgrade.
func NewFSMAt(logger *slog.Logger, proto int) *FSM {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FSM{logger: logger, proto: proto, state: NewState(), changed: make(chan struct{})}
}

// OnUndecodable sets fn to hear of every entry this replica cannot decode
// (after it is counted and logged at error level): the agent counts it in
// its metrics and raises an event. fn runs under the FSM's lock: it must not
// block nor call the FSM.
func (f *FSM) OnUndecodable(fn func(index uint64, err error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onRefused = fn
}

// Undecodable is how many entries this replica could not decode.
func (f *FSM) Undecodable() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.undecodable
}

// Apply applies one raft log entry. Non-command entries only move the index.
func (f *FSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.applyLocked(l)
	f.notifyLocked()
	return r
}

// ApplyBatch applies several entries under one lock and one notification;
// raft hands the FSM batches when commits pile up.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, l := range logs {
		out[i] = f.applyLocked(l)
	}
	f.notifyLocked()
	return out
}

func (f *FSM) applyLocked(l *raft.Log) *Result {
	if l.Index > f.state.Index {
		defer func() { f.state.Index = l.Index }()
	}
	if l.Type != raft.LogCommand {
		return &Result{Index: l.Index}
	}
	cmd, err := DecodeAt(l.Data, f.proto)
	if err != nil {
		// Not a refusal like the others: this replica may be older than
		// the entry (a rolling upgrade gone wrong) or the log is damaged,
		// and its state may now differ from the others'. Loud, counted,
		// reported.
		f.undecodable++
		typ := "none"
		if len(l.Data) > 1 {
			typ = CommandType(l.Data[1]).String()
		}
		f.logger.Error("log entry not decodable: this replica skipped it, its state may differ from the leader's",
			"index", l.Index, "type", typ, "protocol", f.proto, "err", err)
		if f.onRefused != nil {
			f.onRefused(l.Index, err)
		}
		return &Result{Index: l.Index, Err: err}
	}
	v, err := applyCommand(f.state, cmd, l.AppendedAt)
	if err != nil {
		level := slog.LevelDebug
		if strings.Contains(err.Error(), "internal error") {
			level = slog.LevelError
		}
		f.logger.Log(context.Background(), level, "command refused", "index", l.Index, "err", err)
	}
	return &Result{Index: l.Index, Value: v, Err: err}
}

// applyCommand applies one decoded entry. Handlers validate everything
// before they change anything, so a refused command leaves the state as it
// was. A handler that panics is a bug (FuzzDecodeApply looks for them), but
// one bad entry must not stop every replica: the panic becomes an error
// result, logged, on all of them alike; whatever the handler had changed
// before it panicked stays changed, identically on every replica, since
// Apply is deterministic.
//
// appendedAt is the leader's clock when it appended the entry (carried in
// the entry, the same on every replica): a Deadlined command appended after
// its deadline is refused.
func applyCommand(s *State, cmd Command, appendedAt time.Time) (v any, err error) {
	if err := deadlineRefusal(cmd, appendedAt); err != nil {
		return nil, err
	}
	h, _ := handlerFor(cmd.Type())
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("apply %s: internal error (a bug; please report it): %v", cmd.Type(), p)
		}
	}()
	return h.apply(s, cmd)
}

// ApplyCommand applies a command directly, outside raft. It is for tests,
// benchmarks and tools that replay commands on a private FSM.
func (f *FSM) ApplyCommand(index uint64, c Command) (any, error) {
	data, err := Encode(c)
	if err != nil {
		return nil, err
	}
	r := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}).(*Result)
	return r.Value, r.Err
}

func (f *FSM) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// View calls fn with the current state under a read lock. fn must not keep or
// modify anything it reaches, nor block: copy what you need.
func (f *FSM) View(fn func(s *State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

// CertRevoked reports whether the node certificate with serial is revoked
// in this replica: the Revoked callback of the node's TLS checks.
func (f *FSM) CertRevoked(serial string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.PKI.IsRevoked(serial)
}

// Revocations is the number of certificates ever revoked in this replica.
func (f *FSM) Revocations() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.PKI.Revocations
}

// Index returns the raft index of the last applied entry: the state's version.
func (f *FSM) Index() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Index
}

// Changed returns a channel closed at the next change of the state. Take it
// before reading, so no change between the read and the wait is missed.
func (f *FSM) Changed() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.changed
}

// WaitIndex blocks until the state has applied index idx or ctx ends.
func (f *FSM) WaitIndex(ctx context.Context, idx uint64) error {
	for {
		f.mu.RLock()
		cur, ch := f.state.Index, f.changed
		f.mu.RUnlock()
		if cur >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for state index %d (at %d): %w", idx, cur, ctx.Err())
		}
	}
}

// Clone returns a deep copy of the whole state, for exports and tests. It
// goes through the snapshot encoding, so the copy is exact (health
// histories included).
func (f *FSM) Clone() *State {
	f.mu.RLock()
	doc, err := encodeSnapshot(f.state)
	f.mu.RUnlock()
	if err != nil {
		panic(fmt.Sprintf("raftfsm: state does not marshal: %v", err)) // only on a programming error in the types
	}
	s, err := decodeSnapshot(doc)
	if err != nil {
		panic(fmt.Sprintf("raftfsm: state does not unmarshal: %v", err))
	}
	return s
}

// snapshotFormat is the version of the snapshot document this build writes.
// Restore reads it and every older format still listed in ReadSnapshot.
// Format 1 kept health histories inside the state as Segments; format 2
// keeps them beside it, compact (History.compact), by instance id.
const snapshotFormat = 2

// oldestSnapshotFormat is the oldest format ReadSnapshot still reads.
const oldestSnapshotFormat = 1

type snapshotDocument struct {
	Format int             `json:"format"`
	State  json.RawMessage `json:"state"`
	// Histories are the instances' health histories in their compact
	// encoding (format 2 on); the instances in State then have none.
	Histories map[string]string `json:"histories,omitempty"`
}

// encodeSnapshot makes the snapshot document of a state. The caller holds
// the read lock: the state is only read (a shallow copy of it and of each
// instance with a history is marshalled).
func encodeSnapshot(st *State) (snapshotDocument, error) {
	doc := snapshotDocument{Format: snapshotFormat}
	cp := *st
	cp.Instances = make(map[string]*Instance, len(st.Instances))
	for id, in := range st.Instances {
		if len(in.History) == 0 {
			cp.Instances[id] = in
			continue
		}
		if doc.Histories == nil {
			doc.Histories = map[string]string{}
		}
		doc.Histories[id] = in.History.compact()
		c := *in
		c.History = nil
		cp.Instances[id] = &c
	}
	data, err := json.Marshal(&cp)
	if err != nil {
		return doc, err
	}
	doc.State = data
	return doc, nil
}

// Snapshot captures the state for raft. The copy is made here, under the read
// lock; Persist then writes it while Apply goes on.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	doc, err := encodeSnapshot(f.state)
	f.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("snapshot state: %w", err)
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("snapshot state: %w", err)
	}
	return fsmSnapshot(data), nil
}

// Restore replaces the state with a snapshot. A snapshot of an unknown
// format is refused with an error that says which format it is.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s, err := ReadSnapshot(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.state = s
	f.notifyLocked()
	f.mu.Unlock()
	return nil
}

// ReadSnapshot decodes a snapshot written by Persist (a raft snapshot file's
// payload), for Restore and for backup tools.
func ReadSnapshot(r io.Reader) (*State, error) {
	var doc snapshotDocument
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("restore snapshot: %w", err)
	}
	switch {
	case doc.Format >= oldestSnapshotFormat && doc.Format <= snapshotFormat:
	case doc.Format > snapshotFormat:
		return nil, fmt.Errorf("restore snapshot: format %d is newer than this version reads (format %d): upgrade dropmesh on this node", doc.Format, snapshotFormat)
	case doc.Format <= 0:
		return nil, fmt.Errorf("restore snapshot: no format number: this is not a dropmesh state snapshot")
	default:
		return nil, fmt.Errorf("restore snapshot: format %d is older than any this version reads (format %d): restore it with the dropmesh version that wrote it and move the state with `dropmesh state export` / `state import`", doc.Format, snapshotFormat)
	}
	s, err := decodeSnapshot(doc)
	if err != nil {
		return nil, fmt.Errorf("restore snapshot: %w", err)
	}
	return s, nil
}

// decodeSnapshot rebuilds the state of a snapshot document of a format
// ReadSnapshot accepts. Format 1's Segments are read by History's
// UnmarshalJSON.
func decodeSnapshot(doc snapshotDocument) (*State, error) {
	s := NewState()
	if err := json.Unmarshal(doc.State, s); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	s.fillMaps()
	for id, enc := range doc.Histories {
		in, ok := s.Instances[id]
		if !ok {
			return nil, fmt.Errorf("health history of %s: no such instance", id)
		}
		h, err := decodeHistory(enc)
		if err != nil {
			return nil, fmt.Errorf("health history of %s: %w", id, err)
		}
		in.History = h
	}
	return s, nil
}

// fillMaps allocates maps that a document left out, so handlers never write
// to a nil map.
func (s *State) fillMaps() {
	empty := NewState()
	if s.Users == nil {
		s.Users = empty.Users
	}
	if s.Nodes == nil {
		s.Nodes = empty.Nodes
	}
	if s.Workspaces == nil {
		s.Workspaces = empty.Workspaces
	}
	if s.Services == nil {
		s.Services = empty.Services
	}
	if s.Instances == nil {
		s.Instances = empty.Instances
	}
	if s.Deploys == nil {
		s.Deploys = empty.Deploys
	}
	if s.Registries == nil {
		s.Registries = empty.Registries
	}
	if s.Contexts == nil {
		s.Contexts = empty.Contexts
	}
	if s.Webhooks == nil {
		s.Webhooks = empty.Webhooks
	}
	if s.Tokens == nil {
		s.Tokens = empty.Tokens
	}
	if s.Images == nil {
		s.Images = empty.Images
	}
	if s.OriginCerts == nil {
		s.OriginCerts = empty.OriginCerts
	}
	s.PKI.fillMaps()
	s.ACME.fillMaps()
	if s.Cloud.Droplets == nil {
		s.Cloud.Droplets = empty.Cloud.Droplets
	}
	if s.Cloud.Snapshots == nil {
		s.Cloud.Snapshots = empty.Cloud.Snapshots
	}
	if s.Cloud.DNS == nil {
		s.Cloud.DNS = empty.Cloud.DNS
	}
	if s.Cloud.Intents == nil {
		s.Cloud.Intents = empty.Cloud.Intents
	}
	for _, w := range s.Workspaces {
		if w.Projects == nil {
			w.Projects = map[string]*Project{}
		}
		for _, p := range w.Projects {
			if p.Envs == nil {
				p.Envs = map[string]*Environment{}
			}
		}
	}
}

type fsmSnapshot []byte

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (fsmSnapshot) Release() {}
