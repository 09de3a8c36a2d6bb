package discovery

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The mesh request opens every stream between two nodes' forwarders, inside
// the mutual-TLS connection (see MeshTLS), so it needs no signature of its
// own: the gateway already knows which node asks.
//
//	DM2 <workspace> <project/env/service> <port>\n
//
// The gateway answers one byte: replyOK once it holds a connection to a
// healthy local instance (from then on the stream is the instance's), or
// replyRefused, then closes. The answer lets the caller's forwarder try the
// next instance instead of handing its container a dead connection.
const headerMagic = "DM2"

// Gateway answers.
const (
	replyOK      byte = '+'
	replyRefused byte = '-'
)

// maxHeaderLen bounds the request line.
const maxHeaderLen = 512

// ErrBadHeader is a mesh request that is malformed.
var ErrBadHeader = errors.New("discovery: bad mesh request")

// target is what a mesh request asks for.
type target struct {
	Workspace, Key string
	Port           int
}

// encodeHeader is the request line for t.
func encodeHeader(t target) string {
	return fmt.Sprintf("%s %s %s %d\n", headerMagic, t.Workspace, t.Key, t.Port)
}

// readHeader reads and checks one request line.
func readHeader(r *bufio.Reader) (target, error) {
	var line []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return target{}, fmt.Errorf("%w: %w", ErrBadHeader, err)
		}
		if b == '\n' {
			break
		}
		if line = append(line, b); len(line) > maxHeaderLen {
			return target{}, fmt.Errorf("%w: longer than %d bytes", ErrBadHeader, maxHeaderLen)
		}
	}
	f := strings.Split(string(line), " ")
	if len(f) != 4 || f[0] != headerMagic {
		return target{}, fmt.Errorf("%w: not a %s request", ErrBadHeader, headerMagic)
	}
	if f[1] == "" || strings.Count(f[2], "/") != 2 {
		return target{}, fmt.Errorf("%w: target %q %q", ErrBadHeader, f[1], f[2])
	}
	port, err := strconv.Atoi(f[3])
	if err != nil || port < 1 || port > 65535 {
		return target{}, fmt.Errorf("%w: port %q", ErrBadHeader, f[3])
	}
	return target{Workspace: f[1], Key: f[2], Port: port}, nil
}
