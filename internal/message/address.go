package message

import (
	"strings"
)

// maxAddresses bounds the addresses ParseAddressList returns.
const maxAddresses = 10000

// ParseAddressList parses an address-list header value (From, To, Cc, ...;
// RFC 5322 §3.4, with the obsolete forms of §4.4) into ENVELOPE addresses
// (RFC 9051 §7.5.2), leniently: a display name is the phrase's words
// joined by one space with quoted strings unquoted and RFC 2047 encoded
// words left encoded, a route ("<@a,@b:x@y>") goes to Adl, and groups
// become a start marker, their members and an end marker.
//
// Comments (RFC 5322 §3.2.2) are dropped from the address itself, also
// between the words and dots of an obsolete local part or domain
// ("john . doe (x) @ example . org"). An address written without angle
// brackets and without a phrase takes its display name from a comment, as
// Dovecot and Cyrus do and clients expect ("jdoe@example.org (John Doe)"
// has the name "John Doe"; see addrParser.comment for which comment). A
// phrase always wins over a comment, and an address in angle brackets
// never takes its name from a comment (neither do those servers).
//
// Malformed input never fails: a missing ">" or ";" is assumed at the
// end, an address without "@" gives a Mailbox with an empty Host, and
// "John Doe john@example.org" reads as a name and an address. Host is
// empty only for group markers and such malformed addresses; the IMAP
// layer must not write an empty Host of a non-group address as NIL, since
// NIL marks a group there.
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
	// comment is the text of the last non-blank comment of the current
	// item that may name it, "" if none. An address without a phrase and
	// without angle brackets takes its name from it: the last comment
	// that is not blank, among those inside the addr-spec and after it up
	// to the next ',' (or ';' in a group). The last one is what Dovecot
	// uses; comments before the local part are not names (in Dovecot and
	// Cyrus neither). In "pete(his account)@silly.test(his host)" the
	// name is "his host".
	comment string
}

// addrWord is one word of a phrase or local part.
type addrWord struct {
	text   string
	quoted bool // a quoted-string: its dots are not separators
}

// word reads one word at p.i: a quoted string (unquoted) or a run of atom
// characters. RFC 2047 encoded words are read whole even when they contain
// specials. '.' counts as an atom character, so dot-atoms and names like
// "John Q. Public" come out as single words. It always consumes at least
// one byte.
func (p *addrParser) word() addrWord {
	s := p.s
	if s[p.i] == '"' {
		w, j := readQuoted(s, p.i)
		p.i = j
		return addrWord{text: w, quoted: true}
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
		return addrWord{}
	}
	return addrWord{text: s[start:p.i]}
}

// cfws skips whitespace and comments at p.i. With note set, the text of
// each non-blank comment becomes p.comment.
func (p *addrParser) cfws(note bool) {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		case '(':
			if !note {
				p.i = skipComment(p.s, p.i)
				continue
			}
			var text string
			text, p.i = readComment(p.s, p.i)
			if text != "" {
				p.comment = text
			}
		default:
			return
		}
	}
}

// item parses one address or group at p.i and appends it to out. In a group
// (inGroup), ';' ends the item and is left for the caller.
func (p *addrParser) item(out []Address, inGroup bool) []Address {
	var words []addrWord
	p.comment = ""
	for {
		// Comments count as a name only once the local part may have
		// begun; p.comment is used only when no phrase is left.
		p.cfws(len(words) > 0)
		if p.i >= len(p.s) {
			return p.appendBare(out, words)
		}
		switch p.s[p.i] {
		case ',':
			return p.appendBare(out, words)
		case ';':
			if !inGroup {
				p.i++
			}
			return p.appendBare(out, words)
		case '<':
			a := p.angleAddr()
			a.Name = joinWords(words)
			if a.Mailbox != "" || a.Host != "" || a.Name != "" {
				out = append(out, a)
			}
			p.skipRest(inGroup, false)
			return out
		case ':':
			p.i++
			if inGroup {
				// No nested groups (RFC 5322 §3.4): ignore the colon.
				continue
			}
			return p.group(out, joinWords(words))
		case '@':
			p.i++
			local, phrase := splitLocal(words)
			a := Address{Mailbox: local, Host: p.domain()}
			p.skipRest(inGroup, true)
			a.Name = joinWords(phrase)
			if a.Name == "" {
				a.Name = p.comment
			}
			out = append(out, a)
			return out
		default:
			if w := p.word(); w.text != "" {
				words = append(words, w)
			}
		}
	}
}

// joinWords joins phrase words with single spaces.
func joinWords(words []addrWord) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0].text
	}
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w.text)
	}
	return b.String()
}

// splitLocal splits the words before an '@' into the local part and the
// phrase before it. The local part is the last word, joined with the
// words before it while a dot separates them: RFC 5322 §4.4 obs-local-part
// allows CFWS around the dots ("john . doe@example.org" is
// "john.doe@example.org"). Dots inside a quoted string separate nothing.
func splitLocal(words []addrWord) (local string, phrase []addrWord) {
	if len(words) == 0 {
		return "", nil
	}
	k := len(words) - 1
	for k > 0 {
		cur, prev := words[k], words[k-1]
		if (!cur.quoted && strings.HasPrefix(cur.text, ".")) || (!prev.quoted && strings.HasSuffix(prev.text, ".")) {
			k--
			continue
		}
		break
	}
	if k == len(words)-1 {
		return words[k].text, words[:k]
	}
	var b strings.Builder
	for _, w := range words[k:] {
		b.WriteString(w.text)
	}
	return b.String(), words[:k]
}

