package imap

import (
	"strings"
	"unicode/utf8"
)

// Mailbox names in postfach are UTF-8 with "/" as the hierarchy separator
// (RFC 9051 §5.1). INBOX is case-insensitive and always spelled "INBOX",
// also as the first level of a child ("inbox/x" is "INBOX/x").

// Limits of a mailbox name.
const (
	// Separator is the hierarchy separator.
	Separator = '/'
	// MaxMailboxNameLen is the longest name in bytes.
	MaxMailboxNameLen = 1000
	// MaxMailboxLevelLen is the longest level (between separators) in
	// bytes.
	MaxMailboxLevelLen = 255
	// MaxMailboxDepth is the largest number of levels.
	MaxMailboxDepth = 32
)

// MailboxNameError says why a mailbox name was refused. Its text is fit
// for a NO response (the server adds "[CANNOT]").
type MailboxNameError struct {
	Reason string
}

// Error implements error.
func (e *MailboxNameError) Error() string { return "invalid mailbox name: " + e.Reason }

func badName(reason string) error { return &MailboxNameError{Reason: reason} }

// DecodeMailbox turns a mailbox argument as the client sent it into a
// canonical postfach name: it decodes it with DecodeName and then applies
// CanonicalMailbox. The empty name is refused (commands that allow it,
// such as LIST and GETMETADATA, test for it first).
func DecodeMailbox(raw string, utf8Enabled bool) (string, error) {
	name, err := DecodeName(raw, utf8Enabled)
	if err != nil {
		return "", err
	}
	return CanonicalMailbox(name)
}

// DecodeName decodes a mailbox name or LIST pattern as the client sent
// it: as UTF-8 when utf8Enabled (UTF8=ACCEPT or IMAP4rev2 enabled, RFC
// 6855 §3), else as modified UTF-7 (RFC 3501 §5.1.3). One exception: a
// name with 8-bit characters that is valid UTF-8 is taken as UTF-8 even
// when UTF-8 was not enabled, with "&-" meaning "&" as in modified UTF-7.
// Modified UTF-7 is 7-bit, so such a name cannot mean anything else, and
// clients that take IMAP4rev2 in the capability list as leave to send
// UTF-8 without ENABLE (go-imap v2's client does) keep working with
// non-ASCII folders.
func DecodeName(raw string, utf8Enabled bool) (string, error) {
	if utf8Enabled {
		return raw, nil
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] >= 0x80 {
			if !utf8.ValidString(raw) {
				return "", badName("not valid UTF-8")
			}
			return strings.ReplaceAll(raw, "&-", "&"), nil
		}
	}
	name, err := DecodeMUTF7(raw)
	if err != nil {
		return "", badName("not valid modified UTF-7")
	}
	return name, nil
}

// DecodePattern decodes a LIST or LSUB pattern (or reference) as the
// client sent it. It never fails: nothing in RFC 3501 §6.3.8 or RFC 9051
// §6.3.9 makes a pattern a syntax error, so what is not valid modified
// UTF-7 stands for itself. Each "&...-" run that decodes is decoded, "&-"
// is "&", and any other "&" is a literal "&" (so "a&b*" matches names
// that begin with "a&b", which only exist when created in UTF-8).
// With UTF-8 enabled, or for a pattern with 8-bit characters, it returns
// what DecodeName does, and the raw pattern when that fails.
func DecodePattern(raw string, utf8Enabled bool) string {
	if d, err := DecodeName(raw, utf8Enabled); err == nil {
		return d
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] >= 0x80 {
			return raw // not UTF-8 either: matches no name
		}
	}
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '&' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(raw) && raw[i+1] == '-' {
			b.WriteByte('&')
			i += 2
			continue
		}
		j := i + 1
		for j < len(raw) && mutf7Values[raw[j]] != 0xFF {
			j++
		}
		if j > i+1 && j < len(raw) && raw[j] == '-' {
			var run strings.Builder
			if decodeMBase64(&run, raw[i+1:j]) == nil {
				b.WriteString(run.String())
				i = j + 1
				continue
			}
		}
		b.WriteByte('&')
		i++
	}
	return b.String()
}

