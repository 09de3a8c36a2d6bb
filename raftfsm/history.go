package raftfsm

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"reflect"
	"sort"
	"time"
)

// History is an instance's health record in bounded memory. It is a list of
// entries, oldest first, each a stretch of checks [from, to] with a count per
// status. The newest maxFineEntries changes are kept at full resolution (one
// status per entry: exactly the run-length Segments the API shows); older
// ones are folded into coarse entries, one per historyBucket of time, that
// keep how many checks had each status, so a timeline drawn from them shows
// the same share of each status over a week. An entry is 32 bytes and holds
// no pointer: a week of a container flapping on every check (60 s
// interval) costs about 39 KB of heap, not the 352 KB a slice of Segments
// capped at 4,096 did (which kept under 3 days of it).
//
// Readers see it through Segments and Last; it marshals to JSON as the
// Segments (the API's form) and reads both that form (snapshots of earlier
// releases) and its compact encoding (snapshots of this one).
type History []histEntry

// histEntry is one stretch of a History: checks from from to to (unix
// nanoseconds), counts[k] of them with status healthCodes[k]. A fine entry
// has one non-zero count.
type histEntry struct {
	from, to int64
	counts   [4]uint32
}

// healthCodes are the statuses in the order of histEntry.counts (and of
// Segments expanded from a coarse entry).
var healthCodes = [4]string{HealthHealthy, HealthDegraded, HealthUnhealthy, HealthStarting}

// healthCode returns a status's index in healthCodes, or -1.
func healthCode(status string) int {
	for i, s := range healthCodes {
		if s == status {
			return i
		}
	}
	return -1
}

// History bounds. A flapping instance keeps its last maxFineEntries changes
// at full resolution; past that the oldest historyTrimStep go into coarse
// entries at once (so a flapping container pays one move of its history per
// historyTrimStep checks, not one per check). Coarse entries are one per
// historyBucket (or one per long single-status stretch), at most
// maxCoarseEntries of them (the 7-day purge normally keeps far fewer).
const (
	maxFineEntries   = 768
	historyTrimStep  = 256
	historyBucket    = 30 * time.Minute
	maxCoarseEntries = 2 * int(HistoryRetention/historyBucket)
)

// single returns the status index of a fine entry, or -1 for a coarse one.
func (e *histEntry) single() int {
	k := -1
	for i, c := range e.counts {
		if c != 0 {
			if k >= 0 {
				return -1
			}
			k = i
		}
	}
	return k
}

func (e *histEntry) total() uint64 {
	var n uint64
	for _, c := range e.counts {
		n += uint64(c)
	}
	return n
}

// fine counts the full-resolution entries at the end of h. Coarse entries
// are always a prefix (fold makes them from the oldest fine ones), so the
// boundary is found by bisection: Append stays cheap for a long history.
func (h History) fine() int {
	return len(h) - sort.Search(len(h), func(i int) bool { return !h[i].coarse() })
}

// coarse reports whether an entry was folded. A coarse entry keeps its end
// complemented (^to), so it is told apart from a fine one without a field of
// its own (which would make an entry 40 bytes): no check time after 1970 is
// negative.
func (e *histEntry) coarse() bool { return e.to < 0 }

func (e *histEntry) end() int64 {
	if e.to < 0 {
		return ^e.to
	}
	return e.to
}

// Append records one check: it extends the newest entry when the status
// repeats, else starts a new one, folding the oldest fine entries into
// coarse ones once there are maxFineEntries. status must be a valid health
// status (ValidHealth); others are ignored.
func (h History) Append(status string, at time.Time) History {
	k := healthCode(status)
	if k < 0 {
		return h
	}
	ns := at.UnixNano()
	if n := len(h); n > 0 && !h[n-1].coarse() && h[n-1].single() == k {
		h[n-1].to = ns
		h[n-1].counts[k]++
		return h
	}
	if h.fine() >= maxFineEntries {
		h = h.fold(historyTrimStep)
	}
	e := histEntry{from: ns, to: ns}
	e.counts[k] = 1
	return append(h, e)
}

