// Package inline keeps one source for the host files that install-agent.sh
// and join.sh write. Both scripts must stand alone (join.sh is copied to a
// host by hand, install-agent.sh uploaded over SSH), so each carries the
// files it installs (the host guard, the metadata helper, the units) as
// here-documents; this package fills those here-documents from the
// canonical files beside the scripts (metadata-guard.sh, metadata-env.sh,
// systemd/*). `go generate ./scripts` rewrites the scripts with it, and a
// test of package scripts fails when a copy differs from its file.
package inline

import (
	"fmt"
	"strings"
)

// Copy is one here-document of a script: it starts on the line after the
// first line containing Marker and ends before the line End; its body is
// the file File (a path relative to the scripts directory).
type Copy struct {
	Marker, End, File string
}

// Copies lists, for each script, the here-documents it carries.
func Copies() map[string][]Copy {
	shared := []Copy{
		{"/usr/local/lib/dropmesh/metadata-env <<'SCRIPT'", "SCRIPT", "metadata-env.sh"},
		{"/etc/systemd/system/dropmesh-metadata.service <<'UNIT'", "UNIT", "systemd/dropmesh-metadata.service"},
		{"/etc/systemd/system/dropmesh-agent.service <<'UNIT'", "UNIT", "systemd/dropmesh-agent.service"},
		{"/usr/local/lib/dropmesh/metadata-guard <<'SCRIPT'", "SCRIPT", "metadata-guard.sh"},
		{"/etc/systemd/system/dropmesh-metadata-guard.service <<'UNIT'", "UNIT", "systemd/dropmesh-metadata-guard.service"},
	}
	return map[string][]Copy{
		"install-agent.sh": append(append([]Copy(nil), shared...),
			// The scrub of cloud-init's copies is the base snapshot's alone.
			Copy{"/etc/systemd/system/dropmesh-agent.service.d/scrub-user-data.conf <<'UNIT'", "UNIT", "systemd/scrub-user-data.conf"}),
		"join.sh": shared,
	}
}

// Fill returns script with the body of each here-document of copies
// replaced by its file's content, as read returns it. A marker that is
// missing, a here-document without its end line, or a file that is empty,
// lacks its final newline or contains the end line itself is an error.
func Fill(script string, copies []Copy, read func(file string) (string, error)) (string, error) {
	for _, c := range copies {
		body, err := read(c.File)
		if err != nil {
			return "", fmt.Errorf("inline %s: %w", c.File, err)
		}
		if body == "" || !strings.HasSuffix(body, "\n") {
			return "", fmt.Errorf("inline %s: empty or without a final newline", c.File)
		}
		if strings.HasPrefix(body, c.End+"\n") || strings.Contains(body, "\n"+c.End+"\n") {
			return "", fmt.Errorf("inline %s: it contains the here-document's end line %s", c.File, c.End)
		}
		i := strings.Index(script, c.Marker)
		if i < 0 {
			return "", fmt.Errorf("inline %s: no %q in the script", c.File, c.Marker)
		}
		nl := strings.Index(script[i:], "\n")
		if nl < 0 {
			return "", fmt.Errorf("inline %s: nothing after %q", c.File, c.Marker)
		}
		start := i + nl + 1
		end := -1
		if strings.HasPrefix(script[start:], c.End+"\n") {
			end = start
		} else if j := strings.Index(script[start:], "\n"+c.End+"\n"); j >= 0 {
			end = start + j + 1
		}
		if end < 0 {
			return "", fmt.Errorf("inline %s: the here-document after %q does not end with a line %s", c.File, c.Marker, c.End)
		}
		script = script[:start] + body + script[end:]
	}
	return script, nil
}
