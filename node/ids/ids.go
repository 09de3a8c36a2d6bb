// Package ids draws the random ids the leader puts in commands (deploy,
// intent, webhook ids...): the FSM never draws one itself, so every replica
// applies the same id.
package ids

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// Hex returns n random bytes in hex.
func Hex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the platform is broken; nothing can continue safely
	}
	return hex.EncodeToString(b)
}

// New returns a fresh id with a readable prefix ("dep-1a2b3c4d5e6f").
func New(prefix string) string { return prefix + "-" + Hex(6) }
