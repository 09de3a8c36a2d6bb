package cli

import (
	"testing"
)

func TestDockerignoreRules(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, ".dockerignore", "# comment\n\n*.log\n/build/\nsrc/**/*.tmp\nvendor\n!vendor/keep\n./docs/*.md\n")
	rules, err := readDockerignore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"app.log":           true,
		"sub/app.log":       false, // "*" stays within one path element
		"build":             true,
		"build/out/bin":     true,
		"src/a/b/c.tmp":     true,
		"src/c.tmp":         true,
		"src/c.go":          false,
		"vendor/lib/x.go":   true,
		"vendor/keep":       false,
		"vendor/keep/a":     false,
		"docs/readme.md":    true,
		"docs/sub/other.md": false,
		"main.go":           false,
	} {
		if got := ignored(rules, path); got != want {
			t.Errorf("%s: ignored %v, want %v", path, got, want)
		}
	}
	none, err := readDockerignore(t.TempDir())
	if err != nil || none != nil || ignored(none, "anything") {
		t.Fatalf("no .dockerignore: %v %v", none, err)
	}
}

func TestTarContextRefusesAFile(t *testing.T) {
	f := writeFile(t, t.TempDir(), "Dockerfile", "FROM scratch\n")
	if _, err := tarToTemp(f); err == nil {
		t.Fatal("a file was accepted as a context")
	}
}
