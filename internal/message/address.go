package message

import (
	"strings"
)

// maxAddresses bounds the addresses ParseAddressList returns.
const maxAddresses = 10000

// ParseAddressList parses an address-list header value (From, To, Cc, ...;
// RFC 5322 §3.4) into ENVELOPE addresses (RFC 9051 §7.5.2), leniently:
// comments are skipped, a display name is the phrase's words joined by one
// space with quoted strings unquoted and RFC 2047 encoded words left
// encoded, a route ("<@a,@b:x@y>") goes to Adl, and groups become a start
// marker, their members and an end marker. Malformed input never fails:
// a missing ">" or ";" is assumed at the end, an address without "@" gives
// a Mailbox with an empty Host, and "John Doe john@example.org" reads as a
// name and an address. Host is empty only for group markers and such
// malformed addresses; the IMAP layer must not write an empty Host of a
// non-group address as NIL, since NIL marks a group there.
func ParseAddressList(raw string) []Address {
	p := addrParser{s: raw}
	var out []Address
	for p.i < len(p.s) && len(out) < maxAddresses {
		p.i = skipCFWS(p.s, p.i)
		if p.i >= len(p.s) {
			break
		}
		if c := p.s[p.i]; c == ',' || c == ';' || c == '>' {
			p.i++
			continue
		}
		out = p.item(out, false)
	}
	return out
}

// addrParser is the state of ParseAddressList.
type addrParser struct {
	s string
	i int
}

// word reads one word at p.i: a quoted string (unquoted) or a run of atom
// characters. RFC 2047 encoded words are read whole even when they contain
// specials. '.' counts as an atom character, so dot-atoms and names like
// "John Q. Public" come out as single words. It always consumes at least
// one byte.
func (p *addrParser) word() string {
	s := p.s
	if s[p.i] == '"' {
		w, j := readQuoted(s, p.i)
		p.i = j
		return w
	}
	start := p.i
	for p.i < len(s) {
		c := s[p.i]
		if c == '=' && p.i+1 < len(s) && s[p.i+1] == '?' {
			if _, _, _, end, ok := parseEncodedWord(s, p.i); ok {
				p.i = end
				continue
			}
		}
		if isWSP(c) || strings.IndexByte(`()<>[]:;@\,"`, c) >= 0 {
			break
		}
		p.i++
	}
	if p.i == start {
		// A special that starts no construct here ('[', ']', '\\'): skip it.
		p.i++
		return ""
	}
	return s[start:p.i]
}

// item parses one address or group at p.i and appends it to out. In a group
// (inGroup), ';' ends the item and is left for the caller.
func (p *addrParser) item(out []Address, inGroup bool) []Address {
	var words []string
	for {
		p.i = skipCFWS(p.s, p.i)
		if p.i >= len(p.s) {
			return appendBare(out, words)
		}
		switch p.s[p.i] {
		case ',':
			return appendBare(out, words)
		case ';':
			if inGroup {
				return appendBare(out, words)
			}
			p.i++
			return appendBare(out, words)
		case '<':
			a := p.angleAddr()
			a.Name = strings.Join(words, " ")
			if a.Mailbox != "" || a.Host != "" || a.Name != "" {
				out = append(out, a)
			}
			p.skipRest(inGroup)
			return out
		case ':':
			p.i++
			if inGroup {
				// No nested groups (RFC 5322 §3.4): ignore the colon.
				continue
			}
			return p.group(out, strings.Join(words, " "))
		case '@':
			p.i++
			local := ""
			if len(words) > 0 {
				local = words[len(words)-1]
				words = words[:len(words)-1]
			}
			a := Address{Name: strings.Join(words, " "), Mailbox: local, Host: p.domain()}
			out = append(out, a)
			p.skipRest(inGroup)
			return out
		default:
			if w := p.word(); w != "" {
				words = append(words, w)
			}
		}
	}
}

// appendBare appends a word sequence with no "@" and no "<": malformed,
// kept as a mailbox without host so the information is not lost.
func appendBare(out []Address, words []string) []Address {
	if len(words) == 0 {
		return out
	}
	return append(out, Address{Mailbox: strings.Join(words, " ")})
}

