package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/api"
	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// agent is a fresh cluster behind the real agent API (apitest.Fake underneath),
// and the connect function the CLI would pass to RestoreCommand.
func agent(t *testing.T) (*apitest.Fake, func() (Importer, error)) {
	t.Helper()
	fake := apitest.NewFake("node-1")
	h, err := api.New(api.Options{Controller: fake, APIKey: "test-key"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return fake, func() (Importer, error) {
		return apiclient.New(apiclient.Config{Addrs: []string{srv.URL}, APIKey: "test-key", RetryFor: 2 * time.Second})
	}
}

func run(t *testing.T, cmd interface {
	SetArgs([]string)
	ExecuteContext(context.Context) error
}, args ...string) error {
	t.Helper()
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cmd.ExecuteContext(ctx)
}

// The whole round trip: a real raft store with services, a scheduled-style
// backup to a directory, then `state restore` through the agent API into a
// fresh cluster, which ends with the same services.
func TestRestoreCommandRoundTrip(t *testing.T) {
	n := newNode(t)
	aead := testAEAD(t)
	n.deploySample(aead)
	dir := t.TempDir()
	n.setBackup(raftfsm.BackupSettings{Enabled: true, Dir: dir})
	info, err := BackupNow(context.Background(), StoreSource(n.store), aead, testConfig(t, newClock(t0)))
	if err != nil {
		t.Fatal(err)
	}
	var want raftfsm.ExportDocument
	n.store.FSM().View(func(s *raftfsm.State) { want = exportOf(s) })

	fake, connect := agent(t)
	before := fake.StateJSON()

	// --dry-run reads and checks, imports nothing.
	cmd := RestoreCommand(connect)
	var out bytes.Buffer
	cmd.SetOut(&out)
	if err := run(t, cmd, "--from", filepath.Join(dir, info.Name), "--dry-run", "--cluster-secret-file", secretFile(t, testSecret)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "2 services; nothing imported") || fake.CallCount("ImportState") != 0 || fake.StateJSON() != before {
		t.Fatalf("dry run printed %q and made %d imports", out.String(), fake.CallCount("ImportState"))
	}

	cmd = RestoreCommand(connect)
	out.Reset()
	cmd.SetOut(&out)
	if err := run(t, cmd, "--from", filepath.Join(dir, info.Name), "--json", "--cluster-secret-file", secretFile(t, testSecret)); err != nil {
		t.Fatal(err)
	}
	var res raftfsm.ImportResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res.Services) != 2 {
		t.Fatalf("restore printed %q (%v), want the import result with 2 services", out.String(), err)
	}
	var got raftfsm.ExportDocument
	fake.View(func(s *raftfsm.State) { got = exportOf(s) })
	sameServices(t, got, want)
	// The restored secret opens with the cluster key: the backup carried it sealed.
	fake.View(func(s *raftfsm.State) {
		svc := s.Services[raftfsm.ServiceKey(testWS, "shop", "prod", "redis")]
		if svc == nil {
			t.Fatal("redis not restored")
		}
		plain, err := raftfsm.OpenSecrets(aead, svc.Key, svc.Spec)
		if err != nil || plain["REDIS_PASSWORD"] != "s3cret" {
			t.Errorf("restored redis secret: %v, %v", plain, err)
		}
	})
}

func TestRestoreFromSpacesAndFromFiles(t *testing.T) {
	f := newFakeS3(t)
	n := newNode(t)
	aead := testAEAD(t)
	n.deploySample(aead)
	c, err := NewS3Client(f.config())
	if err != nil {
		t.Fatal(err)
	}
	info, err := Backup(context.Background(), StoreSource(n.store), S3Target(c, "prod"), testConfig(t, newClock(time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	var want raftfsm.ExportDocument
	n.store.FSM().View(func(s *raftfsm.State) { want = exportOf(s) })

	t.Setenv("DROPMESH_SPACES_ENDPOINT", f.srv.URL)
	t.Setenv("DROPMESH_SPACES_REGION", f.region)
	t.Setenv("DROPMESH_SPACES_ACCESS_KEY", f.accessKey)
	t.Setenv("DROPMESH_SPACES_SECRET_KEY", f.secretKey)

	// The listing command finds it.
	var out bytes.Buffer
	list := BackupsCommand()
	list.SetOut(&out)
	if err := run(t, list, "--from", "s3://"+f.bucket+"/prod/", "--json"); err != nil {
		t.Fatal(err)
	}
	var infos []Info
	if err := json.Unmarshal(out.Bytes(), &infos); err != nil || len(infos) != 1 || infos[0].Name != info.Name {
		t.Fatalf("backups printed %q (%v)", out.String(), err)
	}

	t.Setenv("DROPMESH_CLUSTER_SECRET_FILE", secretFile(t, testSecret))
	fake, connect := agent(t)
	if err := run(t, RestoreCommand(connect), "--from", "s3://"+f.bucket+"/prod/"+info.Name); err != nil {
		t.Fatal(err)
	}
	var got raftfsm.ExportDocument
	fake.View(func(s *raftfsm.State) { got = exportOf(s) })
	sameServices(t, got, want)

	// A raft snapshot file on its own restores too.
	rc, err := OpenSnapshot(context.Background(), S3Target(c, "prod"), info.Name)
	if err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(t.TempDir(), "state.bin")
	data := new(bytes.Buffer)
	data.ReadFrom(rc)
	rc.Close()
	os.WriteFile(snap, data.Bytes(), 0o600)
	fake2, connect2 := agent(t)
	if err := run(t, RestoreCommand(connect2), "--from", snap); err != nil {
		t.Fatal(err)
	}
	fake2.View(func(s *raftfsm.State) { got = exportOf(s) })
	sameServices(t, got, want)
}

func TestRestoreRefusesBadInputAndChangesNothing(t *testing.T) {
	fake, connect := agent(t)
	before := fake.StateJSON()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.json")
	os.WriteFile(garbage, []byte(`{"kind":"dropmesh-state","format":7}`), 0o600)
	for _, args := range [][]string{
		{},
		{"--from", filepath.Join(dir, "dropmesh-20261123T120000.000Z")}, // no such backup
		{"--from", garbage},
		{"--from", "s3://bucket/x"}, // no endpoint
		{"--from", dir + "/bad name"},
	} {
		err := run(t, RestoreCommand(connect), args...)
		if err == nil {
			t.Errorf("restore %v: no error", args)
			continue
		}
		if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotFound) {
			t.Errorf("restore %v: err = %v, want ErrInvalid or ErrNotFound", args, err)
		}
	}
	if fake.CallCount("ImportState") != 0 || fake.StateJSON() != before {
		t.Fatal("a refused restore reached the cluster")
	}
}
