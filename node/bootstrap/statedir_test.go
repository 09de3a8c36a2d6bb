package bootstrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStateDirKeepsSecretsPrivateAndStable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "demo")
	sd, err := OpenStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode %v", st.Mode().Perm())
	}
	if _, ok, err := sd.APIKey(); ok || err != nil {
		t.Fatalf("a fresh dir has an API key (%v, %v)", ok, err)
	}
	tok, err := sd.BootstrapToken()
	if err != nil || len(tok) != 64 {
		t.Fatalf("bootstrap token %q (%v)", tok, err)
	}
	if again, err := sd.BootstrapToken(); err != nil || again != tok {
		t.Fatalf("the token did not read back (%v)", err)
	}
	if err := sd.SaveClaim("k3y", "-----BEGIN CERTIFICATE-----\n"); err != nil {
		t.Fatal(err)
	}
	if key, ok, err := sd.APIKey(); err != nil || !ok || key != "k3y" {
		t.Fatalf("API key %q (%v, %v)", key, ok, err)
	}
	if _, err := os.Stat(sd.File(BootstrapTokenFile)); !os.IsNotExist(err) {
		t.Fatalf("the used token is still there (%v)", err)
	}
	pw, err := sd.AdminPassword()
	if err != nil || len(pw) != 20 || strings.ContainsAny(pw, "0O1lI") {
		t.Fatalf("password %q (%v)", pw, err)
	}
	if pw2, _ := sd.AdminPassword(); pw2 != pw {
		t.Fatal("the password changed on a second read")
	}
	if err := sd.WriteEnv("https://mesh.example.com", "k3y"); err != nil {
		t.Fatal(err)
	}
	rec := Record{Name: "demo", ClusterID: "0123456789abcdef", Regions: []string{"nyc3"}}
	if err := sd.SaveRecord(rec); err != nil {
		t.Fatal(err)
	}
	got, ok, err := sd.LoadRecord()
	if err != nil || !ok || got.ClusterID != rec.ClusterID || got.UpdatedAt.IsZero() {
		t.Fatalf("record %+v (%v, %v)", got, ok, err)
	}
	if env, err := os.ReadFile(sd.File(EnvFile)); err != nil || !strings.Contains(string(env), "export DROPMESH_CACERT="+sd.File(CACertFile)+"\n") {
		t.Fatalf("env file (%v):\n%s", err, env)
	}
	for _, f := range []string{APIKeyFile, CACertFile, AdminPasswordFile, EnvFile, RecordFile} {
		if st, err := os.Stat(sd.File(f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v mode %v", f, err, st.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	// A dir others can read is made private again.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStateDir(dir); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode %v after reopening", st.Mode().Perm())
	}
}

func TestStateDirRefusesACorruptSecretOrRecord(t *testing.T) {
	sd, err := OpenStateDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sd.File(BootstrapTokenFile), []byte("nothex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sd.BootstrapToken(); err == nil {
		t.Fatal("a corrupt secret read as a secret")
	}
	if err := os.WriteFile(sd.File(RecordFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sd.LoadRecord(); err == nil || !strings.Contains(err.Error(), RecordFile) {
		t.Fatalf("corrupt record: %v", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStateDir(f); err == nil {
		t.Fatal("a file opened as a state dir")
	}
}