// group parses the members of a group after its colon, up to ';' (RFC
// 5322 §3.4; a missing ';' is assumed at the end).
func (p *addrParser) group(out []Address, name string) []Address {
	out = append(out, Address{Mailbox: name, IsGroupStart: true})
	for p.i < len(p.s) && len(out) < maxAddresses {
		p.i = skipCFWS(p.s, p.i)
		if p.i >= len(p.s) {
			break
		}
		c := p.s[p.i]
		if c == ';' {
			p.i++
			break
		}
		if c == ',' || c == '>' {
			p.i++
			continue
		}
		out = p.item(out, true)
	}
	return append(out, Address{IsGroupEnd: true})
}

// angleAddr parses "<[route:]local@domain>" starting at p.s[p.i] == '<'.
// A missing '>' is assumed before the next ',' or the end.
func (p *addrParser) angleAddr() Address {
	s := p.s
	p.i++
	// Find the end, skipping quoted strings. Without a '>' (before the next
	// '<'), the address ends at the first comma: a route's commas only
	// count inside brackets that close.
	end, comma := -1, -1
scan:
	for j := p.i; j < len(s); j++ {
		switch s[j] {
		case '"':
			_, k := readQuoted(s, j)
			j = k - 1
		case '>':
			end = j
			break scan
		case '<':
			break scan
		case ',':
			if comma < 0 {
				comma = j
			}
		}
	}
	next := end + 1
	switch {
	case end >= 0:
	case comma >= 0:
		end, next = comma, comma
	default:
		end, next = len(s), len(s)
	}
	inner := s[p.i:end]
	p.i = next
	var a Address
	// RFC 5322 §4.4 obs-route: "@a,@b:".
	if t := strings.TrimLeft(inner, " \t"); strings.HasPrefix(t, "@") {
		if c := strings.IndexByte(t, ':'); c >= 0 {
			a.Adl = stripSpace(t[:c])
			inner = t[c+1:]
		}
	}
	local, host := splitAddrSpec(inner)
	a.Mailbox, a.Host = local, host
	return a
}

// splitAddrSpec splits "local@domain" at its last '@' outside quotes,
// unquoting the local part and removing whitespace and comments.
func splitAddrSpec(s string) (local, host string) {
	at := -1
	for j := 0; j < len(s); j++ {
		switch s[j] {
		case '"':
			_, k := readQuoted(s, j)
			j = k - 1
		case '(':
			j = skipComment(s, j) - 1
		case '@':
			at = j
		}
	}
	if at < 0 {
		return cleanLocal(s), ""
	}
	return cleanLocal(s[:at]), cleanDomain(s[at+1:])
}

// cleanLocal returns a local part without comments, whitespace and quotes.
func cleanLocal(s string) string {
	if !strings.ContainsAny(s, " \t\"()\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case '"':
			w, j := readQuoted(s, i)
			b.WriteString(w)
			i = j
		case '(':
			i = skipComment(s, i)
		case ' ', '\t':
			i++
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// cleanDomain returns a domain without comments and whitespace.
func cleanDomain(s string) string {
	if !strings.ContainsAny(s, " \t()") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case '(':
			i = skipComment(s, i)
		case ' ', '\t':
			i++
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// domain reads the domain of a bare addr-spec after its '@': one dot-atom
// or domain literal, possibly after whitespace and comments.
func (p *addrParser) domain() string {
	s := p.s
	p.i = skipCFWS(s, p.i)
	if p.i < len(s) && s[p.i] == '[' {
		j := strings.IndexByte(s[p.i:], ']')
		if j < 0 {
			d := s[p.i:]
			p.i = len(s)
			return stripSpace(d)
		}
		d := s[p.i : p.i+j+1]
		p.i += j + 1
		return stripSpace(d)
	}
	start := p.i
	for p.i < len(s) {
		c := s[p.i]
		if isWSP(c) || strings.IndexByte(`()<>[]:;@\,"`, c) >= 0 {
			break
		}
		p.i++
	}
	return s[start:p.i]
}

// skipRest skips what follows an address up to the next ',' (or ';' in a
// group, left for the caller), ignoring comments and quoted strings.
func (p *addrParser) skipRest(inGroup bool) {
	s := p.s
	for p.i < len(s) {
		switch s[p.i] {
		case ',':
			return
		case ';':
			if inGroup {
				return
			}
			p.i++
			return
		case '(':
			p.i = skipComment(s, p.i)
		case '"':
			_, p.i = readQuoted(s, p.i)
		default:
			p.i++
		}
	}
}

// stripSpace removes all whitespace.
func stripSpace(s string) string {
	if !strings.ContainsAny(s, " \t") {
		return s
	}
	return strings.NewReplacer(" ", "", "\t", "").Replace(s)
}

// isWSP reports whether c is whitespace in a header value.
func isWSP(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}
