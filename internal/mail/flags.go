package mail

import (
	"slices"
	"strings"
)

// System flags (RFC 9051 §2.3.2). \Recent is not a stored flag: it is a
// property of a session (RFC 3501 only) and never appears in Flags.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

// SystemFlags lists the stored system flags in a fixed order; a flag's index
// is its bit in FlagBits.
var SystemFlags = [...]string{FlagSeen, FlagAnswered, FlagFlagged, FlagDeleted, FlagDraft}

// Flags is a message's set of flags: system flags and keywords. It is kept
// canonical by the helpers in this file: no duplicates (flags compare
// case-insensitively, RFC 9051 §2.3.2), system flags spelled as in
// SystemFlags, sorted by lower-case name. A nil Flags is the empty set.
type Flags []string

// CanonicalFlag returns the canonical spelling of a system flag (for any
// case of its name), or f unchanged for a keyword.
func CanonicalFlag(f string) string {
	if len(f) > 0 && f[0] == '\\' {
		for _, s := range SystemFlags {
			if strings.EqualFold(s, f) {
				return s
			}
		}
	}
	return f
}

// IsSystemFlag reports whether f is one of the stored system flags.
func IsSystemFlag(f string) bool {
	for _, s := range SystemFlags {
		if strings.EqualFold(s, f) {
			return true
		}
	}
	return false
}

// NewFlags returns the canonical set of the given flags.
func NewFlags(fs ...string) Flags {
	var out Flags
	for _, f := range fs {
		out = out.With(f)
	}
	return out
}

func flagCmp(a, b string) int {
	return strings.Compare(strings.ToLower(a), strings.ToLower(b))
}

// Has reports whether the set holds f (case-insensitively).
func (fl Flags) Has(f string) bool {
	_, ok := slices.BinarySearchFunc(fl, f, flagCmp)
	return ok
}

// With returns the set with f added. The receiver is not modified.
func (fl Flags) With(f string) Flags {
	f = CanonicalFlag(f)
	i, ok := slices.BinarySearchFunc(fl, f, flagCmp)
	if ok {
		return fl
	}
	out := make(Flags, 0, len(fl)+1)
	out = append(out, fl[:i]...)
	out = append(out, f)
	return append(out, fl[i:]...)
}

// Without returns the set with f removed. The receiver is not modified.
func (fl Flags) Without(f string) Flags {
	i, ok := slices.BinarySearchFunc(fl, f, flagCmp)
	if !ok {
		return fl
	}
	out := make(Flags, 0, len(fl)-1)
	out = append(out, fl[:i]...)
	return append(out, fl[i+1:]...)
}

// Union returns fl ∪ other.
func (fl Flags) Union(other Flags) Flags {
	out := fl
	for _, f := range other {
		out = out.With(f)
	}
	return out
}

// Minus returns fl \ other.
func (fl Flags) Minus(other Flags) Flags {
	out := fl
	for _, f := range other {
		out = out.Without(f)
	}
	return out
}

// Equal reports whether both sets hold the same flags.
func (fl Flags) Equal(other Flags) bool {
	return slices.EqualFunc(fl, other, strings.EqualFold)
}

// Bits returns the system flags of fl as a bit set (bit i is SystemFlags[i])
// and the keywords, in canonical order.
func (fl Flags) Bits() (bits uint8, keywords []string) {
	for _, f := range fl {
		if i := systemIndex(f); i >= 0 {
			bits |= 1 << i
		} else {
			keywords = append(keywords, f)
		}
	}
	return bits, keywords
}

// FlagsFromBits is the inverse of Flags.Bits.
func FlagsFromBits(bits uint8, keywords []string) Flags {
	out := make(Flags, 0, len(keywords)+5)
	for i, s := range SystemFlags {
		if bits&(1<<i) != 0 {
			out = append(out, s)
		}
	}
	out = append(out, keywords...)
	slices.SortFunc(out, flagCmp)
	return slices.CompactFunc(out, strings.EqualFold)
}

// Bit returns the bit of system flag f in a FlagBits set, or 0 for a keyword.
func Bit(f string) uint8 {
	if i := systemIndex(f); i >= 0 {
		return 1 << i
	}
	return 0
}

func systemIndex(f string) int {
	if len(f) == 0 || f[0] != '\\' {
		return -1
	}
	for i, s := range SystemFlags {
		if strings.EqualFold(s, f) {
			return i
		}
	}
	return -1
}

// ValidKeyword reports whether s can be stored as a keyword: an IMAP atom
// (RFC 9051 §9 flag-keyword) without "\" and without the atom-specials.
func ValidKeyword(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f {
			return false
		}
		switch c {
		case '(', ')', '{', '%', '*', '"', '\\', ']':
			return false
		}
	}
	return true
}
