package backup

import (
	"bytes"
	"context"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Errors callers branch on.
var (
	// ErrNotFound: no such backup (or object).
	ErrNotFound = errors.New("not found")
	// ErrNoTarget: the backup settings name neither a directory nor a bucket.
	ErrNoTarget = errors.New("no backup target configured (set backup.dir or backup.spaces)")
	// ErrInvalid: bad input (a name, a location, a document); nothing changed.
	ErrInvalid = raftfsm.ErrInvalid
	// ErrCorrupt: a backup file does not match its manifest's checksum.
	ErrCorrupt = errors.New("backup file does not match its manifest")
)

// Source is what a backup reads: the replicated state and the raft
// snapshots. StoreSource adapts a *raftfsm.Store.
type Source interface {
	View(fn func(*raftfsm.State))
	Snapshot() error
	LatestSnapshot() (*raft.SnapshotMeta, io.ReadCloser, error)
}

// StoreSource is the Source of a node's raft store: its FSM's state and its
// snapshots. When the source can also signal changes (this one can), Run
// reacts to settings changes at once instead of polling.
func StoreSource(s *raftfsm.Store) Source { return storeSource{s} }

type storeSource struct{ s *raftfsm.Store }

func (x storeSource) View(fn func(*raftfsm.State)) { x.s.FSM().View(fn) }
func (x storeSource) Snapshot() error              { return x.s.Snapshot() }
func (x storeSource) LatestSnapshot() (*raft.SnapshotMeta, io.ReadCloser, error) {
	return x.s.LatestSnapshot()
}
func (x storeSource) Changed() <-chan struct{} { return x.s.FSM().Changed() }

// The files of a backup named N: N.state.json (the export document),
// N.raft-snapshot (the raft snapshot's payload, what raftfsm.ReadSnapshot
// reads) and N.manifest.json (Info), written last: a backup without its
// manifest is incomplete and never listed.
const (
	suffixState    = ".state.json"
	suffixSnapshot = ".raft-snapshot"
	suffixManifest = ".manifest.json"
	namePrefix     = "dropmesh-"
	nameTime       = "20060102T150405.000Z"
	// manifestFormat 2: the files are sealed with the backup key and the
	// manifest carries a MAC (format 1 had only sha256 sums, which anyone
	// who can write the target can recompute).
	manifestFormat = 2
)

// Info describes one backup; it is also the manifest's content.
type Info struct {
	Format      int       `json:"format"`
	Name        string    `json:"name"`
	At          time.Time `json:"at"`
	ClusterID   string    `json:"cluster_id"`
	ClusterName string    `json:"cluster_name"`
	// StateIndex is the raft index of the exported state.
	StateIndex uint64 `json:"state_index"`
	Services   int    `json:"services"`
	// Snapshot is the raft snapshot saved with it.
	SnapshotID    string `json:"snapshot_id"`
	SnapshotIndex uint64 `json:"snapshot_index"`
	SnapshotTerm  uint64 `json:"snapshot_term"`
	Files         []File `json:"files"`
	// MAC authenticates the manifest (and through its sums, the files)
	// with the backup key; see signManifest.
	MAC string `json:"mac,omitempty"`
}

// File is one file of a backup.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// file returns the entry for the file with suffix, if the manifest lists it.
func (i Info) file(suffix string) (File, bool) {
	for _, f := range i.Files {
		if f.Name == i.Name+suffix {
			return f, true
		}
	}
	return File{}, false
}

// backupName names a backup taken at t; names sort by time.
func backupName(t time.Time) string { return namePrefix + t.UTC().Format(nameTime) }

// Backup writes one backup of src to t: the state export (secrets stay
// sealed), the latest raft snapshot (taking a fresh one first), both
// encrypted with cfg.Key, then the manifest, authenticated with cfg.Key.
// It does not prune; BackupNow does.
func Backup(ctx context.Context, src Source, t Target, cfg Config) (Info, error) {
	cfg = cfg.withDefaults()
	if cfg.Key == nil {
		return Info{}, errors.New("backup: no backup key (Config.Key)")
	}
	at := cfg.Now().UTC()
	info := Info{Format: manifestFormat, Name: backupName(at), At: at}
	var (
		export []byte
		err    error
	)
	src.View(func(s *raftfsm.State) {
		info.ClusterID, info.ClusterName, info.StateIndex = s.Settings.ClusterID, s.Settings.ClusterName, s.Index
		doc := raftfsm.Export(s, at)
		info.Services = len(doc.Services)
		export, err = json.MarshalIndent(doc, "", "  ")
	})
	if err != nil {
		return Info{}, fmt.Errorf("backup %s: export the state: %w", info.Name, err)
	}
	snap, meta, err := latestSnapshot(src, cfg)
	if err != nil {
		return Info{}, fmt.Errorf("backup %s: %w", info.Name, err)
	}
	info.SnapshotID, info.SnapshotIndex, info.SnapshotTerm = meta.ID, meta.Index, meta.Term
	for _, f := range []struct {
		suffix string
		data   []byte
	}{{suffixState, export}, {suffixSnapshot, snap}} {
		name := info.Name + f.suffix
		sealed, err := sealFile(cfg.Key, f.suffix, f.data)
		if err != nil {
			return Info{}, fmt.Errorf("backup %s: %w", info.Name, err)
		}
		if err := t.put(ctx, name, sealed); err != nil {
			return Info{}, fmt.Errorf("backup %s to %s: %w", info.Name, t, err)
		}
		info.Files = append(info.Files, File{Name: name, Size: int64(len(sealed)), SHA256: sha256Hex(sealed)})
	}
	if err := signManifest(cfg.Key, &info); err != nil {
		return Info{}, fmt.Errorf("backup %s: %w", info.Name, err)
	}
	manifest, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return Info{}, fmt.Errorf("backup %s: manifest: %w", info.Name, err)
	}
	if err := t.put(ctx, info.Name+suffixManifest, manifest); err != nil {
		return Info{}, fmt.Errorf("backup %s to %s: %w", info.Name, t, err)
	}
	return info, nil
}