// CanonicalMailbox validates a UTF-8 mailbox name and returns its canonical
// form. It refuses empty names and empty levels (a leading, trailing or
// doubled "/"), invalid UTF-8, control characters (C0, DEL and C1), the
// levels "." and "..", and names over the length and depth limits. A
// first level equal to INBOX in any case becomes "INBOX".
func CanonicalMailbox(name string) (string, error) {
	if name == "" {
		return "", badName("empty name")
	}
	if len(name) > MaxMailboxNameLen {
		return "", badName("name too long")
	}
	if !utf8.ValidString(name) {
		return "", badName("not valid UTF-8")
	}
	depth := 1
	levelStart := 0
	for i, r := range name {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return "", badName("control character in name")
		case r == Separator:
			if err := checkLevel(name[levelStart:i]); err != nil {
				return "", err
			}
			levelStart = i + 1
			depth++
			if depth > MaxMailboxDepth {
				return "", badName("name too deep")
			}
		}
	}
	if err := checkLevel(name[levelStart:]); err != nil {
		return "", err
	}
	if len(name) >= 5 && strings.EqualFold(name[:5], "INBOX") && (len(name) == 5 || name[5] == Separator) && name[:5] != "INBOX" {
		name = "INBOX" + name[5:]
	}
	return name, nil
}

func checkLevel(level string) error {
	switch {
	case level == "":
		return badName("empty hierarchy level")
	case level == "." || level == "..":
		return badName(`"." and ".." are not allowed as a level`)
	case len(level) > MaxMailboxLevelLen:
		return badName("hierarchy level too long")
	}
	return nil
}

// ValidNewMailbox checks a canonical name for CREATE and RENAME targets:
// besides CanonicalMailbox's rules it refuses the LIST wildcards "*" and
// "%" (RFC 9051 §5.1: names with them can not be listed unambiguously).
func ValidNewMailbox(name string) error {
	if strings.ContainsAny(name, "*%") {
		return badName(`"*" and "%" are not allowed in names`)
	}
	return nil
}

// IsInbox reports whether a canonical name is INBOX.
func IsInbox(name string) bool { return name == "INBOX" }

// ListReference combines the reference and the pattern of LIST or LSUB
// into one pattern (RFC 9051 §6.3.9: the reference is prefixed to the
// pattern, unless the pattern is absolute, starting with the separator).
// Both are UTF-8 (decoded from modified UTF-7 first where needed).
func ListReference(ref, pattern string) string {
	if ref == "" || (pattern != "" && pattern[0] == Separator) {
		return pattern
	}
	return ref + pattern
}

// MatchList reports whether a canonical mailbox name matches a LIST
// pattern (RFC 9051 §6.3.9): "*" matches any characters, "%" any
// characters except the separator; everything else matches itself, except
// that a first level "INBOX" matches case-insensitively. It runs in
// O(len(pattern)·len(name)) whatever the pattern.
func MatchList(pattern, name string) bool {
	inbox := len(name) >= 5 && name[:5] == "INBOX" && (len(name) == 5 || name[5] == Separator)
	// states[i] reports that pattern[:i] matches the name so far. A
	// wildcard position may stay while consuming name bytes.
	var stack [2][64]bool
	var states, next []bool
	if n := len(pattern) + 1; n <= len(stack[0]) {
		states, next = stack[0][:n], stack[1][:n]
	} else {
		states, next = make([]bool, n), make([]bool, n)
	}
	states[0] = true
	closeWild(pattern, states)
	for i := 0; i < len(name); i++ {
		c := name[i]
		clear(next)
		any := false
		for p := 0; p < len(pattern); p++ {
			if !states[p] {
				continue
			}
			switch pc := pattern[p]; {
			case pc == '*':
				next[p] = true
				any = true
			case pc == '%':
				if c != Separator {
					next[p] = true
					any = true
				}
			case pc == c || (inbox && i < 5 && upperByte(pc) == c):
				next[p+1] = true
				any = true
			}
		}
		if !any {
			return false
		}
		closeWild(pattern, next)
		states, next = next, states
	}
	return states[len(pattern)]
}

// closeWild lets every active wildcard also match the empty string.
func closeWild(pattern string, states []bool) {
	for p := 0; p < len(pattern); p++ {
		if states[p] && (pattern[p] == '*' || pattern[p] == '%') {
			states[p+1] = true
		}
	}
}

func upperByte(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}
