package runtime

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// maxDockerfileBytes bounds the Dockerfile the checks read into memory.
const maxDockerfileBytes = 1 << 20

// CheckDockerfile refuses a Dockerfile that makes the Docker daemon fetch
// something itself: an ADD (also under ONBUILD) whose source is a URL
// (http://, https://, git://, ssh://, any "scheme://") or a git address
// (git@host:repo). The daemon fetches those from the host's own network
// namespace, where no container rule applies, so a build could read the
// metadata service (169.254.169.254, which serves the droplet's user data)
// or a control port and keep the answer in a layer. An ADD source holding
// a variable ($X, ${X}) is refused too: what it expands to cannot be
// checked here. COPY cannot fetch URLs and is not limited. The error wraps
// ErrInvalid and names the line; download in a RUN step instead (RUN steps
// run in a container on the default bridge, which the host rules cover).
func CheckDockerfile(name string, content []byte) error {
	for _, in := range parseInstructions(content) {
		args := in.args
		cmd := in.cmd
		if cmd == "ONBUILD" {
			c, rest, _ := strings.Cut(strings.TrimLeft(args, " \t"), " ")
			cmd, args = strings.ToUpper(c), rest
		}
		if cmd != "ADD" {
			continue
		}
		srcs := addSources(args)
		for _, s := range srcs {
			if why := remoteSource(s); why != "" {
				return invalidf("%s line %d: ADD %s: %s; remote sources are not allowed in dropmesh builds (the Docker daemon would fetch them from the host's network, where the metadata service and the control ports are): download in a RUN step or put the file in the build context", name, in.line, s, why)
			}
		}
	}
	return nil
}

// remoteSource says why an ADD source is not a local path, or "".
func remoteSource(s string) string {
	l := strings.ToLower(s)
	switch {
	case strings.Contains(l, "://"):
		return "a URL"
	case strings.HasPrefix(l, "git@"):
		return "a git address"
	case strings.Contains(s, "$"):
		return "a variable, whose value cannot be checked before the build"
	}
	return ""
}

// instruction is one logical Dockerfile line: the instruction in upper
// case, its arguments, and the line it starts on.
type instruction struct {
	cmd, args string
	line      int
}

