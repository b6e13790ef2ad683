package msgauth

import (
	"io"
	"mime"
	"net/mail"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// authservID returns the authserv-id of an Authentication-Results field
// body (RFC 8601 §2.2): the first token, after any comment, before the
// optional version and the first ";".
func authservID(v string) string {
	v = strings.TrimSpace(skipComments(v))
	if i := strings.IndexAny(v, "; \t"); i >= 0 {
		v = v[:i]
	}
	return strings.Trim(v, `"`)
}

// skipComments removes RFC 5322 comments ("(...)", nested, with quoted
// pairs) from s.
func skipComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case depth > 0 && ch == '\\':
			i++
		case !quoted && ch == '(':
			depth++
		case depth > 0 && ch == ')':
			depth--
		case depth > 0:
		default:
			if ch == '"' && (i == 0 || s[i-1] != '\\') {
				quoted = !quoted
			}
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// domainOf returns the lower-case domain of an address, or "".
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
}

// isDomainName reports whether s looks like a domain name (not an
// address literal, at least two labels).
func isDomainName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	return s != "" && !strings.ContainsAny(s, "[]: ") && strings.Contains(s, ".")
}

// OrganizationalDomain returns the organizational domain of d (RFC 7489
// §3.2): one label below its public suffix, or d itself when it is a
// public suffix or unknown to the list.
func OrganizationalDomain(d string) string {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	od, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return od
}

// addrParser reads From: fields whatever the charset of their encoded
// words (the names do not matter here, the domains do).
var addrParser = mail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
}}

// fromDomain returns the one author domain of the From fields (RFC 7489
// §6.6.1): false when there are several fields, no usable address, or
// authors of different domains.
func fromDomain(froms []string) (string, bool) {
	if len(froms) != 1 {
		return "", false
	}
	var domains []string
	if list, err := addrParser.ParseList(froms[0]); err == nil {
		for _, a := range list {
			domains = append(domains, domainOf(a.Address))
		}
	} else {
		// Not RFC 5322 (a UTF-8 local part without SMTPUTF8 parsing
		// rules, odd quoting): the address in angle brackets, or the
		// whole value.
		v := froms[0]
		if i := strings.LastIndexByte(v, '<'); i >= 0 {
			v = v[i+1:]
			if j := strings.IndexByte(v, '>'); j >= 0 {
				v = v[:j]
			}
		}
		if strings.ContainsAny(strings.TrimSpace(v), " ,;") {
			return "", false
		}
		domains = append(domains, domainOf(strings.TrimSpace(v)))
	}
	if len(domains) == 0 || domains[0] == "" {
		return "", false
	}
	for _, d := range domains[1:] {
		if d != domains[0] {
			return "", false
		}
	}
	return domains[0], true
}

// pvalue writes a property value of Authentication-Results (RFC 8601
// §2.2): as it is when it is a token or local@domain of such, else as a
// quoted string.
func pvalue(s string) string {
	if s == "" {
		return `""`
	}
	for _, ch := range []byte(s) {
		if ch <= ' ' || ch >= 0x7f || strings.IndexByte(`()<>,;:\"[]?=`, ch) >= 0 {
			return quote(s)
		}
	}
	return s
}

// quote makes s a quoted-string (RFC 5322 §3.2.4), without line breaks.
func quote(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
