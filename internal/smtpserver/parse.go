package smtpserver

import (
	"bytes"
	"strings"

	"github.com/postfach/postfach/internal/mail"
)

// maxLine is the longest command line accepted, CRLF included: 512
// octets (RFC 5321 §4.5.3.1.4), plus what the MAIL parameters offered
// here may add: SIZE 26 (RFC 1870 §3), BODY 16 (RFC 6152 §3), SMTPUTF8
// 10 (RFC 6531 §3.4).
const maxLine = 512 + 26 + 16 + 10

// maxDomain is the longest EHLO/HELO/LHLO argument accepted
// (RFC 5321 §4.5.3.1.2: 255 octets for a domain).
const maxDomain = 255

// splitCommand splits a command line into its verb, in upper case, and
// its argument, without the line ending and surrounding blanks
// (RFC 5321 §4.1.1: verb SP argument CRLF). A line ending in a bare LF is
// accepted as well.
func splitCommand(line []byte) (verb, arg string) {
	line = bytes.TrimRight(line, "\r\n")
	line = bytes.TrimLeft(line, " \t")
	i := bytes.IndexAny(line, " \t")
	if i < 0 {
		return upperASCII(line), ""
	}
	return upperASCII(line[:i]), string(bytes.Trim(line[i+1:], " \t"))
}

// upperASCII returns b in ASCII upper case. Command verbs are ASCII
// (RFC 5321 §2.4: verbs are case-insensitive).
func upperASCII(b []byte) string {
	for _, c := range b {
		if 'a' <= c && c <= 'z' {
			u := make([]byte, len(b))
			for i, c := range b {
				if 'a' <= c && c <= 'z' {
					c -= 'a' - 'A'
				}
				u[i] = c
			}
			return string(u)
		}
	}
	return string(b)
}

// hasPrefixFold reports whether s begins with prefix, ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// parsePath parses the argument of MAIL ("FROM:") or RCPT ("TO:"):
// keyword, then a path in angle brackets, then ESMTP parameters
// (RFC 5321 §4.1.2: Reverse-path, Forward-path, Mail-parameters). It
// returns the mailbox without brackets ("" for the null path "<>"), with
// any source route removed (RFC 5321 §4.1.1.3 and appendix C: "@a,@b:"
// is accepted and ignored), and the parameter text.
//
// Like most servers it tolerates blanks after the colon and a path
// without brackets; the mailbox itself is checked by the caller.
func parsePath(arg, keyword string) (mailbox, params string, ok bool) {
	if !hasPrefixFold(arg, keyword) {
		return "", "", false
	}
	s := strings.TrimLeft(arg[len(keyword):], " \t")
	if s == "" {
		return "", "", false
	}
	if s[0] != '<' {
		// No brackets: the mailbox is the first word.
		mailbox, params, _ = strings.Cut(s, " ")
		if strings.ContainsAny(mailbox, "<>") {
			return "", "", false
		}
		return mailbox, strings.TrimSpace(params), true
	}
	end := closingBracket(s)
	if end < 0 {
		return "", "", false
	}
	inner, rest := s[1:end], s[end+1:]
	if rest != "" && rest[0] != ' ' {
		return "", "", false
	}
	if strings.HasPrefix(inner, "@") {
		// RFC 5321 §4.1.2: A-d-l ":" Mailbox; the route is ignored.
		i := strings.IndexByte(inner, ':')
		if i < 0 {
			return "", "", false
		}
		inner = inner[i+1:]
		if inner == "" {
			return "", "", false
		}
	}
	return inner, strings.TrimSpace(rest), true
}

// closingBracket returns the index of the '>' that closes the '<' at
// s[0], skipping a quoted local part (RFC 5321 §4.1.2 Quoted-string, with
// backslash quoted pairs), or -1.
func closingBracket(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '>':
			return i
		case !quoted && c == '<':
			return -1
		}
	}
	return -1
}

// param is one ESMTP parameter of MAIL or RCPT (RFC 5321 §4.1.2:
// esmtp-keyword ["=" esmtp-value]).
type param struct {
	key   string // upper case
	value string
	eq    bool // the parameter had "=" and a value
}

// parseParams parses the parameters after a path. Keywords are
// (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); values are printable US-ASCII
// without "=" and SP, and may carry UTF-8 (RFC 6531 §3.3). A keyword given
// twice is a syntax error.
func parseParams(s string) ([]param, bool) {
	var out []param
	for _, f := range strings.Fields(s) {
		k, v, eq := strings.Cut(f, "=")
		if !validKeyword(k) || (eq && !validValue(v)) {
			return nil, false
		}
		p := param{key: strings.ToUpper(k), value: v, eq: eq}
		for _, o := range out {
			if o.key == p.key {
				return nil, false
			}
		}
		out = append(out, p)
	}
	return out, true
}

func validKeyword(k string) bool {
	if k == "" || k[0] == '-' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func validValue(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 33 || c == '=' || c == 127 {
			return false
		}
	}
	return true
}

// allDigits reports whether s is 1*DIGIT.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// parseDigits parses 1*DIGIT into a non-negative number; it fails for
// anything else and for numbers of more than 18 digits (which no size or
// chunk can reach).
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseBDAT parses the argument of BDAT (RFC 3030 §2:
// bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CRLF,
// end-marker = "LAST").
func parseBDAT(arg string) (size int64, last, ok bool) {
	sz, marker, hasMarker := strings.Cut(arg, " ")
	size, ok = parseDigits(sz)
	if !ok {
		return 0, false, false
	}
	if hasMarker {
		if !strings.EqualFold(strings.TrimSpace(marker), "LAST") {
			return 0, false, false
		}
		last = true
	}
	return size, last, true
}

// helloDomain returns the domain or address literal of EHLO, HELO or LHLO
// (RFC 5321 §4.1.1.1): the first word of the argument, which must be
// printable and at most maxDomain octets.
func helloDomain(arg string) (string, bool) {
	d, _, _ := strings.Cut(arg, " ")
	if d == "" || len(d) > maxDomain {
		return "", false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < 33 || d[i] == 127 {
			return "", false
		}
	}
	return d, true
}

// canonicalMailbox is mail.CanonicalMailbox: the delivery pipeline
// uses the same form for Return-Path.
var canonicalMailbox = mail.CanonicalMailbox

// parseBURL parses the argument of BURL (RFC 4468 §3:
// burl-cmd = "BURL" SP absolute-URI [SP end-marker] CRLF). The URL is
// one word of printable US-ASCII; the resolver checks the rest.
func parseBURL(arg string) (url string, last, ok bool) {
	url, marker, hasMarker := strings.Cut(arg, " ")
	if url == "" {
		return "", false, false
	}
	for i := 0; i < len(url); i++ {
		if url[i] <= ' ' || url[i] >= 0x7f {
			return "", false, false
		}
	}
	if hasMarker {
		if !strings.EqualFold(strings.TrimSpace(marker), "LAST") {
			return "", false, false
		}
		last = true
	}
	return url, last, true
}
