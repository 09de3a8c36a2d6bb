package raftfsm

// The users aggregate: UI users and their roles.

import (
	"fmt"
	"strings"
)

func applyPutUser(s *State, c *PutUser) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if err := ValidateUserName(c.Name); err != nil {
		return nil, err
	}
	if !c.Role.Valid() {
		return nil, invalidf("role %q: want admin, deployer or viewer", c.Role)
	}
	if c.PasswordHash != "" && !strings.HasPrefix(c.PasswordHash, "$2") {
		return nil, invalidf("password hash: want a bcrypt hash")
	}
	u, exists := s.Users[c.Name]
	if !exists && c.PasswordHash == "" {
		return nil, invalidf("user %s: a new user needs a password", c.Name)
	}
	if exists && u.Role == RoleAdmin && c.Role != RoleAdmin && s.countAdmins() == 1 {
		return nil, fmt.Errorf("%w: %s is the last admin", ErrConflict, c.Name)
	}
	if !exists {
		u = &User{Name: c.Name, CreatedAt: c.At}
		s.Users[c.Name] = u
	}
	u.Role = c.Role
	u.UpdatedAt = c.At
	if c.PasswordHash != "" {
		u.PasswordHash = c.PasswordHash
	}
	s.event(c.At, EventUser, SeverityInfo, "user "+c.Name+" saved with role "+string(c.Role), nil)
	return nil, nil
}

func (s *State) countAdmins() int {
	n := 0
	for _, u := range s.Users {
		if u.Role == RoleAdmin {
			n++
		}
	}
	return n
}

func applyDeleteUser(s *State, c *DeleteUser) (any, error) {
	u, ok := s.Users[c.Name]
	if !ok {
		return nil, fmt.Errorf("user %s: %w", c.Name, ErrNotFound)
	}
	if u.Role == RoleAdmin && s.countAdmins() == 1 {
		return nil, fmt.Errorf("%w: %s is the last admin", ErrConflict, c.Name)
	}
	delete(s.Users, c.Name)
	s.event(c.At, EventUser, SeverityInfo, "user "+c.Name+" removed", nil)
	s.revokeTokensOf(c.At, c.Name)
	return nil, nil
}