// fold moves the oldest n fine entries into coarse ones, into a new array
// (readers may still hold the old one: a shallow copy of the instance taken
// under the read lock), and drops the oldest coarse entries past
// maxCoarseEntries.
func (h History) fold(n int) History {
	firstFine := len(h) - h.fine()
	coarse := append(History(nil), h[:firstFine]...)
	for _, e := range h[firstFine : firstFine+n] {
		coarse = coarse.addCoarse(e)
	}
	if len(coarse) > maxCoarseEntries {
		coarse = coarse[len(coarse)-maxCoarseEntries:]
	}
	// Room for the fine entries to come until the next fold, so appends
	// do not grow the array past what it needs.
	out := make(History, 0, len(coarse)+maxFineEntries)
	out = append(out, coarse...)
	return append(out, h[firstFine+n:]...)
}

// addCoarse merges one entry into the last coarse entry of h when both lie
// in the same historyBucket, else appends it as a coarse entry of its own.
func (h History) addCoarse(e histEntry) History {
	bucket := int64(historyBucket)
	if n := len(h); n > 0 {
		last := &h[n-1]
		if floorDiv(last.from, bucket) == floorDiv(e.end(), bucket) {
			for i, c := range e.counts {
				last.counts[i] += c
			}
			last.to = ^e.end()
			return h
		}
	}
	e.to = ^e.end()
	return append(h, e)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Purge drops the entries that ended before before and clips the one that
// straddles it; it returns the history and how many entries went.
func (h History) Purge(before time.Time) (History, int) {
	cut := before.UnixNano()
	keep := h[:0:0]
	purged, clipped := 0, false
	for _, e := range h {
		if e.end() < cut {
			purged++
			continue
		}
		if e.from < cut {
			e.from, clipped = cut, true
		}
		keep = append(keep, e)
	}
	if purged == 0 && !clipped {
		return h, 0
	}
	return keep, purged
}

// Len is the number of entries (not of checks, nor of Segments).
func (h History) Len() int { return len(h) }

// Last returns the newest segment, or false for an empty history.
func (h History) Last() (Segment, bool) {
	if len(h) == 0 {
		return Segment{}, false
	}
	segs := h[len(h)-1].segments(nil)
	return segs[len(segs)-1], true
}

// Segments expands the history into run-length segments, oldest first: one
// per fine entry, and per coarse entry one for each status it holds, laid
// out over the entry's time in proportion to their counts.
func (h History) Segments() []Segment {
	if len(h) == 0 {
		return nil
	}
	out := make([]Segment, 0, len(h))
	for i := range h {
		out = h[i].segments(out)
	}
	return out
}

// segments appends an entry's segments to out.
func (e *histEntry) segments(out []Segment) []Segment {
	from, to := e.from, e.end()
	if !e.coarse() {
		k := e.single()
		return append(out, Segment{Status: healthCodes[k], From: time.Unix(0, from).UTC(), To: time.Unix(0, to).UTC(), Count: int(e.counts[k])})
	}
	total := e.total()
	span := uint64(to - from)
	var done uint64
	start := from
	for k, c := range e.counts {
		if c == 0 {
			continue
		}
		done += uint64(c)
		hi, lo := bits.Mul64(span, done)
		off, _ := bits.Div64(hi, lo, total) // done <= total, so off <= span: no overflow
		end := from + int64(off)
		out = append(out, Segment{Status: healthCodes[k], From: time.Unix(0, start).UTC(), To: time.Unix(0, end).UTC(), Count: int(c)})
		start = end
	}
	return out
}

// MarshalJSON writes the API's form: the Segments.
func (h History) MarshalJSON() ([]byte, error) {
	return json.Marshal(h.Segments())
}

// UnmarshalJSON reads the Segments form (each segment one fine entry, folded
// as Append would once there are too many) or the compact encoding (a
// string, see compact).
func (h *History) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("health history: %w", err)
		}
		out, err := decodeHistory(s)
		if err != nil {
			return err
		}
		*h = out
		return nil
	}
	var segs []Segment
	if err := json.Unmarshal(b, &segs); err != nil {
		return fmt.Errorf("health history: %w", err)
	}
	*h = HistoryOf(segs)
	return nil
}

