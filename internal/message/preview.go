package message

import (
	"html"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/transform"
)

// previewMax is the preview length in Unicode characters (RFC 8970 §3
// leaves the algorithm to the server; 200 is what it suggests clients can
// expect).
const previewMax = 200

// previewBuilder collects up to previewMax characters of UTF-8 text with
// every whitespace run collapsed to one space, leading and trailing
// whitespace dropped, and invisible formatting characters (zero-width
// spaces and joiners, soft hyphens, byte order marks, control characters)
// removed. Its input must be valid UTF-8 in whole characters.
type previewBuilder struct {
	out   []byte
	runes int
	space bool // a whitespace run is pending (written before the next character)
	full  bool
}

func (b *previewBuilder) write(p []byte) {
	for len(p) > 0 && !b.full {
		c := p[0]
		if c < utf8.RuneSelf {
			p = p[1:]
			switch {
			case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v':
				b.space = true
			case c < ' ' || c == 0x7f:
				// Control character: drop.
			default:
				if b.emitSpace() {
					b.out = append(b.out, c)
					b.count()
				}
			}
			continue
		}
		r, n := utf8.DecodeRune(p)
		seq := p[:n]
		p = p[n:]
		switch {
		case unicode.IsSpace(r):
			b.space = true
		case r == utf8.RuneError && n == 1, unicode.Is(unicode.Cf, r), unicode.IsControl(r), r == 0x34f:
			// Invalid, format (ZWSP, ZWNJ, soft hyphen, BOM...) or control.
		default:
			if b.emitSpace() {
				b.out = append(b.out, seq...)
				b.count()
			}
		}
	}
}

// emitSpace writes a pending space before a character and reports
// whether there is room for the character.
func (b *previewBuilder) emitSpace() bool {
	if b.space && b.runes > 0 {
		if b.runes+2 > previewMax {
			b.full = true
			return false
		}
		b.out = append(b.out, ' ')
		b.count()
	}
	b.space = false
	return true
}

func (b *previewBuilder) count() {
	b.runes++
	if b.runes >= previewMax {
		b.full = true
	}
}

// previewSink receives decoded UTF-8 text.
type previewSink interface {
	text(p []byte)
}

func (b *previewBuilder) text(p []byte) { b.write(p) }

// charsetStream converts a byte stream in some charset to UTF-8 in
// pieces, carrying incomplete characters between writes.
type charsetStream struct {
	t     transform.Transformer
	carry []byte
	dst   [1024]byte
}

// maxCarry bounds the bytes held back as an incomplete character.
const maxCarry = 32

func (c *charsetStream) write(p []byte, atEOF bool, sink previewSink) {
	in := p
	if len(c.carry) > 0 {
		c.carry = append(c.carry, p...)
		in = c.carry
	}
	for {
		nDst, nSrc, err := c.t.Transform(c.dst[:], in, atEOF)
		if nDst > 0 {
			sink.text(c.dst[:nDst])
		}
		in = in[nSrc:]
		if err == transform.ErrShortDst && (nDst > 0 || nSrc > 0) {
			continue
		}
		if err == nil || err == transform.ErrShortSrc {
			break
		}
		// A decoding error or no progress: skip a byte and go on.
		if len(in) == 0 {
			break
		}
		in = in[1:]
	}
	if len(in) > maxCarry || atEOF {
		in = nil
	}
	c.carry = append(c.carry[:0], in...)
}

// HTML stripper states.
const (
	hText     = iota
	hTagOpen  // after '<'
	hTagName  // reading a tag name
	hTagAttrs // inside a tag after its name
	hBang     // after "<!"
	hComment  // inside <!-- -->
	hEntity   // after '&'
	hSkip     // inside <script>, <style>, <head> or <title>
	hSkipLT   // hSkip, after '<'
	hSkipName // hSkip, reading the name of a closing tag
)

// htmlStripper turns HTML into the text a reader sees, enough for a
// preview: tags and comments removed, the content of script, style, head
// and title skipped, block-level tags turned into spaces, and character
// references decoded. It works on UTF-8 bytes; all markup is ASCII.
type htmlStripper struct {
	state   int
	closing bool
	quote   byte
	dashes  int
	name    [16]byte
	nname   int
	skip    string // the element whose content is being skipped
	ent     [16]byte
	nent    int
	out     previewSink
	buf     []byte // text collected in one call
}

