package discovery

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

// writesConn records each Write it gets.
type writesConn struct {
	net.Conn
	writes [][]byte
}

func (w *writesConn) Write(b []byte) (int, error) {
	w.writes = append(w.writes, append([]byte(nil), b...))
	return len(b), nil
}

// TestCoalesceConnJoinsFrames: a data frame's header and body go out in
// one write; other frames (window updates, pings: a header alone) at once.
func TestCoalesceConnJoinsFrames(t *testing.T) {
	hdr := func(typ byte, length uint32) []byte {
		h := make([]byte, muxHeaderLen)
		h[1] = typ
		binary.BigEndian.PutUint32(h[4:8], 3)
		binary.BigEndian.PutUint32(h[8:12], length)
		return h
	}
	w := &writesConn{}
	c := &coalesceConn{Conn: w}
	data := hdr(muxTypeData, 5)
	ping := hdr(2, 0)
	for _, b := range [][]byte{data, []byte("hello"), ping, hdr(muxTypeData, 0), data, []byte("again")} {
		if n, err := c.Write(b); err != nil || n != len(b) {
			t.Fatalf("Write(%d bytes) = %d, %v", len(b), n, err)
		}
	}
	want := [][]byte{append(append([]byte(nil), data...), "hello"...), ping, hdr(muxTypeData, 0), append(append([]byte(nil), data...), "again"...)}
	if len(w.writes) != len(want) {
		t.Fatalf("%d writes, want %d: %q", len(w.writes), len(want), w.writes)
	}
	for i := range want {
		if !bytes.Equal(w.writes[i], want[i]) {
			t.Errorf("write %d = %q, want %q", i, w.writes[i], want[i])
		}
	}
}
