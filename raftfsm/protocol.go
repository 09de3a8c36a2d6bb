package raftfsm

// The protocol: which log entries an agent of a given release can apply.
//
// A rolling upgrade runs old and new agents side by side on one log, so a
// leader may commit only what every raft server can apply the same way.
// Each agent advertises its Protocol in its gossip metadata; the leader
// asks NeededProtocol of every command and refuses one that some server's
// protocol is below (node's checkProto), before anything is committed.
//
// Protocol versions so far are the command-type numbers: every release
// up to LegacyProtocol advertised its newest command type. From
// ProtocolFieldTags on, the protocol rises by one with every new command
// type and with every new field of an existing command:
//
//   - a new command type gets its protocol in commandSince (append only);
//   - a new field is tagged with the protocol that introduced it,
//     `proto:"N"`; add ",ignorable" when an older agent may apply the
//     command without it and lose nothing that matters for the state it
//     keeps (a display hint, say). Every other new field makes the command
//     need N whenever the field is set.
//
// Encoding: a command that sets no tagged field is encoded as before
// (envelope 1, decoded strictly: an unknown field is an error), so old
// replicas read it. One that sets a tagged field is encoded with envelope 2,
// which carries the protocol the command needs (its non-ignorable fields)
// and the one it uses in full (its ignorable fields too): a replica at a
// protocol at or above the full one decodes strictly; one between the two
// ignores the fields it does not know, because the entry says they may be
// ignored; one below what the command needs refuses it (ErrProtocol). Only
// agents at ProtocolFieldTags or above read envelope 2, so such a command
// needs at least that.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

const (
	// LegacyProtocol is what agents before field tags advertised: their
	// newest command type, CmdSetEgressAllow.
	LegacyProtocol = int(CmdSetEgressAllow)
	// ProtocolFieldTags is the first protocol that reads envelope 2 (entries
	// that say which fields an older agent may ignore).
	ProtocolFieldTags = LegacyProtocol + 1
	// ProtocolImages brings put_image (build once, images between peers).
	ProtocolImages = ProtocolFieldTags + 1
	// ProtocolACME brings automatic HTTPS's commands (set_acme_config to
	// delete_issued_cert) and the spec's tls field.
	ProtocolACME = ProtocolImages + 1
	// Protocol is this release's protocol: the newest commands and fields
	// it applies. Raise it with every new command type or tagged field.
	Protocol = ProtocolACME
)

// ErrProtocol is an entry that needs a newer protocol than the decoder's:
// it is refused, the state unchanged, and the refusal is counted and
// reported (FSM's OnRefused).
var ErrProtocol = errors.New("needs a newer protocol")

// envelopeTagged is the envelope of a command that sets tagged fields:
// version byte, type byte, the needed and the full protocol (uint16 each,
// big endian), then the JSON payload.
const envelopeTagged = 2

// commandSince is the protocol that introduced a command type. The types up
// to CmdSetEgressAllow came with the protocol of their own number; a type
// appended after it gets the protocol it came with here.
func commandSince(t CommandType) int {
	switch {
	case t <= CmdSetEgressAllow:
		return int(t)
	case t == CmdPutImage:
		return ProtocolImages
	case t >= CmdSetACMEConfig && t <= CmdDeleteIssuedCert:
		return ProtocolACME
	}
	return Protocol + 1 // a type without an entry here is applied by no release yet
}

// fieldProto reads a `proto:"N[,ignorable]"` tag; n is 0 for an untagged field.
func fieldProto(f reflect.StructField) (n int, ignorable bool) {
	tag, ok := f.Tag.Lookup("proto")
	if !ok {
		return 0, false
	}
	num, opt, _ := strings.Cut(tag, ",")
	n, err := strconv.Atoi(num)
	if err != nil || n <= LegacyProtocol {
		panic(fmt.Sprintf("raftfsm: field %s: proto tag %q: want a protocol above %d", f.Name, tag, LegacyProtocol)) // a programming error, caught by TestProtocolTags
	}
	return n, opt == "ignorable"
}

// ownType reports whether t is one of this package's struct types, whose
// fields may carry proto tags (time.Time and the like cannot).
func ownType(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t.PkgPath() == reflect.TypeFor[State]().PkgPath()
}

// walkTagged calls fn for every tagged field that is set (non-zero) in v,
// through nested structs, pointers, slices and maps of this package's types.
func walkTagged(v reflect.Value, fn func(f reflect.StructField, fv reflect.Value)) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkTagged(v.Elem(), fn)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkTagged(v.Index(i), fn)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			walkTagged(it.Value(), fn)
		}
	case reflect.Struct:
		if !ownType(v.Type()) {
			return
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			if n, _ := fieldProto(f); n > 0 && !fv.IsZero() {
				fn(f, fv)
			}
			walkTagged(fv, fn)
		}
	}
}

// protocols are the protocol a command needs (its type and the tagged
// fields it sets that an older agent may not ignore) and the one it uses in
// full (its ignorable fields too). A command that sets a tagged field needs
// at least ProtocolFieldTags, the first to read envelope 2.
func protocols(c Command) (need, full int, tagged bool) {
	need = commandSince(c.Type())
	full = need
	walkTagged(reflect.ValueOf(c), func(f reflect.StructField, _ reflect.Value) {
		n, ignorable := fieldProto(f)
		tagged = true
		full = max(full, n)
		if !ignorable {
			need = max(need, n)
		}
	})
	if tagged {
		need = max(need, ProtocolFieldTags)
		full = max(full, need)
	}
	return need, full, tagged
}

// NeededProtocol is the protocol every raft server must advertise before
// the leader may commit c: the command's type and every field it sets that
// an older agent may not ignore.
func NeededProtocol(c Command) int {
	need, _, _ := protocols(c)
	return need
}

// TypeProtocol is the protocol that introduced command type t: what a
// server must advertise before the leader commits a command of that type
// (NeededProtocol adds the fields a command sets).
func TypeProtocol(t CommandType) int { return commandSince(t) }

// forgetNewer makes c what the release at protocol proto would have
// decoded: a tagged field newer than proto is unknown to it, so it is an
// error in a strict decode and dropped when the entry says unknown fields
// may be ignored. At this release's own protocol it changes nothing.
func forgetNewer(c Command, proto int, lenient bool) error {
	if proto >= Protocol && !lenient {
		return nil // no field is newer than this release
	}
	var err error
	walkTagged(reflect.ValueOf(c), func(f reflect.StructField, fv reflect.Value) {
		n, _ := fieldProto(f)
		if n <= proto || err != nil {
			return
		}
		if !lenient {
			err = fmt.Errorf("json: unknown field %q (protocol %d)", jsonName(f), n)
			return
		}
		if fv.CanSet() {
			fv.SetZero()
		}
	})
	return err
}

// jsonName is a struct field's name in JSON.
func jsonName(f reflect.StructField) string {
	if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" {
		return name
	}
	return f.Name
}

// taggedHeader is envelope 2's header after the type byte: the needed and
// the full protocol.
func taggedHeader(need, full int) []byte {
	var b [4]byte
	binary.BigEndian.PutUint16(b[:2], uint16(need))
	binary.BigEndian.PutUint16(b[2:], uint16(full))
	return b[:]
}
