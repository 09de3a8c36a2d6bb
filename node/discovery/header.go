package discovery

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The mesh header opens every connection between two nodes' forwarders:
//
//	DM1 <workspace> <project/env/service> <port> <unix nanos> <hmac>\n
//
// The HMAC-SHA256 (with the cluster's mesh key) covers everything before
// it, so only an agent of the cluster can ask a node to connect to one of
// its containers; the time stamp bounds how long a captured header can be
// replayed (MaxHeaderAge), and a replay only reaches what it reached.
const headerMagic = "DM1"

// MaxHeaderAge is how far a header's time stamp may be from the receiver's
// clock (agents' clocks are NTP-synchronised).
const MaxHeaderAge = time.Minute

// maxHeaderLen bounds the header line.
const maxHeaderLen = 512

// ErrBadHeader is a mesh header that is malformed, too old or not signed
// with the cluster's key.
var ErrBadHeader = errors.New("discovery: bad mesh header")

// target is what a mesh header asks for.
type target struct {
	Workspace, Key string
	Port           int
}

func sign(key []byte, body string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

// encodeHeader is the header for t at now.
func encodeHeader(key []byte, t target, now time.Time) string {
	body := fmt.Sprintf("%s %s %s %d %d", headerMagic, t.Workspace, t.Key, t.Port, now.UnixNano())
	return body + " " + sign(key, body) + "\n"
}

// readHeader reads and checks one header.
func readHeader(r *bufio.Reader, key []byte, now time.Time) (target, error) {
	var line []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return target{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
		}
		if b == '\n' {
			break
		}
		if line = append(line, b); len(line) > maxHeaderLen {
			return target{}, fmt.Errorf("%w: longer than %d bytes", ErrBadHeader, maxHeaderLen)
		}
	}
	f := strings.Split(string(line), " ")
	if len(f) != 6 || f[0] != headerMagic {
		return target{}, fmt.Errorf("%w: not a %s header", ErrBadHeader, headerMagic)
	}
	body := strings.Join(f[:5], " ")
	if !hmac.Equal([]byte(sign(key, body)), []byte(f[5])) {
		return target{}, fmt.Errorf("%w: signature", ErrBadHeader)
	}
	port, err := strconv.Atoi(f[3])
	if err != nil || port < 1 || port > 65535 {
		return target{}, fmt.Errorf("%w: port %q", ErrBadHeader, f[3])
	}
	ts, err := strconv.ParseInt(f[4], 10, 64)
	if err != nil {
		return target{}, fmt.Errorf("%w: time %q", ErrBadHeader, f[4])
	}
	if d := now.Sub(time.Unix(0, ts)); d > MaxHeaderAge || d < -MaxHeaderAge {
		return target{}, fmt.Errorf("%w: time stamp %s off", ErrBadHeader, d)
	}
	return target{Workspace: f[1], Key: f[2], Port: port}, nil
}