// parseInstructions splits a Dockerfile into instructions as the classic
// builder does: parser directives (only "escape" matters here) at the top,
// comment lines dropped (also inside a continued instruction), a line
// ending in the escape character continued on the next one.
func parseInstructions(content []byte) []instruction {
	escape := byte('\\')
	lines := strings.Split(strings.ReplaceAll(string(content), "\r\n", "\n"), "\n")
	directives := true
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, raw := range lines {
		trimmed := strings.TrimLeft(raw, " \t")
		if directives {
			if k, v, ok := directive(trimmed); ok {
				if k == "escape" && (v == "`" || v == `\`) {
					escape = v[0]
				}
				continue
			}
			directives = false
		}
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cur.Len() == 0 {
			if strings.TrimSpace(trimmed) == "" {
				continue
			}
			start = i + 1
		}
		body := strings.TrimRight(trimmed, " \t")
		if strings.HasSuffix(body, string(escape)) {
			cur.WriteString(body[:len(body)-1])
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(body)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
		cur.Reset()
	}
	if cur.Len() > 0 {
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
	}
	return out
}

// directive parses a parser directive line ("# key=value").
func directive(line string) (key, value string, ok bool) {
	rest, ok := strings.CutPrefix(line, "#")
	if !ok {
		return "", "", false
	}
	k, v, ok := strings.Cut(rest, "=")
	k = strings.ToLower(strings.TrimSpace(k))
	if !ok || k == "" || strings.ContainsAny(k, " \t") {
		return "", "", false
	}
	return k, strings.TrimSpace(v), true
}

// addSources returns an ADD's sources: its arguments after the --flags,
// in JSON (exec) form or space separated, without the destination.
func addSources(args string) []string {
	fields := strings.Fields(args)
	for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
		fields = fields[1:]
	}
	rest := strings.Join(fields, " ")
	var list []string
	if strings.HasPrefix(rest, "[") {
		if err := json.Unmarshal([]byte(rest), &list); err != nil {
			list = fields // not JSON: the builder takes it as shell form
		}
	} else {
		list = fields
	}
	if len(list) < 2 {
		return list // malformed: the builder refuses it; check what is there
	}
	return list[:len(list)-1]
}

// checkContextDockerfile finds the Dockerfile name in a tar build context
// (plain or gzip) and checks it with CheckDockerfile; it returns the
// Dockerfile. A missing Dockerfile is refused only when required.
func checkContextDockerfile(contextTar io.ReadSeeker, name string, required bool) ([]byte, error) {
	content, found, err := dockerfileFromTar(contextTar, path.Clean(name))
	if err != nil {
		return nil, err
	}
	if !found {
		if required {
			return nil, invalidf("build context has no %s", name)
		}
		return nil, nil
	}
	return content, CheckDockerfile(name, content)
}

// baseImages lists the images a Dockerfile builds FROM, in order, without
// scratch and the names of its own earlier stages. A variable in FROM is
// replaced by the default its ARG gives before the first FROM (dropmesh
// passes no build arguments, so the default is the value); one without a
// default is refused: the image could not be checked.
func baseImages(name string, content []byte) ([]string, error) {
	args := map[string]string{}
	stages := map[string]bool{}
	var out []string
	seenFrom := false
	for _, in := range parseInstructions(content) {
		switch in.cmd {
		case "ARG":
			if seenFrom {
				continue
			}
			for _, f := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(f, "=")
				args[k] = strings.Trim(v, `"'`)
			}
		case "FROM":
			seenFrom = true
			fields := strings.Fields(in.args)
			for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
				fields = fields[1:]
			}
			if len(fields) == 0 {
				continue // malformed: the builder refuses it
			}
			ref := os.Expand(fields[0], func(k string) string { return args[k] })
			if strings.Contains(fields[0], "$") && (ref == "" || strings.Contains(ref, "$") || strings.HasSuffix(ref, ":")) {
				return nil, invalidf("%s line %d: FROM %s: the variable has no default before the first FROM, so the base image cannot be checked", name, in.line, fields[0])
			}
			if ref != "scratch" && !stages[strings.ToLower(ref)] {
				out = append(out, ref)
			}
			if len(fields) >= 3 && strings.EqualFold(fields[1], "AS") {
				stages[strings.ToLower(fields[2])] = true
			}
		}
	}
	return out, nil
}

// dockerfileFromTar reads the regular file name from a tar; a hard link
// is followed to its target (an earlier entry) in a second pass.
func dockerfileFromTar(contextTar io.ReadSeeker, name string) ([]byte, bool, error) {
	want := name
	for pass := 0; pass < 2; pass++ {
		b, link, found, err := findTarFile(contextTar, want)
		if err != nil || !found || link == "" {
			return b, found, err
		}
		if pass == 1 {
			break
		}
		want = link
	}
	return nil, false, invalidf("build context entry %q: a hard link to another link", name)
}

// findTarFile returns the content of the entry name, or its hard link's
// clean target.
func findTarFile(contextTar io.ReadSeeker, name string) (content []byte, link string, found bool, err error) {
	if _, err := contextTar.Seek(0, io.SeekStart); err != nil {
		return nil, "", false, fmt.Errorf("build context: rewind: %w", err)
	}
	in, err := decompress(contextTar)
	if err != nil {
		return nil, "", false, err
	}
	tr := tar.NewReader(in)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, "", false, nil
		}
		if err != nil {
			return nil, "", false, invalidf("build context is not a valid tar archive: %v", err)
		}
		if path.Clean(hdr.Name) != name {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			if hdr.Size > maxDockerfileBytes {
				return nil, "", false, invalidf("build context entry %q: a Dockerfile of %d bytes is larger than the %d-byte limit", hdr.Name, hdr.Size, maxDockerfileBytes)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, "", false, invalidf("build context entry %q: %v", hdr.Name, err)
			}
			return b, "", true, nil
		case tar.TypeLink:
			return nil, path.Clean(hdr.Linkname), true, nil
		default:
			return nil, "", false, invalidf("build context entry %q: the Dockerfile must be a regular file", hdr.Name)
		}
	}
}
