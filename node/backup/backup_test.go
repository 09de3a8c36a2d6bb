package backup

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// restoreIntoFreshFSM imports doc into a new cluster's FSM the way the
// leader does (one ImportState command, slot i on node-(i%2+1)) and returns
// the new cluster's export.
func restoreIntoFreshFSM(t *testing.T, doc raftfsm.ExportDocument) raftfsm.ExportDocument {
	t.Helper()
	fsm := raftfsm.NewFSM(nil)
	idx := uint64(0)
	apply := func(c raftfsm.Command) any {
		idx++
		v, err := fsm.ApplyCommand(idx, c)
		if err != nil {
			t.Fatalf("apply %s: %v", c.Type(), err)
		}
		return v
	}
	apply(&raftfsm.InitCluster{At: t0, ClusterID: "fresh1", ClusterName: "fresh", AdminName: "root",
		AdminPasswordHash: "$2a$10$abcdefghijklmnopqrstuuvwxyzabcdefghijklmnopqrstuvwxyz12", DefaultWorkspaceID: "abcdef"})
	for _, id := range []string{"node-1", "node-2"} {
		apply(&raftfsm.UpsertNode{At: t0, Node: raftfsm.Node{ID: id, PrivateIP: "127.0.0.9", API: "127.0.0.9:9999"}})
	}
	cmd := &raftfsm.ImportState{At: t0.Add(time.Hour), Document: doc, Placements: map[string][]raftfsm.Assignment{}, DeployIDs: map[string]string{}}
	for i, spec := range doc.Services {
		key := raftfsm.ServiceKey(spec.Workspace, spec.Project, spec.Env, spec.Service)
		for slot := range spec.Replicas {
			cmd.Placements[key] = append(cmd.Placements[key], raftfsm.Assignment{Slot: slot, Node: []string{"node-1", "node-2"}[slot%2]})
		}
		cmd.DeployIDs[key] = "imp-" + string(rune('a'+i))
	}
	res := apply(cmd).(raftfsm.ImportResult)
	if len(res.Services) != len(doc.Services) {
		t.Fatalf("import created %v, want %d services", res.Services, len(doc.Services))
	}
	var out raftfsm.ExportDocument
	fsm.View(func(s *raftfsm.State) { out = exportOf(s) })
	return out
}

func sameServices(t *testing.T, got, want raftfsm.ExportDocument) {
	t.Helper()
	if len(want.Services) == 0 {
		t.Fatal("the source has no services: the comparison would prove nothing")
	}
	g, _ := json.Marshal(got.Services)
	w, _ := json.Marshal(want.Services)
	if string(g) != string(w) {
		t.Fatalf("services differ after the round trip:\n got %s\nwant %s", g, w)
	}
}

func TestBackupToDirAndRestoreRoundTrip(t *testing.T) {
	n := newNode(t)
	aead := testAEAD(t)
	n.deploySample(aead)
	dir := filepath.Join(t.TempDir(), "backups")
	n.setBackup(raftfsm.BackupSettings{Enabled: true, Dir: dir, Interval: raftfsm.Duration(time.Hour), Keep: 3})
	clk := newClock(t0.Add(time.Hour))

	info, err := BackupNow(context.Background(), StoreSource(n.store), aead, testConfig(t, clk))
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "dropmesh-20261123T130000.000Z" || info.Services != 2 || info.ClusterName != "prod-eu" || info.SnapshotIndex == 0 || len(info.Files) != 2 {
		t.Fatalf("info = %+v", info)
	}
	for _, suffix := range []string{suffixState, suffixSnapshot, suffixManifest} {
		st, err := os.Stat(filepath.Join(dir, info.Name+suffix))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600 (password hashes inside)", suffix, st.Mode().Perm())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("backup dir has mode %v, want 0700", st.Mode().Perm())
	}
	// The files are encrypted: not even the names of services or secrets show.
	sealedRaw, _ := os.ReadFile(filepath.Join(dir, info.Name+suffixState))
	for _, word := range []string{"s3cret", "REDIS_PASSWORD", "redis", "$2"} {
		if strings.Contains(string(sealedRaw), word) {
			t.Fatalf("the sealed state file shows %q", word)
		}
	}
	raw, err := openFile(testBackupKey(t), suffixState, sealedRaw, "state")
	if err != nil {
		t.Fatal(err)
	}
	// Inside, the secrets stay sealed with the cluster's state key too.
	if strings.Contains(string(raw), "s3cret") || !strings.Contains(string(raw), "REDIS_PASSWORD") {
		t.Fatal("the state export must carry the secret, sealed")
	}

	infos, err := List(context.Background(), DirTarget(dir))
	if err != nil || len(infos) != 1 || !reflect.DeepEqual(infos[0], info) {
		t.Fatalf("List = %+v, %v; want the backup's info", infos, err)
	}

	var want raftfsm.ExportDocument
	n.store.FSM().View(func(s *raftfsm.State) { want = exportOf(s) })
	doc, data, err := ReadDocument(context.Background(), DirTarget(dir), info.Name, testBackupKey(t), MaxDocumentBytes)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(raw) {
		t.Error("ReadDocument did not return the export file's bytes")
	}
	sameServices(t, doc, want)
	sameServices(t, restoreIntoFreshFSM(t, doc), want)

	// The raft snapshot alone is enough: remove the export and read again.
	if err := os.Remove(filepath.Join(dir, info.Name+suffixState)); err != nil {
		t.Fatal(err)
	}
	doc, _, err = ReadDocument(context.Background(), DirTarget(dir), info.Name, testBackupKey(t), MaxDocumentBytes)
	if err != nil {
		t.Fatal(err)
	}
	sameServices(t, doc, want)
	sameServices(t, restoreIntoFreshFSM(t, doc), want)
	// The sealed secret came through the snapshot too, and still opens with the cluster key.
	for _, s := range doc.Services {
		if s.Service == "redis" {
			plain, err := raftfsm.OpenSecrets(aead, raftfsm.ServiceKey(s.Workspace, s.Project, s.Env, s.Service), s)
			if err != nil || plain["REDIS_PASSWORD"] != "s3cret" {
				t.Fatalf("redis secret after the round trip: %v %v", plain, err)
			}
		}
	}
}

