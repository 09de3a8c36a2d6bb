package raftfsm

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// raft's RPC type bytes (net_transport.go: unexported, stable on the wire).
const (
	rpcAppendEntries uint8 = iota
	rpcRequestVote
	rpcInstallSnapshot
	rpcTimeoutNow
	rpcRequestPreVote
)

// rpcHead is the part of every raft request that says who sends it. The
// codec inlines the embedded header as raft's own structs do, and skips the
// fields this struct does not name (the entries).
type rpcHead struct {
	raft.RPCHeader
	Leader    []byte // AppendEntries, InstallSnapshot (deprecated, still sent)
	Candidate []byte // RequestVote (deprecated, still sent)
	Size      int64  // InstallSnapshot: the snapshot bytes that follow
}

// rpcGuard sits under raft's reader on an accepted connection and lets a
// request through only once it has decoded its header and found that the
// sender's id is the node id of the connection's certificate, and its
// address the one the configuration has for that node. raft then decodes
// the very same bytes. Snapshot data after an InstallSnapshot header passes
// through unread.
type rpcGuard struct {
	src     *bufio.Reader
	rec     recorder
	dec     *codec.Decoder
	pending []byte
	raw     int64 // snapshot bytes still to pass through
	check   func(rpcType uint8, h *rpcHead) error
}

func newRPCGuard(conn io.Reader, check func(uint8, *rpcHead) error) *rpcGuard {
	g := &rpcGuard{src: bufio.NewReaderSize(conn, 64<<10), check: check}
	g.rec.src = g.src
	g.dec = codec.NewDecoder(&g.rec, &codec.MsgpackHandle{})
	return g
}

func (g *rpcGuard) Read(p []byte) (int, error) {
	if len(g.pending) == 0 && g.raw == 0 {
		if err := g.next(); err != nil {
			return 0, err
		}
	}
	if len(g.pending) > 0 {
		n := copy(p, g.pending)
		g.pending = g.pending[n:]
		return n, nil
	}
	if int64(len(p)) > g.raw {
		p = p[:g.raw]
	}
	n, err := g.src.Read(p)
	g.raw -= int64(n)
	return n, err
}

// next reads, checks and buffers one request.
func (g *rpcGuard) next() error {
	g.rec.buf = g.rec.buf[:0]
	t, err := g.rec.ReadByte()
	if err != nil {
		return err
	}
	if t > rpcRequestPreVote {
		return fmt.Errorf("raft request of unknown type %d", t)
	}
	var h rpcHead
	if err := g.dec.Decode(&h); err != nil {
		return fmt.Errorf("raft request header: %w", err)
	}
	if err := g.check(t, &h); err != nil {
		return err
	}
	if t == rpcInstallSnapshot {
		if h.Size < 0 {
			return fmt.Errorf("raft snapshot of size %d", h.Size)
		}
		g.raw = h.Size
	}
	g.pending = g.rec.buf // next runs again only once pending is all read: no copy needed
	return nil
}

// recorder reads from src and keeps every byte it hands out, so the exact
// bytes of a request can be given to raft once checked.
type recorder struct {
	src *bufio.Reader
	buf []byte
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.src.Read(p)
	r.buf = append(r.buf, p[:n]...)
	return n, err
}

func (r *recorder) ReadByte() (byte, error) {
	c, err := r.src.ReadByte()
	if err == nil {
		r.buf = append(r.buf, c)
	}
	return c, err
}

func (r *recorder) UnreadByte() error {
	if err := r.src.UnreadByte(); err != nil {
		return err
	}
	r.buf = r.buf[:len(r.buf)-1]
	return nil
}

// checkHeader is the identity rule for one request on a connection from
// node peer: the header names peer, and the address it gives (raft records
// it as the leader's or the candidate's) is peer's in the configuration.
func checkHeader(peer string, cfg raft.Configuration, t uint8, h *rpcHead) error {
	if string(h.ID) != peer {
		return fmt.Errorf("%w: a request from %s claims to come from %q", ErrPeerRefused, peer, h.ID)
	}
	for _, legacy := range [][]byte{h.Leader, h.Candidate} {
		if len(legacy) > 0 && !bytes.Equal(legacy, h.Addr) {
			return fmt.Errorf("%w: a request from %s names two addresses, %q and %q", ErrPeerRefused, peer, h.Addr, legacy)
		}
	}
	for _, sv := range cfg.Servers {
		if string(sv.ID) == peer && string(sv.Address) != string(h.Addr) {
			return fmt.Errorf("%w: %s claims address %q, configured at %s", ErrPeerRefused, peer, h.Addr, sv.Address)
		}
	}
	return nil
}
