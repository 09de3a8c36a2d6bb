package scripts

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runMetadata runs metadata-env.sh against a metadata service answering
// values, and returns the file it wrote.
func runMetadata(t *testing.T, values map[string]string, useURL bool) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := values[strings.TrimPrefix(r.URL.Path, "/metadata/v1/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(v))
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "run", "metadata.env")
	cmd := exec.Command("sh", "metadata-env.sh")
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "DROPMESH_METADATA_OUT=" + out}
	if useURL {
		cmd.Env = append(cmd.Env, "DROPMESH_METADATA_URL="+srv.URL+"/metadata/v1")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("metadata-env: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMetadataEnvWritesTheDropletsAddresses(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	got := runMetadata(t, map[string]string{
		"id": "3164494", "region": "nyc3",
		"interfaces/private/0/ipv4/address": "10.110.0.5",
		"interfaces/public/0/ipv4/address":  "203.0.113.7",
	}, true)
	want := "DROPMESH_DROPLET_ID=3164494\nDROPMESH_REGION=nyc3\nDROPMESH_ADVERTISE=10.110.0.5\nDROPMESH_PUBLIC_IP=203.0.113.7\n"
	if got != want {
		t.Fatalf("metadata.env:\n%s\nwant:\n%s", got, want)
	}
}

func TestMetadataEnvDropsValuesThatAreNotPlain(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	got := runMetadata(t, map[string]string{
		"id": "12", "region": "nyc3\nDROPMESH_BOOTSTRAP=true",
		"interfaces/private/0/ipv4/address": "10.0.0.1; reboot",
	}, true)
	if got != "DROPMESH_DROPLET_ID=12\n" {
		t.Fatalf("metadata.env took unchecked values:\n%s", got)
	}
}

func TestMetadataEnvOffADroplet(t *testing.T) {
	if _, err := os.Stat("/sys/class/dmi/id/sys_vendor"); err == nil {
		if b, _ := os.ReadFile("/sys/class/dmi/id/sys_vendor"); strings.TrimSpace(string(b)) == "DigitalOcean" {
			t.Skip("this machine is a droplet")
		}
	}
	if got := runMetadata(t, nil, false); got != "" {
		t.Fatalf("off a droplet metadata.env holds:\n%s", got)
	}
}
