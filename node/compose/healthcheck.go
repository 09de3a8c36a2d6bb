package compose

import (
	"net/url"
	"path"
	"strconv"
	"strings"
)

// httpCheck finds the HTTP check in a Compose healthcheck test: a curl or
// wget of a URL on localhost. It returns the URL's path (with its query) and
// port (0 when the URL has none), or ok false.
func httpCheck(test []string) (p string, port int, ok bool) {
	if len(test) < 2 {
		return "", 0, false
	}
	var args []string
	switch test[0] {
	case "CMD":
		args = test[1:]
	case "CMD-SHELL":
		args = strings.Fields(strings.Join(test[1:], " "))
	default:
		return "", 0, false
	}
	tool := false
	for _, a := range args {
		a = strings.Trim(a, `'"`)
		switch path.Base(a) {
		case "curl", "wget":
			tool = true
			continue
		}
		if !tool || !(strings.HasPrefix(a, "http://") || strings.HasPrefix(a, "https://")) {
			continue
		}
		u, err := url.Parse(a)
		if err != nil {
			return "", 0, false
		}
		switch u.Hostname() {
		case "localhost", "127.0.0.1", "0.0.0.0", "::1":
		default:
			return "", 0, false
		}
		p = u.EscapedPath()
		if p == "" {
			p = "/"
		}
		if u.RawQuery != "" {
			p += "?" + u.RawQuery
		}
		if ps := u.Port(); ps != "" {
			port, _ = strconv.Atoi(ps)
		}
		return p, port, true
	}
	return "", 0, false
}

// execCheck turns a Compose healthcheck test into the command dropmesh runs
// inside the container: CMD's arguments as they are, CMD-SHELL's string
// through /bin/sh -c (as Docker does). ok is false for any other form.
func execCheck(test []string) (cmd []string, ok bool) {
	if len(test) < 2 {
		return nil, false
	}
	switch test[0] {
	case "CMD":
		return append([]string(nil), test[1:]...), true
	case "CMD-SHELL":
		return []string{"/bin/sh", "-c", strings.Join(test[1:], " ")}, true
	}
	return nil, false
}
