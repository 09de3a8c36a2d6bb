package raftfsm

import (
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Image is an image the cluster made or received once and moves between its
// nodes by digest (node/imagepeer): a build context built on one node, or an
// image pushed from a user's Docker. Keyed by Ref, the reference the specs
// name (the build tag of a context and Dockerfile, or the pushed name).
type Image struct {
	Ref string `json:"ref"`
	// Builder is the node the leader chose to build it (builds only),
	// AssignedAt when.
	Builder    string    `json:"builder,omitempty"`
	AssignedAt time.Time `json:"assigned_at,omitempty"`
	// ID is the image id (the config digest) every node runs: once set it
	// never changes, so all instances of a generation run the same image.
	ID      string    `json:"id,omitempty"`
	BuiltAt time.Time `json:"built_at,omitempty"`
	// Holders are the nodes whose engine has it (peers fetch from them).
	Holders []string `json:"holders,omitempty"`
}

// PutImage records an image of State.Images. The leader assigns a builder
// (Builder set, ID empty: refused silently once an id is known); a node
// reports that it holds the image (ID and Node: the first id reported is
// the image, another is a conflict, unless Replace: a push of a new image
// under the same name, which Node alone holds); Dropped with Node says a
// node no longer holds it.
type PutImage struct {
	At      time.Time `json:"at"`
	Ref     string    `json:"ref"`
	Builder string    `json:"builder,omitempty"`
	ID      string    `json:"id,omitempty"`
	Node    string    `json:"node,omitempty"`
	Dropped bool      `json:"dropped,omitempty"`
	Replace bool      `json:"replace,omitempty"`
}

// Type is CmdPutImage.
func (*PutImage) Type() CommandType { return CmdPutImage }

var imageIDRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// ValidateImageID checks an image id: "sha256:" and 64 lower-case hex digits.
func ValidateImageID(id string) error {
	if !imageIDRE.MatchString(id) {
		return invalidf("image id %q: want sha256:<64 hex digits>", id)
	}
	return nil
}

func applyPutImage(s *State, c *PutImage) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if err := ValidateImageRef(c.Ref); err != nil {
		return nil, err
	}
	img, ok := s.Images[c.Ref]
	switch {
	case c.Dropped:
		if err := ValidateNodeID(c.Node); err != nil {
			return nil, err
		}
		if ok {
			img.Holders = slices.DeleteFunc(img.Holders, func(n string) bool { return n == c.Node })
		}
		return nil, nil
	case c.Builder != "":
		if err := ValidateNodeID(c.Builder); err != nil {
			return nil, err
		}
		if c.ID != "" || c.Node != "" {
			return nil, invalidf("image %s: a builder assignment carries no id or node", c.Ref)
		}
		if ok && img.ID != "" {
			return nil, nil // built meanwhile
		}
		if !ok {
			img = &Image{Ref: c.Ref}
			s.Images[c.Ref] = img
		}
		img.Builder, img.AssignedAt = c.Builder, c.At
		return nil, nil
	}
	if err := ValidateImageID(c.ID); err != nil {
		return nil, err
	}
	if err := ValidateNodeID(c.Node); err != nil {
		return nil, err
	}
	if ok && c.Replace && img.ID != c.ID {
		img.ID, img.BuiltAt, img.Holders, img.Builder = c.ID, c.At, nil, ""
	}
	if ok && img.ID != "" && img.ID != c.ID {
		return nil, fmt.Errorf("%w: image %s is %s, not %s", ErrConflict, c.Ref, img.ID, c.ID)
	}
	if !ok {
		img = &Image{Ref: c.Ref}
		s.Images[c.Ref] = img
	}
	if img.ID == "" {
		img.ID, img.BuiltAt = c.ID, c.At
	}
	if !slices.Contains(img.Holders, c.Node) {
		img.Holders = append(img.Holders, c.Node)
		slices.Sort(img.Holders)
	}
	return nil, nil
}
