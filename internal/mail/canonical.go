package mail

import "strings"

// CanonicalMailbox puts the mailbox of a MAIL or RCPT path into its
// canonical form. RFC 5321 §4.1.2: Local-part = Dot-string /
// Quoted-string, and a quoted local part whose content is a Dot-string
// names the same mailbox as that Dot-string, so `"alice"@example.org` and
// `"al\ice"@example.org` become alice@example.org (plain is true). A
// quoted local part that needs its quotes (a space, two dots, a quote)
// keeps them, with quoted pairs only for `"` and `\` (plain is false).
// An unquoted mailbox is returned as it is, for the callers' own checks.
// ok is false for a malformed quoted local part: no closing quote, a
// control character, or no "@domain" after it; or for a domain after it
// with a blank, a control character, a quote, a backslash or a bracket
// (the domain itself is checked later, as for an unquoted mailbox).
func CanonicalMailbox(s string) (mailbox string, plain, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		return s, true, true
	}
	var local strings.Builder
	i := 1
	for ; i < len(s) && s[i] != '"'; i++ {
		c := s[i]
		if c == '\\' {
			// quoted-pairSMTP = %d92 %d32-126
			i++
			if i == len(s) || s[i] < 32 || s[i] > 126 {
				return "", false, false
			}
			c = s[i]
		} else if c < 32 || c == 127 {
			// qtextSMTP = %d32-33 / %d35-91 / %d93-126, and UTF-8
			// (RFC 6531 §3.3).
			return "", false, false
		}
		local.WriteByte(c)
	}
	if i == len(s) {
		return "", false, false
	}
	domain, found := strings.CutPrefix(s[i+1:], "@")
	if !found || domain == "" || strings.ContainsFunc(domain, func(r rune) bool {
		return r <= ' ' || r == 127 || r == '"' || r == '<' || r == '>' || r == '\\'
	}) {
		return "", false, false
	}
	l := local.String()
	if isDotString(l) {
		return l + "@" + domain, true, true
	}
	var b strings.Builder
	b.WriteByte('"')
	for j := 0; j < len(l); j++ {
		if l[j] == '"' || l[j] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(l[j])
	}
	b.WriteString(`"@`)
	b.WriteString(domain)
	return b.String(), false, true
}

// isDotString reports whether s is a Dot-string (RFC 5321 §4.1.2:
// Atom *("." Atom), Atom = 1*atext), with UTF-8 allowed in atext
// (RFC 6531 §3.3).
func isDotString(s string) bool {
	if s == "" {
		return false
	}
	for _, atom := range strings.Split(s, ".") {
		if atom == "" {
			return false
		}
		for i := 0; i < len(atom); i++ {
			if !isAtext(atom[i]) {
				return false
			}
		}
	}
	return true
}

// isAtext reports whether c is atext (RFC 5322 §3.2.3), or a byte of a
// UTF-8 sequence (RFC 6531 §3.3).
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}