// HistoryOf builds a History from run-length segments, oldest first (the
// form earlier releases kept): each becomes a fine entry, folded once there
// are too many. Segments of an unknown status are left out.
func HistoryOf(segs []Segment) History {
	var h History
	for _, s := range segs {
		k := healthCode(s.Status)
		if k < 0 || s.Count <= 0 {
			continue
		}
		if h.fine() >= maxFineEntries {
			h = h.fold(historyTrimStep)
		}
		e := histEntry{from: s.From.UnixNano(), to: s.To.UnixNano()}
		e.counts[k] = uint32(min(s.Count, 1<<32-1))
		h = append(h, e)
	}
	return h
}

// SchemaType is the Go type whose JSON shape History has (for the API's
// OpenAPI document).
func (History) SchemaType() reflect.Type { return reflect.TypeOf([]Segment{}) }

// historyMagic starts the compact encoding, so a future one can be told
// apart.
const historyMagic = "h1:"

// compact encodes the history losslessly for snapshots: "h1:" and base64 of
// the entries, each as varints: from (as a delta from the previous entry's
// end), to-from, a coarse flag, and the four counts. About 10 bytes an entry
// for a flapping instance, against about 100 for a Segment in JSON.
func (h History) compact() string {
	buf := make([]byte, 0, 16+len(h)*12)
	buf = binary.AppendUvarint(buf, uint64(len(h)))
	var prev int64
	for i := range h {
		e := &h[i]
		buf = binary.AppendVarint(buf, e.from-prev)
		buf = binary.AppendVarint(buf, e.end()-e.from)
		flags := uint64(0)
		if e.coarse() {
			flags = 1
		}
		buf = binary.AppendUvarint(buf, flags)
		for _, c := range e.counts {
			buf = binary.AppendUvarint(buf, uint64(c))
		}
		prev = e.end()
	}
	return historyMagic + base64.RawStdEncoding.EncodeToString(buf)
}

var errHistoryEncoding = errors.New("health history: bad compact encoding")

// decodeHistory reads what compact wrote.
func decodeHistory(s string) (History, error) {
	if len(s) < len(historyMagic) || s[:len(historyMagic)] != historyMagic {
		return nil, errHistoryEncoding
	}
	buf, err := base64.RawStdEncoding.DecodeString(s[len(historyMagic):])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errHistoryEncoding, err)
	}
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(buf)
		if n <= 0 {
			return 0, false
		}
		buf = buf[n:]
		return v, true
	}
	sv := func() (int64, bool) {
		v, n := binary.Varint(buf)
		if n <= 0 {
			return 0, false
		}
		buf = buf[n:]
		return v, true
	}
	n, ok := uv()
	if !ok || n > uint64(len(buf)) {
		return nil, errHistoryEncoding
	}
	if n == 0 {
		return nil, nil
	}
	h := make(History, 0, n)
	var prev int64
	for range n {
		d, ok1 := sv()
		span, ok2 := sv()
		flags, ok3 := uv()
		if !ok1 || !ok2 || !ok3 || span < 0 || flags > 1 {
			return nil, errHistoryEncoding
		}
		e := histEntry{from: prev + d}
		e.to = e.from + span
		for k := range e.counts {
			c, ok := uv()
			if !ok || c > 1<<32-1 {
				return nil, errHistoryEncoding
			}
			e.counts[k] = uint32(c)
		}
		if e.total() == 0 || (flags == 0 && e.single() < 0) {
			return nil, errHistoryEncoding
		}
		prev = e.to
		if flags == 1 {
			e.to = ^e.to
		}
		h = append(h, e)
	}
	if len(buf) != 0 {
		return nil, errHistoryEncoding
	}
	return h, nil
}
