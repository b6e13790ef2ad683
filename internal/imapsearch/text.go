package imapsearch

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
)

// ErrBadCharset is returned by Compile for a CHARSET the server cannot
// convert. The server answers it with NO and the response code
// BadCharsetCode (RFC 9051 §6.4.4).
var ErrBadCharset = errors.New("unsupported search charset")

// BadCharsetCode is the response code for ErrBadCharset: the charsets
// clients should use instead (RFC 9051 §7.1 BADCHARSET). Every charset
// golang.org/x/text decodes is accepted, but only these two are promised.
const BadCharsetCode = "BADCHARSET (UTF-8 US-ASCII)"

// charsetDecoder returns the decoder of the named charset; nil for
// UTF-8, US-ASCII and "" (no conversion needed), ErrBadCharset for a name
// golang.org/x/text does not know.
func charsetDecoder(name string) (*encoding.Decoder, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	switch n {
	case "", "utf-8", "utf8", "us-ascii", "ascii", "us_ascii", "ansi_x3.4-1968", "iso646-us":
		return nil, nil
	}
	var enc encoding.Encoding
	if e, err := ianaindex.MIME.Encoding(n); err == nil && e != nil {
		enc = e
	} else if e, err := ianaindex.IANA.Encoding(n); err == nil && e != nil {
		enc = e
	} else if e, err := htmlindex.Get(n); err == nil && e != nil {
		enc = e
	}
	if enc == nil {
		return nil, fmt.Errorf("charset %q: %w", name, ErrBadCharset)
	}
	return enc.NewDecoder(), nil
}

// toValidUTF8 returns s with every byte that is not part of valid UTF-8
// read as windows-1252.
func toValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			r = charmap.Windows1252.DecodeByte(s[i])
			n = 1
		}
		b.WriteRune(r)
		i += n
	}
	return b.String()
}

// fold maps r to the representative of its simple case folding orbit (the
// smallest rune of the orbit), so fold(a) == fold(b) exactly when
// strings.EqualFold(string(a), string(b)). This is the case-insensitive
// comparison RFC 9051 §6.4.4 asks for, extended beyond ASCII.
func fold(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			return r - ('a' - 'A')
		}
		return r
	}
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < m {
			m = f
		}
	}
	return m
}

// pattern is a search string prepared for case-insensitive substring
// matching over a stream: the folded runes and the Knuth-Morris-Pratt
// failure function, so text is scanned once, never backtracked, and may
// arrive in pieces of any size.
type pattern struct {
	runes []rune
	next  []int32 // next[i]: length of the longest proper border of runes[:i+1]
	enc   []byte  // runes as UTF-8, for prepared text (foldedBytes)
}

// newPattern prepares s (valid UTF-8).
func newPattern(s string) *pattern {
	p := &pattern{}
	for _, r := range s {
		p.runes = append(p.runes, fold(r))
	}
	p.next = make([]int32, len(p.runes))
	k := int32(0)
	for i := 1; i < len(p.runes); i++ {
		for k > 0 && p.runes[i] != p.runes[k] {
			k = p.next[k-1]
		}
		if p.runes[i] == p.runes[k] {
			k++
		}
		p.next[i] = k
	}
	return p
}

// empty reports whether the pattern matches everything.
func (p *pattern) empty() bool { return len(p.runes) == 0 }

// matchString reports whether s contains the pattern.
func (p *pattern) matchString(s string) bool {
	m := matcher{p: p}
	return m.feedString(s)
}

// matcher is the state of one scan: how much of the pattern the text read
// so far ends with.
type matcher struct {
	p *pattern
	j int32
}

// reset starts a new, independent scan.
func (m *matcher) reset() { m.j = 0 }

// step advances over one folded rune; it reports a complete match.
func (m *matcher) step(c rune) bool {
	p := m.p
	for m.j > 0 && p.runes[m.j] != c {
		m.j = p.next[m.j-1]
	}
	if p.runes[m.j] == c {
		m.j++
		if int(m.j) == len(p.runes) {
			m.j = p.next[m.j-1]
			return true
		}
	}
	return false
}

// feedString scans s; it reports whether a match ended in it. An empty
// pattern matches at once.
func (m *matcher) feedString(s string) bool {
	if m.p.empty() {
		return true
	}
	for i := 0; i < len(s); {
		c := rune(s[i])
		if c < utf8.RuneSelf {
			i++
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
		} else {
			var n int
			c, n = utf8.DecodeRuneInString(s[i:])
			i += n
			c = fold(c)
		}
		if m.step(c) {
			return true
		}
	}
	return false
}

// feedBytes scans b, which may end inside a UTF-8 sequence: it returns
// how many bytes it consumed (the rest, at most 3 bytes, must be passed
// again with the data that follows) and whether a match ended. With
// atEOF, everything is consumed.
func (m *matcher) feedBytes(b []byte, atEOF bool) (int, bool) {
	if m.p.empty() {
		return len(b), true
	}
	i := 0
	for i < len(b) {
		c := rune(b[i])
		if c < utf8.RuneSelf {
			i++
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
		} else {
			if !atEOF && !utf8.FullRune(b[i:]) {
				return i, false
			}
			var n int
			c, n = utf8.DecodeRune(b[i:])
			i += n
			c = fold(c)
		}
		if m.step(c) {
			return i, true
		}
	}
	return i, false
}

// feedReader scans r to its end or to the first match, reading through
// buf (at least utf8.UTFMax bytes). It stops reading as soon as a match is
// found.
func (m *matcher) feedReader(r io.Reader, buf []byte) (bool, error) {
	if m.p.empty() {
		return true, nil
	}
	keep := 0
	for {
		n, err := r.Read(buf[keep:])
		n += keep
		atEOF := err != nil
		used, ok := m.feedBytes(buf[:n], atEOF)
		if ok {
			return true, nil
		}
		keep = copy(buf, buf[used:n])
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read text: %w", err)
		}
	}
}
