package runtimetest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Every binary the kit builds carries a version (-X main.version), so the
// sample app in a test image never answers with an empty one.
func TestBuiltBinariesKnowTheirVersion(t *testing.T) {
	v := TestBinaryVersion()
	if v == "" {
		t.Fatal("TestBinaryVersion is empty")
	}
	cmd := exec.Command(TestAppBinary(t), "once")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no $VERSION: the binary's own version shows
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("testapp once: %v\n%s", err, out)
	}
	if want := "(version " + v + ")"; !strings.Contains(string(out), want) {
		t.Fatalf("testapp once printed %q; want it to name %q", out, want)
	}
}