func (h *htmlStripper) text(p []byte) {
	h.buf = h.buf[:0]
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch h.state {
		case hText:
			switch c {
			case '<':
				h.state = hTagOpen
				h.closing = false
				h.nname = 0
			case '&':
				h.state = hEntity
				h.ent[0] = '&'
				h.nent = 1
			default:
				h.buf = append(h.buf, c)
			}
		case hTagOpen:
			switch {
			case c == '/' && !h.closing:
				h.closing = true
			case c == '!':
				h.state = hBang
				h.dashes = 0
			case isLetter(c):
				h.state = hTagName
				h.name[0] = c | 0x20
				h.nname = 1
			default:
				// Not a tag ("a < b"): the '<' is text.
				h.buf = append(h.buf, '<')
				h.state = hText
				i--
			}
		case hTagName:
			if isLetter(c) || isDigit(c) {
				if h.nname < len(h.name) {
					h.name[h.nname] = c | 0x20
					h.nname++
				}
				continue
			}
			h.state = hTagAttrs
			h.quote = 0
			i--
		case hTagAttrs:
			switch {
			case h.quote != 0:
				if c == h.quote {
					h.quote = 0
				}
			case c == '"' || c == '\'':
				h.quote = c
			case c == '>':
				h.endTag()
			}
		case hBang:
			if c == '-' {
				h.dashes++
				if h.dashes == 2 {
					h.state = hComment
					h.dashes = 0
				}
				continue
			}
			// <!DOCTYPE ...> and the like: skip to '>'.
			h.state = hTagAttrs
			h.nname = 0
			h.quote = 0
			i--
		case hComment:
			switch {
			case c == '-':
				h.dashes++
			case c == '>' && h.dashes >= 2:
				h.state = hText
			default:
				h.dashes = 0
			}
		case hEntity:
			if c == ';' || !(isLetter(c) || isDigit(c) || c == '#') || h.nent >= len(h.ent)-1 {
				if c == ';' {
					h.ent[h.nent] = ';'
					h.nent++
				} else {
					i--
				}
				h.buf = append(h.buf, html.UnescapeString(string(h.ent[:h.nent]))...)
				h.state = hText
				continue
			}
			h.ent[h.nent] = c
			h.nent++
		case hSkip:
			if c == '<' {
				h.state = hSkipLT
			}
		case hSkipLT:
			if c == '/' {
				h.state = hSkipName
				h.nname = 0
			} else {
				h.state = hSkip
				i--
			}
		case hSkipName:
			if isLetter(c) || isDigit(c) {
				if h.nname < len(h.name) {
					h.name[h.nname] = c | 0x20
					h.nname++
				}
				continue
			}
			if string(h.name[:h.nname]) == h.skip {
				h.skip = ""
				h.state = hTagAttrs
				h.closing = true
				h.nname = 0
				h.quote = 0
			} else {
				h.state = hSkip
			}
			i--
		}
	}
	if len(h.buf) > 0 {
		h.out.text(h.buf)
	}
}

// endTag acts on the tag just closed by '>'.
func (h *htmlStripper) endTag() {
	h.state = hText
	name := string(h.name[:h.nname])
	if !h.closing {
		switch name {
		case "script", "style", "head", "title":
			h.state = hSkip
			h.skip = name
			return
		}
	}
	switch name {
	case "br", "p", "div", "tr", "td", "th", "li", "ul", "ol", "table", "h1", "h2", "h3",
		"h4", "h5", "h6", "hr", "blockquote", "pre", "section", "article", "header",
		"footer", "body", "center", "dd", "dt":
		h.buf = append(h.buf, ' ')
	}
}

// flush writes a character reference cut off by the end of the part.
func (h *htmlStripper) flush() {
	if h.state == hEntity {
		h.out.text(h.ent[:h.nent])
	}
	h.state = hText
}

// partPreview feeds one text part's decoded body into a previewBuilder,
// converting its charset and, for HTML, stripping markup.
type partPreview struct {
	conv  charsetStream
	strip *htmlStripper
	b     *previewBuilder
}

func newPartPreview(charset string, isHTML bool, b *previewBuilder) *partPreview {
	t, _ := lookupCharset(charset)
	pv := &partPreview{conv: charsetStream{t: t}, b: b}
	if isHTML {
		pv.strip = &htmlStripper{out: b}
	}
	return pv
}

func (pv *partPreview) sink() previewSink {
	if pv.strip != nil {
		return pv.strip
	}
	return pv.b
}

func (pv *partPreview) write(p []byte) {
	pv.conv.write(p, false, pv.sink())
}

func (pv *partPreview) finish() {
	pv.conv.write(nil, true, pv.sink())
	if pv.strip != nil {
		pv.strip.flush()
	}
}