func TestBackupToSpaces(t *testing.T) {
	f := newFakeS3(t)
	n := newNode(t)
	aead := testAEAD(t)
	n.deploySample(aead)
	secret, err := raftfsm.Seal(aead, raftfsm.LabelSpacesSecret, []byte(f.secretKey))
	if err != nil {
		t.Fatal(err)
	}
	n.setBackup(raftfsm.BackupSettings{Enabled: true, Keep: 2, Spaces: &raftfsm.SpacesTarget{Endpoint: f.srv.URL, Region: f.region,
		Bucket: f.bucket, Prefix: "/clusters/prod/", AccessKey: f.accessKey, SecretKey: secret}})
	clk := newClock(time.Now().UTC())
	cfg := testConfig(t, clk)
	var names []string
	for range 3 {
		info, err := BackupNow(context.Background(), StoreSource(n.store), aead, cfg)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, info.Name)
		clk.Add(time.Minute)
	}
	var want []string
	for _, name := range names[1:] {
		for _, s := range []string{suffixManifest, suffixSnapshot, suffixState} {
			want = append(want, "clusters/prod/"+name+s)
		}
	}
	if got := f.keys(); !reflect.DeepEqual(got, want) {
		t.Fatalf("bucket holds %v\nwant (Keep 2) %v", got, want)
	}
	if f.refusedCount() != 0 {
		t.Fatalf("%d requests refused by the signature check", f.refusedCount())
	}
	tgt, err := TargetFromSettings(raftfsm.BackupSettings{Spaces: &raftfsm.SpacesTarget{Endpoint: f.srv.URL, Region: f.region,
		Bucket: f.bucket, Prefix: "clusters/prod", AccessKey: f.accessKey, SecretKey: secret}}, aead, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := List(context.Background(), tgt)
	if err != nil || len(infos) != 2 || infos[0].Name != names[2] {
		t.Fatalf("List = %v, %v; want the two newest, newest first", infos, err)
	}
	doc, _, err := ReadDocument(context.Background(), tgt, names[2], testBackupKey(t), MaxDocumentBytes)
	if err != nil {
		t.Fatal(err)
	}
	var src raftfsm.ExportDocument
	n.store.FSM().View(func(s *raftfsm.State) { src = exportOf(s) })
	sameServices(t, doc, src)

	// Another cluster's key cannot open the Spaces secret: a clear error, nothing written.
	other := testAEADKey(t, 9)
	before := len(f.keys())
	if _, err := BackupNow(context.Background(), StoreSource(n.store), other, cfg); !errors.Is(err, raftfsm.ErrUnseal) {
		t.Fatalf("backup with the wrong key: err = %v, want ErrUnseal", err)
	}
	if len(f.keys()) != before {
		t.Fatal("a backup that could not open its secret wrote something")
	}
}

func TestPruneKeepsTheNewestAndCleansLeftovers(t *testing.T) {
	n := newNode(t)
	dir := t.TempDir()
	tgt := DirTarget(dir)
	clk := newClock(t0)
	cfg := testConfig(t, clk)
	var names []string
	for range 5 {
		info, err := Backup(context.Background(), StoreSource(n.store), tgt, cfg)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, info.Name)
		clk.Add(time.Second)
	}
	// An interrupted backup older than the newest (no manifest) and one being
	// written right now (newer than every complete one).
	old := backupName(t0.Add(1500 * time.Millisecond))
	current := backupName(t0.Add(time.Hour))
	for _, f := range []string{old + suffixState, current + suffixState, "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := Prune(context.Background(), tgt, 2); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	var want []string
	for _, name := range names[3:] {
		want = append(want, name+suffixManifest, name+suffixSnapshot, name+suffixState)
	}
	want = append(want, current+suffixState, "notes.txt")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after Prune(2):\n got %v\nwant %v", got, want)
	}
	if err := Prune(context.Background(), tgt, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Prune(0): err = %v, want ErrInvalid", err)
	}
}