// latestSnapshot takes a snapshot (so the backup is current) and reads the
// newest one. "Nothing new to snapshot" is fine: the newest is current.
func latestSnapshot(src Source, cfg Config) ([]byte, *raft.SnapshotMeta, error) {
	if err := src.Snapshot(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		cfg.Logger.Warn("backup: raft snapshot failed; saving the latest one", "err", err)
	}
	meta, rc, err := src.LatestSnapshot()
	if err != nil {
		return nil, nil, fmt.Errorf("read the raft snapshot: %w", err)
	}
	defer rc.Close()
	data, err := readAll(rc, cfg.MaxSnapshotBytes, "raft snapshot "+meta.ID)
	if err != nil {
		return nil, nil, err
	}
	return data, meta, nil
}

// BackupNow backs up to the target of the cluster's backup settings (the
// Spaces secret opened with sealer) and then keeps only the newest Keep
// backups there. It works whether or not scheduled backups are enabled.
func BackupNow(ctx context.Context, src Source, sealer cipher.AEAD, cfg Config) (Info, error) {
	cfg = cfg.withDefaults()
	var settings raftfsm.BackupSettings
	src.View(func(s *raftfsm.State) { settings = s.Settings.Backup })
	t, err := TargetFromSettings(settings, sealer, cfg.HTTPClient, cfg.Now)
	if err != nil {
		return Info{}, err
	}
	info, err := Backup(ctx, src, t, cfg)
	if err != nil {
		return Info{}, err
	}
	keep := settings.Keep
	if keep <= 0 {
		keep = cfg.DefaultKeep
	}
	if err := Prune(ctx, t, keep); err != nil {
		cfg.Logger.Warn("backup: prune old backups", "target", t.String(), "err", err)
	}
	return info, nil
}

// List returns the complete backups at t, newest first.
func List(ctx context.Context, t Target) ([]Info, error) {
	names, err := t.list(ctx)
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, n := range names {
		base, ok := strings.CutSuffix(n, suffixManifest)
		if !ok || validName(base) != nil {
			continue
		}
		info, err := readManifest(ctx, t, base)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue // removed meanwhile
			}
			return nil, err
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b Info) int { return -strings.Compare(a.Name, b.Name) })
	return out, nil
}

// maxManifestBytes bounds a manifest read.
const maxManifestBytes = 1 << 20

func readManifest(ctx context.Context, t Target, name string) (Info, error) {
	rc, err := t.get(ctx, name+suffixManifest)
	if err != nil {
		return Info{}, err
	}
	defer rc.Close()
	data, err := readAll(rc, maxManifestBytes, "manifest of "+name)
	if err != nil {
		return Info{}, err
	}
	var info Info
	if err := json.Unmarshal(data, &info); err != nil || info.Name != name {
		return Info{}, fmt.Errorf("%w: backup %s at %s: unreadable manifest", ErrInvalid, name, t)
	}
	return info, nil
}

// Open opens the state export of backup name at t as stored: sealed with
// the backup key (ReadDocument checks and opens it).
func Open(ctx context.Context, t Target, name string) (io.ReadCloser, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	return t.get(ctx, name+suffixState)
}

// OpenSnapshot opens the raft snapshot of backup name at t as stored:
// sealed with the backup key (`state restore --from FILE` opens it).
func OpenSnapshot(ctx context.Context, t Target, name string) (io.ReadCloser, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	return t.get(ctx, name+suffixSnapshot)
}

