package store

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on mailbox names; they keep names bounded in every backend.
const (
	MaxMailboxNameLen   = 1000 // bytes of the full name
	MaxMailboxNameDepth = 40   // hierarchy levels
)

// CanonicalMailboxName validates a full mailbox name (UTF-8, "/" as
// hierarchy separator) and returns its canonical form: "INBOX" in any case,
// alone or as the first level, is spelled "INBOX" (RFC 9051 §5.1). Names
// with empty levels, control characters or invalid UTF-8 are
// ErrInvalidName.
func CanonicalMailboxName(name string) (string, error) {
	if name == "" || len(name) > MaxMailboxNameLen || !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	depth := 1
	for i, r := range name {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return "", fmt.Errorf("%w: control character", ErrInvalidName)
		case r == '/':
			if i == 0 || i == len(name)-1 || name[i-1] == '/' {
				return "", fmt.Errorf("%w: empty hierarchy level", ErrInvalidName)
			}
			depth++
		}
	}
	if depth > MaxMailboxNameDepth {
		return "", fmt.Errorf("%w: too deep", ErrInvalidName)
	}
	first, rest, hasRest := strings.Cut(name, "/")
	if strings.EqualFold(first, "INBOX") {
		if hasRest {
			return "INBOX/" + rest, nil
		}
		return "INBOX", nil
	}
	return name, nil
}

// IsInbox reports whether a canonical name is the inbox.
func IsInbox(name string) bool { return name == "INBOX" }