func TestCorruptOrForeignFilesAreRefused(t *testing.T) {
	n := newNode(t)
	n.deploySample(testAEAD(t))
	dir := t.TempDir()
	info, err := Backup(context.Background(), StoreSource(n.store), DirTarget(dir), testConfig(t, newClock(t0)))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, info.Name+suffixState)
	data, _ := os.ReadFile(path)
	data[len(data)/3] ^= 1
	os.WriteFile(path, data, 0o600)
	if _, _, err := ReadDocument(context.Background(), DirTarget(dir), info.Name, testBackupKey(t), MaxDocumentBytes); !errors.Is(err, ErrCorrupt) || !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("altered export: err = %v, want ErrCorrupt", err)
	}
	if _, _, err := ReadDocument(context.Background(), DirTarget(dir), "dropmesh-19990101T000000.000Z", testBackupKey(t), MaxDocumentBytes); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing backup: err = %v, want ErrNotFound", err)
	}
	for _, name := range []string{"../etc/passwd", "", ".hidden", "a/b", "x y"} {
		if _, _, err := ReadDocument(context.Background(), DirTarget(dir), name, testBackupKey(t), MaxDocumentBytes); !errors.Is(err, ErrInvalid) {
			t.Errorf("name %q: err = %v, want ErrInvalid", name, err)
		}
		if _, err := Open(context.Background(), DirTarget(dir), name); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(%q): err = %v, want ErrInvalid", name, err)
		}
	}
	for name, data := range map[string]string{
		"not json":          "hello",
		"other json":        `{"services": []}`,
		"wrong kind":        `{"kind": "something", "format": 1}`,
		"future snapshot":   `{"format": 9, "state": {}}`,
		"invalid service":   `{"kind":"dropmesh-state","format":1,"workspaces":[{"id":"9fe5e6","name":"default","projects":[]}],"services":[{"workspace":"9fe5e6","project":"Bad!","env":"prod","service":"web","image":"x"}]}`,
		"truncated export":  string(data[:len(data)/2]),
		"array not a map":   `[1,2]`,
		"empty":             ``,
		"snapshot not json": `{"format": 1, "state": "x"}`,
	} {
		if _, err := DecodeBackupFile([]byte(data), MaxDocumentBytes); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestBackupNowNeedsATarget(t *testing.T) {
	n := newNode(t)
	if _, err := BackupNow(context.Background(), StoreSource(n.store), testAEAD(t), testConfig(t, newClock(t0))); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("err = %v, want ErrNoTarget", err)
	}
}

func TestParseLocation(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "export.json")
	os.WriteFile(file, []byte("{}"), 0o600)
	manifest := filepath.Join(dir, "dropmesh-20261123T120000.000Z"+suffixManifest)
	os.WriteFile(manifest, []byte("{}"), 0o600)
	creds := S3Credentials{Endpoint: "https://nyc3.digitaloceanspaces.com", AccessKey: "a", SecretKey: "s"}
	for _, c := range []struct {
		in, target, name, file string
	}{
		{"s3://my-bucket/backups/prod/dropmesh-20261123T120000.000Z", "s3://my-bucket/backups/prod/", "dropmesh-20261123T120000.000Z", ""},
		{"s3://my-bucket/dropmesh-x.state.json", "s3://my-bucket/", "dropmesh-x", ""},
		{dir + "/dropmesh-20261123T120000.000Z", dir, "dropmesh-20261123T120000.000Z", ""},
		{dir + "/dropmesh-20261123T120000.000Z.raft-snapshot", dir, "dropmesh-20261123T120000.000Z", ""},
		{manifest, dir, "dropmesh-20261123T120000.000Z", ""},
		{file, "", "", file},
	} {
		loc, err := ParseLocation(c.in, creds)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		got := ""
		if loc.Target != nil {
			got = loc.Target.String()
		}
		if got != c.target || loc.Name != c.name || loc.File != c.file {
			t.Errorf("%s = target %q name %q file %q; want %q %q %q", c.in, got, loc.Name, loc.File, c.target, c.name, c.file)
		}
	}
	for _, bad := range []string{"", "s3://my-bucket/", "s3://AB/x", dir + "/..", dir + "/na me"} {
		if _, err := ParseLocation(bad, creds); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: err = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := ParseLocation("s3://my-bucket/x", S3Credentials{}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "endpoint") {
		t.Errorf("s3 without an endpoint: err = %v", err)
	}
}