// Prune removes the complete backups at t beyond the newest keep, and the
// leftovers of interrupted backups older than the newest complete one (a
// backup being written now is newer, so it is never touched).
func Prune(ctx context.Context, t Target, keep int) error {
	if keep < 1 {
		return fmt.Errorf("%w: keep %d: want at least 1", ErrInvalid, keep)
	}
	names, err := t.list(ctx)
	if err != nil {
		return err
	}
	complete := map[string]bool{}
	var completeNames []string
	for _, n := range names {
		if base, ok := strings.CutSuffix(n, suffixManifest); ok && strings.HasPrefix(base, namePrefix) {
			complete[base] = true
			completeNames = append(completeNames, base)
		}
	}
	if len(completeNames) == 0 {
		return nil
	}
	slices.Sort(completeNames)
	slices.Reverse(completeNames)
	newest := completeNames[0]
	drop := map[string]bool{}
	for _, n := range completeNames[min(keep, len(completeNames)):] {
		drop[n] = true
	}
	var errs []error
	// Manifests first: a backup half removed is then seen as incomplete.
	for _, n := range completeNames {
		if drop[n] {
			errs = append(errs, t.remove(ctx, n+suffixManifest))
		}
	}
	for _, n := range names {
		base := trimSuffixes(n)
		if base == n || !strings.HasPrefix(base, namePrefix) || strings.HasSuffix(n, suffixManifest) {
			continue
		}
		if drop[base] || (!complete[base] && base < newest) {
			errs = append(errs, t.remove(ctx, n))
		}
	}
	return errors.Join(errs...)
}

// ReadDocument reads the state of backup name at t as an export document
// and its JSON: the export file when there is one (at most maxBytes), else
// the raft snapshot converted. The manifest must open with key (its MAC),
// every file must match the manifest's size and sum and open with key; a
// backup that fails any of these is refused with ErrUnauthenticated.
func ReadDocument(ctx context.Context, t Target, name string, key cipher.AEAD, maxBytes int64) (raftfsm.ExportDocument, []byte, error) {
	if err := validName(name); err != nil {
		return raftfsm.ExportDocument{}, nil, err
	}
	if key == nil {
		return raftfsm.ExportDocument{}, nil, fmt.Errorf("%w: backup %s: give the cluster secret file (--cluster-secret-file) to open it", ErrInvalid, name)
	}
	info, err := readManifest(ctx, t, name)
	if errors.Is(err, ErrNotFound) {
		return raftfsm.ExportDocument{}, nil, fmt.Errorf("backup %s at %s: no manifest (incomplete, or not a backup): %w", name, t, ErrNotFound)
	}
	if err != nil {
		return raftfsm.ExportDocument{}, nil, err
	}
	if err := verifyManifest(key, info); err != nil {
		return raftfsm.ExportDocument{}, nil, fmt.Errorf("%s at %s: %w", name, t, err)
	}
	read := func(suffix string, limit int64) ([]byte, error) {
		f, listed := info.file(suffix)
		if !listed {
			return nil, ErrNotFound
		}
		rc, err := t.get(ctx, name+suffix)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		data, err := readAll(rc, limit, name+suffix)
		if err != nil {
			return nil, err
		}
		if f.SHA256 != sha256Hex(data) || f.Size != int64(len(data)) {
			return nil, fmt.Errorf("%w: %w: %s at %s", ErrUnauthenticated, ErrCorrupt, name+suffix, t)
		}
		return openFile(key, suffix, data, name+suffix)
	}
	data, err := read(suffixState, maxBytes+int64(len(sealedMagic)+key.NonceSize()+key.Overhead()))
	if err == nil {
		doc, err := DecodeBackupFile(data, maxBytes)
		return doc, data, err
	}
	if !errors.Is(err, ErrNotFound) {
		return raftfsm.ExportDocument{}, nil, err
	}
	snap, serr := read(suffixSnapshot, max(maxBytes, maxSnapshotFile))
	if serr != nil {
		if errors.Is(serr, ErrNotFound) {
			return raftfsm.ExportDocument{}, nil, fmt.Errorf("backup %s at %s: %w", name, t, ErrNotFound)
		}
		return raftfsm.ExportDocument{}, nil, serr
	}
	doc, err := DecodeBackupFile(snap, maxBytes)
	if err != nil {
		return raftfsm.ExportDocument{}, nil, err
	}
	out, err := json.Marshal(doc)
	return doc, out, err
}

// DecodeBackupFile reads either kind of backup file, told apart by its
// content: an export document (`state export`, N.state.json) or a raft
// snapshot payload (N.raft-snapshot, or a raft snapshot directory's
// state.bin), which is converted with raftfsm.Export. The document is
// validated completely.
func DecodeBackupFile(data []byte, maxBytes int64) (raftfsm.ExportDocument, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return raftfsm.ExportDocument{}, fmt.Errorf("%w: not a dropmesh backup (neither a state export nor a raft snapshot): %v", ErrInvalid, err)
	}
	if _, ok := probe["kind"]; ok {
		return raftfsm.ReadExport(bytes.NewReader(data), maxBytes)
	}
	if _, ok := probe["state"]; ok {
		st, err := raftfsm.ReadSnapshot(bytes.NewReader(data))
		if err != nil {
			return raftfsm.ExportDocument{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		doc := raftfsm.Export(st, time.Now().UTC())
		return doc, doc.Validate()
	}
	return raftfsm.ExportDocument{}, fmt.Errorf("%w: not a dropmesh backup (neither a state export nor a raft snapshot)", ErrInvalid)
}
