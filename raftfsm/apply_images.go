package raftfsm

// Where images come from: private registries and uploaded build contexts.

import (
	"fmt"
	"net"
	"slices"
	"strings"
)

func applyPutRegistry(s *State, c *PutRegistry) (any, error) {
	r := c.Credential
	if err := validateRegistryHost(r.Registry); err != nil {
		return nil, err
	}
	if r.Username == "" || len(r.Username) > 256 || strings.ContainsAny(r.Username, "\n\r\x00") {
		return nil, invalidf("registry %s: username", r.Registry)
	}
	if !r.Password.Valid() {
		return nil, invalidf("registry %s: password is not sealed", r.Registry)
	}
	s.Registries[r.Registry] = &r
	return nil, nil
}

// validateRegistryHost checks a registry host such as ghcr.io or 127.0.0.1:5000.
func validateRegistryHost(h string) error {
	host := h
	if hh, port, err := net.SplitHostPort(h); err == nil {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return invalidf("registry %q: bad port", h)
		}
		host = hh
	}
	if net.ParseIP(host) != nil || host == "localhost" {
		return nil
	}
	if err := ValidateHostname(host, false); err != nil {
		return invalidf("registry %q: want a host name or IP, with an optional port", h)
	}
	return nil
}

func applyDeleteRegistry(s *State, c *DeleteRegistry) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if _, ok := s.Registries[c.Registry]; !ok {
		return nil, fmt.Errorf("registry %s: %w", c.Registry, ErrNotFound)
	}
	delete(s.Registries, c.Registry)
	return nil, nil
}

func applyPutBuildContext(s *State, c *PutBuildContext) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if err := ValidateContextDigest(c.Digest); err != nil {
		return nil, err
	}
	if err := ValidateNodeID(c.Node); err != nil {
		return nil, err
	}
	bc, ok := s.Contexts[c.Digest]
	if c.Dropped {
		if !ok {
			return nil, nil
		}
		bc.Holders = slices.DeleteFunc(bc.Holders, func(n string) bool { return n == c.Node })
		if len(bc.Holders) == 0 {
			delete(s.Contexts, c.Digest)
		}
		return nil, nil
	}
	if c.Size <= 0 {
		return nil, invalidf("build context size %d", c.Size)
	}
	if !ok {
		bc = &BuildContext{Digest: c.Digest, Size: c.Size, UploadedAt: c.At}
		s.Contexts[c.Digest] = bc
	}
	if !slices.Contains(bc.Holders, c.Node) {
		bc.Holders = append(bc.Holders, c.Node)
		slices.Sort(bc.Holders)
	}
	return nil, nil
}

// ValidateContextDigest checks the digest of an uploaded build context.
func ValidateContextDigest(d string) error {
	if !strings.HasPrefix(d, "sha256:") || len(d) != 71 || strings.Trim(d[7:], "0123456789abcdef") != "" {
		return invalidf("build %q: want the sha256:<64 hex> digest of an uploaded context", d)
	}
	return nil
}
