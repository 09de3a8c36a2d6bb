package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// A backup that fails authentication is refused by `state restore` with a
// clear error and the cluster's state unchanged: one byte flipped in a file,
// a planted manifest whose sums match planted files (an attacker who can
// write the bucket but has no cluster secret), a format-1 manifest, another
// cluster's secret.
func TestRestoreRefusesTamperedBackups(t *testing.T) {
	n := newNode(t)
	n.deploySample(testAEAD(t))
	secret := secretFile(t, testSecret)

	fresh := func(t *testing.T) (string, Info) {
		dir := t.TempDir()
		info, err := Backup(context.Background(), StoreSource(n.store), DirTarget(dir), testConfig(t, newClock(t0)))
		if err != nil {
			t.Fatal(err)
		}
		return dir, info
	}
	writeManifest := func(t *testing.T, dir string, info Info) {
		b, _ := json.Marshal(info)
		if err := os.WriteFile(filepath.Join(dir, info.Name+suffixManifest), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// plant replaces a file with content of the attacker's and fixes the
	// manifest's size and sum to match, as anyone could with sha256 alone.
	plant := func(t *testing.T, dir string, info Info, suffix string, content []byte) Info {
		os.WriteFile(filepath.Join(dir, info.Name+suffix), content, 0o600)
		for i := range info.Files {
			if info.Files[i].Name == info.Name+suffix {
				sum := sha256.Sum256(content)
				info.Files[i].SHA256, info.Files[i].Size = hex.EncodeToString(sum[:]), int64(len(content))
			}
		}
		writeManifest(t, dir, info)
		return info
	}
	attackerDoc := func() []byte {
		var doc raftfsm.ExportDocument
		n.store.FSM().View(func(s *raftfsm.State) { doc = exportOf(s) })
		doc.Users = []raftfsm.User{{Name: "mallory", Role: raftfsm.RoleAdmin, PasswordHash: "$2a$10$abcdefghijklmnopqrstuv"}}
		b, _ := json.Marshal(doc)
		return b
	}

	cases := map[string]func(t *testing.T, dir string, info Info){
		"one byte flipped in the state file": func(t *testing.T, dir string, info Info) {
			p := filepath.Join(dir, info.Name+suffixState)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o600)
		},
		"one byte flipped, manifest sums fixed": func(t *testing.T, dir string, info Info) {
			b, _ := os.ReadFile(filepath.Join(dir, info.Name+suffixState))
			b[len(b)-1] ^= 0x80
			plant(t, dir, info, suffixState, b)
		},
		"planted plain export with a matching manifest": func(t *testing.T, dir string, info Info) {
			info = plant(t, dir, info, suffixState, attackerDoc())
		},
		"planted export, manifest MAC dropped and format 1": func(t *testing.T, dir string, info Info) {
			info.Format, info.MAC = 1, ""
			plant(t, dir, info, suffixState, attackerDoc())
		},
		"planted sealed-looking file": func(t *testing.T, dir string, info Info) {
			plant(t, dir, info, suffixState, append(bytes.Clone(sealedMagic), attackerDoc()...))
		},
		"manifest field changed": func(t *testing.T, dir string, info Info) {
			info.ClusterName = "other"
			writeManifest(t, dir, info)
		},
		"snapshot swapped in for the export": func(t *testing.T, dir string, info Info) {
			snap, _ := os.ReadFile(filepath.Join(dir, info.Name+suffixSnapshot))
			plant(t, dir, info, suffixState, snap)
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			dir, info := fresh(t)
			tamper(t, dir, info)
			fake, connect := agent(t)
			before := fake.StateJSON()
			err := run(t, RestoreCommand(connect), "--from", filepath.Join(dir, info.Name), "--cluster-secret-file", secret)
			if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "fails authentication") {
				t.Fatalf("restore: err = %v, want ErrUnauthenticated", err)
			}
			if fake.CallCount("ImportState") != 0 || fake.StateJSON() != before {
				t.Fatal("a tampered backup reached the cluster")
			}
		})
	}

	t.Run("another cluster's secret", func(t *testing.T) {
		dir, info := fresh(t)
		fake, connect := agent(t)
		before := fake.StateJSON()
		err := run(t, RestoreCommand(connect), "--from", filepath.Join(dir, info.Name), "--cluster-secret-file", secretFile(t, strings.Repeat("07", 32)))
		if !errors.Is(err, ErrUnauthenticated) || fake.StateJSON() != before {
			t.Fatalf("restore with another secret: err = %v", err)
		}
		// Without a secret at all: a clear error naming the flag.
		err = run(t, RestoreCommand(connect), "--from", filepath.Join(dir, info.Name))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "--cluster-secret-file") || fake.StateJSON() != before {
			t.Fatalf("restore without a secret: err = %v", err)
		}
		// A sealed file given directly opens only with the key too.
		sealed := filepath.Join(dir, info.Name+suffixState)
		if err := run(t, RestoreCommand(connect), "--from", sealed); !errors.Is(err, ErrInvalid) {
			t.Fatalf("sealed file without a secret: err = %v", err)
		}
		if err := run(t, RestoreCommand(connect), "--from", sealed, "--cluster-secret-file", secret); err != nil {
			t.Fatalf("sealed file with the secret: %v", err)
		}
	})
}
