package raftfsm

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPutImage(t *testing.T) {
	s := NewState()
	at := time.Unix(1e9, 0).UTC()
	ref := "dropmesh-build/0123456789abcdef:0011223344556677"
	id := "sha256:" + strings.Repeat("a", 64)
	other := "sha256:" + strings.Repeat("b", 64)
	put := func(c PutImage) error {
		c.At = at
		_, err := applyPutImage(s, &c)
		return err
	}
	if err := put(PutImage{Ref: ref, Builder: "node-1"}); err != nil {
		t.Fatal(err)
	}
	if img := s.Images[ref]; img.Builder != "node-1" || img.ID != "" {
		t.Fatalf("after the assignment: %+v", img)
	}
	if err := put(PutImage{Ref: ref, Builder: "node-2"}); err != nil || s.Images[ref].Builder != "node-2" {
		t.Fatalf("reassignment before a build: %v, %+v", err, s.Images[ref])
	}
	if err := put(PutImage{Ref: ref, ID: id, Node: "node-2"}); err != nil {
		t.Fatal(err)
	}
	if err := put(PutImage{Ref: ref, ID: id, Node: "node-1"}); err != nil {
		t.Fatal(err)
	}
	if img := s.Images[ref]; img.ID != id || strings.Join(img.Holders, ",") != "node-1,node-2" || !img.BuiltAt.Equal(at) {
		t.Fatalf("after two holders: %+v", img)
	}
	// The first id is the image: another is a conflict, and changes nothing.
	if err := put(PutImage{Ref: ref, ID: other, Node: "node-3"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("another id: %v, want ErrConflict", err)
	}
	// Once built, an assignment changes nothing.
	if err := put(PutImage{Ref: ref, Builder: "node-3"}); err != nil || s.Images[ref].Builder != "node-2" {
		t.Fatalf("assignment after the build: %v, %+v", err, s.Images[ref])
	}
	if err := put(PutImage{Ref: ref, Dropped: true, Node: "node-1"}); err != nil || strings.Join(s.Images[ref].Holders, ",") != "node-2" {
		t.Fatalf("dropped: %v, %+v", err, s.Images[ref])
	}
	// A push of a new image under the name replaces it; its node alone holds it.
	if err := put(PutImage{Ref: ref, ID: other, Node: "node-3", Replace: true}); err != nil {
		t.Fatal(err)
	}
	if img := s.Images[ref]; img.ID != other || strings.Join(img.Holders, ",") != "node-3" {
		t.Fatalf("after a replacing push: %+v", img)
	}
	for name, c := range map[string]PutImage{
		"bad ref":          {Ref: "Bad Ref", ID: id, Node: "node-1"},
		"bad id":           {Ref: ref, ID: "sha256:xyz", Node: "node-1"},
		"no node":          {Ref: ref, ID: id},
		"builder with id":  {Ref: ref, Builder: "node-1", ID: id},
		"bad builder":      {Ref: ref, Builder: "Node 1"},
		"dropped, no node": {Ref: ref, Dropped: true},
	} {
		if err := put(c); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := applyPutImage(s, &PutImage{Ref: ref, ID: id, Node: "node-1"}); err == nil {
		t.Error("a command without a time stamp was applied")
	}
}
