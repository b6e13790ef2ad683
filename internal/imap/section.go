package imap

import (
	"bufio"
	"bytes"
	"io"

	"github.com/postfach/postfach/internal/message"
)

// MessageSource is a stored message: random access to its bytes. The
// store's Body satisfies it.
type MessageSource interface {
	io.ReaderAt
	Size() int64
}

// FindPart returns the entity at a part path (RFC 9051 §6.4.5), or nil if
// there is none. Part 1 of a message that is not multipart is its body (the
// root entity); the parts of a message/rfc822 part are those of the message
// it encapsulates, or, if that message is not multipart, its body as part
// 1. An empty path returns root.
func FindPart(root *message.Part, path []uint32) *message.Part {
	cur := root
	for i, n := range path {
		var encapsulated *message.Part
		var children []message.Part
		switch {
		case i == 0:
			encapsulated = root
		case isMessagePart(cur):
			if len(cur.Parts) == 0 {
				return nil
			}
			encapsulated = &cur.Parts[0]
		case isMultipart(cur):
			children = cur.Parts
		default:
			return nil // a leaf has no parts
		}
		if encapsulated != nil {
			if !isMultipart(encapsulated) {
				if n != 1 {
					return nil
				}
				cur = encapsulated
				continue
			}
			children = encapsulated.Parts
		}
		if n < 1 || int(n) > len(children) {
			return nil
		}
		cur = &children[n-1]
	}
	return cur
}

// span is where a section's content lies in the stored message; with
// filter set, only the header fields it selects are part of it.
type span struct {
	start, end int64
	filter     *fieldFilter
}

// fieldFilter selects header fields for HEADER.FIELDS (.NOT).
type fieldFilter struct {
	fields []string
	not    bool
}

// sectionSpan resolves a section (RFC 9051 §6.4.5). A section that does
// not exist resolves to an empty span.
func sectionSpan(sum *message.Summary, size int64, sec *Section) span {
	root := &sum.Root
	if len(sec.Part) == 0 && sec.Text == SectionAll {
		return span{0, size, nil}
	}
	x := FindPart(root, sec.Part)
	if x == nil {
		return span{}
	}
	var s span
	switch sec.Text {
	case SectionAll:
		s = span{x.BodyStart, x.End, nil}
	case SectionMIME:
		s = span{x.HeaderStart, x.BodyStart, nil}
	default:
		// HEADER, HEADER.FIELDS (.NOT), TEXT: of the message itself or
		// of the message a message/rfc822 part encapsulates.
		m := root
		if len(sec.Part) > 0 {
			if !isMessagePart(x) || len(x.Parts) == 0 {
				return span{}
			}
			m = &x.Parts[0]
		}
		switch sec.Text {
		case SectionTextBody:
			s = span{m.BodyStart, m.End, nil}
		case SectionHeader:
			s = span{m.HeaderStart, m.BodyStart, nil}
		default:
			s = span{m.HeaderStart, m.BodyStart, &fieldFilter{sec.Fields, sec.Text == SectionHeaderFieldsNot}}
		}
	}
	s.start = min(max(s.start, 0), size)
	s.end = min(max(s.end, s.start), size)
	return s
}

// OpenSection returns the content of BODY[sec]<p> of a message: a reader
// streaming it from msg and its length, for Encoder.Literal. A section
// that does not exist is empty. HEADER.FIELDS (.NOT) are filtered in two
// streaming passes over the header (one to measure, one to send), so no
// part of the message is held in memory.
func OpenSection(msg MessageSource, sum *message.Summary, sec *Section, p Partial) (io.Reader, int64, error) {
	s := sectionSpan(sum, msg.Size(), sec)
	if s.filter == nil {
		off, n := p.Apply(s.end - s.start)
		return io.NewSectionReader(msg, s.start+off, n), n, nil
	}
	total, err := io.Copy(io.Discard, newHeaderFilter(io.NewSectionReader(msg, s.start, s.end-s.start), s.filter))
	if err != nil {
		return nil, 0, err
	}
	off, n := p.Apply(total)
	fr := newHeaderFilter(io.NewSectionReader(msg, s.start, s.end-s.start), s.filter)
	if _, err := io.CopyN(io.Discard, fr, off); err != nil {
		return nil, 0, err
	}
	return io.LimitReader(fr, n), n, nil
}

// headerFilter streams the header fields a fieldFilter selects, with
// their continuation lines, and the blank line that ends the header (RFC
// 9051 §6.4.5). It reads up to that blank line. Its notion of a field is
// message.ParseHeader's: a line with a valid name before a colon; other
// lines are kept by .NOT and dropped otherwise.
type headerFilter struct {
	br        *bufio.Reader
	f         *fieldFilter
	window    int  // bytes peeked to find a field name
	lineStart bool // at the start of a line
	seenField bool // a line that continuation lines belong to was seen
	include   bool // the current line is part of the output
	last      bool // the current line is the blank line
	pending   []byte
	done      bool
	crlf      [2]byte
}

func newHeaderFilter(r io.Reader, f *fieldFilter) *headerFilter {
	const bufSize = 4096
	window := 1
	for _, name := range f.fields {
		window = max(window, len(name)+1)
	}
	// A longer name matches no requested field, so the colon need not
	// be found beyond the longest requested name (plus some white space).
	window = min(window+64, bufSize)
	return &headerFilter{br: bufio.NewReaderSize(r, bufSize), f: f, window: window, lineStart: true, crlf: [2]byte{'\r', '\n'}}
}

// Read implements io.Reader.
func (h *headerFilter) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(h.pending) > 0 {
			c := copy(p[n:], h.pending)
			h.pending = h.pending[c:]
			n += c
			continue
		}
		if h.done {
			break
		}
		if h.lineStart {
			b, err := h.br.Peek(2)
			if len(b) == 0 {
				if err != io.EOF {
					return n, err
				}
				h.done = true
				continue
			}
			switch {
			case b[0] == '\n' || len(b) == 2 && b[0] == '\r' && b[1] == '\n':
				// The blank line ending the header.
				h.include, h.last = true, true
			case (b[0] == ' ' || b[0] == '\t') && h.seenField:
				// A continuation line belongs to the field before.
			default:
				h.include = h.matches()
				h.seenField = true
			}
			h.lineStart = false
		}
		chunk, err := h.br.ReadSlice('\n')
		switch {
		case h.last:
			h.pending = h.crlf[:] // the blank line, CRLF as in stored messages
		case h.include:
			h.pending = chunk
		}
		switch err {
		case nil:
			h.lineStart = true
			h.done = h.last
		case bufio.ErrBufferFull:
		case io.EOF:
			h.done = true
		default:
			return n, err
		}
	}
	if n == 0 && h.done {
		return 0, io.EOF
	}
	return n, nil
}

// matches decides whether the field starting at the reader position is
// selected.
func (h *headerFilter) matches() bool {
	b, _ := h.br.Peek(h.window)
	i := bytes.IndexByte(b, ':')
	if nl := bytes.IndexByte(b, '\n'); nl >= 0 && (i < 0 || nl < i) {
		i = -1 // no colon on this line: not a field
	}
	found := false
	if i > 0 {
		name := bytes.TrimRight(b[:i], " \t")
		for _, f := range h.f.fields {
			if foldEqual(f, name) {
				found = true
				break
			}
		}
	}
	return found != h.f.not
}

// foldEqual compares a string and bytes, ignoring ASCII case.
func foldEqual(s string, b []byte) bool {
	if len(s) != len(b) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if upperByte(s[i]) != upperByte(b[i]) {
			return false
		}
	}
	return true
}
