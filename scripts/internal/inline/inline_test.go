package inline

import (
	"errors"
	"strings"
	"testing"
)

func TestFill(t *testing.T) {
	files := map[string]string{"a.sh": "echo a\necho b\n", "u": "[Unit]\n"}
	read := func(f string) (string, error) {
		s, ok := files[f]
		if !ok {
			return "", errors.New("no such file")
		}
		return s, nil
	}
	script := "put a <<'SCRIPT'\nold\nlines\nSCRIPT\nput u <<'UNIT'\nUNIT\nrest\n"
	copies := []Copy{{"put a <<'SCRIPT'", "SCRIPT", "a.sh"}, {"put u <<'UNIT'", "UNIT", "u"}}
	got, err := Fill(script, copies, read)
	if err != nil {
		t.Fatal(err)
	}
	want := "put a <<'SCRIPT'\necho a\necho b\nSCRIPT\nput u <<'UNIT'\n[Unit]\nUNIT\nrest\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if again, err := Fill(got, copies, read); err != nil || again != got {
		t.Fatalf("a second fill changed the script (%v):\n%s", err, again)
	}
	for name, tc := range map[string]struct {
		script string
		file   string
	}{
		"no marker":        {"nothing here\n", "echo\n"},
		"no end":           {"put a <<'SCRIPT'\nold\n", "echo\n"},
		"no final newline": {script, "echo"},
		"holds the end":    {script, "echo\nSCRIPT\necho\n"},
		"empty file":       {script, ""},
	} {
		files["a.sh"] = tc.file
		if _, err := Fill(tc.script, copies[:1], read); err == nil || !strings.Contains(err.Error(), "a.sh") {
			t.Errorf("%s: %v; want an error naming the file", name, err)
		}
	}
	if _, err := Fill(script, []Copy{{"put a <<'SCRIPT'", "SCRIPT", "missing"}}, read); err == nil {
		t.Error("a missing file filled")
	}
}