// appendBare appends a word sequence with no "@" and no "<": malformed,
// kept as a mailbox without host so the information is not lost. Like an
// addr-spec, it may take its name from a comment.
func (p *addrParser) appendBare(out []Address, words []addrWord) []Address {
	if len(words) == 0 {
		return out
	}
	return append(out, Address{Name: p.comment, Mailbox: joinWords(words)})
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
// A missing '>' is assumed before the next ',' or the end. Comments inside
// the brackets are dropped and never name the address.
func (p *addrParser) angleAddr() Address {
	s := p.s
	p.i++
	// Find the end, skipping quoted strings and comments. Without a '>'
	// (before the next '<'), the address ends at the first comma: a
	// route's commas only count inside brackets that close.
	end, comma := -1, -1
scan:
	for j := p.i; j < len(s); j++ {
		switch s[j] {
		case '"':
			_, k := readQuoted(s, j)
			j = k - 1
		case '(':
			j = skipComment(s, j) - 1
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
	// RFC 5322 §4.4 obs-angle-addr: a route "@a,@b:" before the
	// addr-spec, with CFWS and empty elements allowed in the list.
	if t := inner[skipCFWS(inner, 0):]; strings.HasPrefix(t, "@") {
		if c := routeEnd(t); c >= 0 {
			a.Adl = cleanRoute(t[:c])
			inner = t[c+1:]
		}
	}
	local, host := splitAddrSpec(inner)
	a.Mailbox, a.Host = local, host
	return a
}

// routeEnd returns the index of the ':' that ends an obs-route at the
// start of s, outside comments, or -1.
func routeEnd(s string) int {
	for j := 0; j < len(s); j++ {
		switch s[j] {
		case '(':
			j = skipComment(s, j) - 1
		case ':':
			return j
		}
	}
	return -1
}

// cleanRoute returns an obs-domain-list ("@a, ,@b") in the form IMAP
// clients expect in addr-adl: "@a,@b", without CFWS or empty elements.
func cleanRoute(s string) string {
	var b strings.Builder
	for _, d := range strings.Split(cleanDomain(s), ",") {
		if d == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d)
	}
	return b.String()
}

// splitAddrSpec splits "local@domain" at its last '@' outside quotes and
// comments, unquoting the local part and removing whitespace and comments.
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
	if !strings.ContainsAny(s, " \t\r\n\"()\\") {
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
		case ' ', '\t', '\r', '\n':
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
	if !strings.ContainsAny(s, " \t\r\n()") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case '(':
			i = skipComment(s, i)
		case ' ', '\t', '\r', '\n':
			i++
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// domain reads the domain of a bare addr-spec after its '@': a domain
// literal, or a dot-atom whose atoms and dots may be separated by CFWS
// (RFC 5322 §4.4 obs-domain: "example . org" is "example.org"). Comments
// on the way are noted as possible names.
func (p *addrParser) domain() string {
	s := p.s
	p.cfws(true)
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
	// The common case is one run of atom characters, returned as is; the
	// builder is only used when CFWS splits the domain.
	var b strings.Builder
	first := ""
	lastDot := false
	for n := 0; ; n++ {
		start := p.i
		for p.i < len(s) && isDomainChar(s[p.i]) {
			p.i++
		}
		seg := s[start:p.i]
		if n == 0 {
			first = seg
		} else {
			if n == 1 {
				b.WriteString(first)
			}
			b.WriteString(seg)
		}
		if seg != "" {
			lastDot = seg[len(seg)-1] == '.'
		}
		p.cfws(true)
		// Another atom follows only across a dot.
		if p.i < len(s) && (s[p.i] == '.' || lastDot && isDomainChar(s[p.i])) {
			continue
		}
		if n == 0 {
			return first
		}
		return b.String()
	}
}

// isDomainChar reports whether c may appear in a dot-atom (atext or '.';
// bytes of UTF-8 count, RFC 6532).
func isDomainChar(c byte) bool {
	return !isWSP(c) && strings.IndexByte(`()<>[]:;@\,"`, c) < 0
}

// skipRest skips what follows an address up to the next ',' (or ';' in a
// group, left for the caller), ignoring comments and quoted strings. With
// note set, its comments are noted as possible names.
func (p *addrParser) skipRest(inGroup, note bool) {
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
			p.cfws(note)
		case '"':
			_, p.i = readQuoted(s, p.i)
		default:
			p.i++
		}
	}
}

// readComment reads the comment starting at s[i] == '(' and returns its
// text and the index after it: quoted-pairs unquoted, nested comments kept
// with their parentheses (as Dovecot does), line breaks of folding removed,
// runs of whitespace made one space, and outer whitespace trimmed. RFC
// 2047 encoded words, allowed in comments (RFC 2047 §5 (2)), stay encoded
// like those of a phrase. An unterminated comment runs to the end. It
// ends where skipComment ends.
func readComment(s string, i int) (string, int) {
	var b strings.Builder
	depth := 0
	space := false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			c = s[i]
		case c == '(':
			depth++
			if depth == 1 {
				continue
			}
		case c == ')':
			depth--
			if depth == 0 {
				return b.String(), i + 1
			}
		case isWSP(c):
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(c)
	}
	return b.String(), len(s)
}

// stripSpace removes all whitespace.
func stripSpace(s string) string {
	if !strings.ContainsAny(s, " \t\r\n") {
		return s
	}
	return strings.NewReplacer(" ", "", "\t", "", "\r", "", "\n", "").Replace(s)
}

// isWSP reports whether c is whitespace in a header value.
func isWSP(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}
