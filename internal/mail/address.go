package mail

import (
	"errors"
	"strings"
)

// Address is an email address split at its last "@". Local parts and
// domains are kept as written; compare them with Equal or by Key.
type Address struct {
	Local  string
	Domain string
}

// ErrBadAddress is returned for strings that are not a plain addr-spec.
var ErrBadAddress = errors.New("invalid email address")

// ParseAddress parses a plain addr-spec such as "alice@example.org". Angle
// brackets, display names and source routes are not accepted here; protocol
// front ends strip them first. Quoted local parts are accepted as written.
func ParseAddress(s string) (Address, error) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 || i == len(s)-1 || len(s) > 320 {
		return Address{}, ErrBadAddress
	}
	a := Address{Local: s[:i], Domain: s[i+1:]}
	for _, c := range []byte(s) {
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' {
			return Address{}, ErrBadAddress
		}
	}
	if strings.ContainsAny(a.Domain, "@[]\\\"(),;:") || strings.HasPrefix(a.Domain, ".") ||
		strings.HasSuffix(a.Domain, ".") || strings.Contains(a.Domain, "..") {
		return Address{}, ErrBadAddress
	}
	return a, nil
}

// String returns local@domain.
func (a Address) String() string {
	if a.Local == "" && a.Domain == "" {
		return ""
	}
	return a.Local + "@" + a.Domain
}

// Key returns the case-folded form used to look accounts up: addresses are
// matched case-insensitively and kept as created.
func (a Address) Key() string {
	return NameKey(a.String())
}

// NameKey returns the key an account name is found by: the store keeps
// one account per key, so two names name the same account exactly when
// their keys are equal. Code that asks whether a name given by a client
// (a SASL authorization identity, the user of an IMAP URL) is the
// account's own compares keys. Unicode case folding, strings.EqualFold,
// is a different relation: it takes "ſam" (with a long s) for "sam",
// which are two accounts.
func NameKey(name string) string {
	return strings.ToLower(name)
}

// Equal reports whether a and b name the same mailbox, ignoring case.
func (a Address) Equal(b Address) bool {
	return strings.EqualFold(a.Local, b.Local) && strings.EqualFold(a.Domain, b.Domain)
}

// WithoutDetail returns the address without a "+detail" subaddress
// ("alice+lists@example.org" becomes "alice@example.org").
func (a Address) WithoutDetail() Address {
	if i := strings.IndexByte(a.Local, '+'); i > 0 {
		a.Local = a.Local[:i]
	}
	return a
}
