package imapsearch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/message"
)

// Prepared text. HEADER, TEXT and BODY read the message, decode it and
// compare it rune by rune, case-insensitively (content.go). A server that
// searches one mailbox again and again can prepare a message's text once
// and keep it: HeaderText and BodyText hold the same text the streaming
// search reads, case-folded (every rune replaced by fold(rune), encoded
// as UTF-8), so a search is a byte comparison. Both are immutable and
// depend only on the stored message, which never changes.
//
// Case-folded text and a folded pattern compare as the streaming matcher
// does: the matcher compares folded runes, and since both texts are valid
// UTF-8, a byte match of the pattern's encoding starts and ends at rune
// boundaries.

// TextSource is implemented by a Source that can give a message's text
// prepared for search (a server that caches it): Match then uses it for
// HEADER, TEXT and BODY instead of reading the message.
type TextSource interface {
	// HeaderText returns the message's own header prepared for search.
	HeaderText() (*HeaderText, error)
	// BodyText returns the message's body prepared for search; nil (and
	// no error) when the source does not prepare this message's body
	// (too large to keep, say): Match then reads the body.
	BodyText() (*BodyText, error)
}

// HeaderText is a header section prepared for HEADER and TEXT.
type HeaderText struct {
	fields []textField
}

// textField is one header field: its name as written, and the folded
// text "Name: decoded value", of which the value starts at valueAt.
type textField struct {
	name    string
	line    []byte
	valueAt int
}

// NewHeaderText prepares a header for search: each field as TEXT sees it
// ("Name: value", the value unfolded and RFC 2047 decoded), case-folded.
func NewHeaderText(h message.Header) *HeaderText {
	t := &HeaderText{fields: make([]textField, 0, len(h.Fields))}
	var buf []byte
	for _, f := range h.Fields {
		if f.Name == "" {
			continue
		}
		buf = appendFolded(buf[:0], f.Name)
		buf = append(buf, ':', ' ')
		at := len(buf)
		buf = appendFolded(buf, message.DecodeHeaderValue(f.Value()))
		t.fields = append(t.fields, textField{name: f.Name, line: bytes.Clone(buf), valueAt: at})
	}
	return t
}

// Size is about the memory the header text takes.
func (t *HeaderText) Size() int {
	n := 24
	for _, f := range t.fields {
		n += 56 + len(f.name) + len(f.line)
	}
	return n
}

// BodyText is a message body prepared for BODY and the body half of TEXT:
// the segments searchPart reads (decoded text parts, the header fields of
// encapsulated messages), each searched on its own.
type BodyText struct {
	segs [][]byte
}

// Size is about the memory the body text takes.
func (t *BodyText) Size() int {
	n := 24
	for _, s := range t.segs {
		n += 24 + len(s)
	}
	return n
}

// ReadBodyText reads and prepares a message's body for search, as BODY
// reads it (see searchPart). It gives up with ErrTextTooLarge when the
// text passes max bytes (0: no limit).
func ReadBodyText(ctx context.Context, src imap.MessageSource, sum *message.Summary, max int) (*BodyText, error) {
	bufs := textBufs.Get().(*textBuffers)
	defer textBufs.Put(bufs)
	b := &textBuilder{max: max, buf: bufs.scan[:], scratch: bufs.fold[:0]}
	err := b.part(ctx, src, &sum.Root, 0)
	if cap(b.scratch) <= maxPooledFold {
		bufs.fold = b.scratch[:0]
	}
	if err != nil {
		return nil, err
	}
	return &BodyText{segs: b.segs}, nil
}

// textBuffers are the buffers ReadBodyText reads and folds through, kept
// between calls: a search that prepares the text of a whole mailbox
// would otherwise allocate them for every message.
type textBuffers struct {
	scan [scanBufSize]byte
	fold []byte
}

// maxPooledFold bounds the fold buffer kept for the next call.
const maxPooledFold = 256 << 10

var textBufs = sync.Pool{New: func() any { return new(textBuffers) }}

// ErrTextTooLarge: ReadBodyText met more text than it was allowed to keep.
var ErrTextTooLarge = fmt.Errorf("message text too large to prepare")

type textBuilder struct {
	segs    [][]byte
	total   int
	max     int
	buf     []byte
	scratch []byte // a part's folded text, copied out at its end
}

func (b *textBuilder) add(seg []byte) error {
	b.total += len(seg)
	if b.max > 0 && b.total > b.max {
		return ErrTextTooLarge
	}
	if len(seg) > 0 {
		b.segs = append(b.segs, seg)
	}
	return nil
}

// part mirrors searchPart.
func (b *textBuilder) part(ctx context.Context, src imap.MessageSource, part *message.Part, depth int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if depth > message.MaxDepth+1 {
		return nil
	}
	switch part.Type {
	case "multipart":
		if len(part.Parts) == 0 {
			return b.text(src, part)
		}
		for i := range part.Parts {
			if err := b.part(ctx, src, &part.Parts[i], depth+1); err != nil {
				return err
			}
		}
		return nil
	case "message":
		if len(part.Parts) == 0 {
			return b.text(src, part)
		}
		inner := &part.Parts[0]
		h, err := readHeader(src, inner.HeaderStart, inner.BodyStart)
		if err != nil {
			return err
		}
		for _, f := range NewHeaderText(h).fields {
			if err := b.add(f.line); err != nil {
				return err
			}
		}
		return b.part(ctx, src, inner, depth+1)
	case "text", "":
		return b.text(src, part)
	}
	return nil
}

// text decodes one text part, as searchText reads it, and folds it.
func (b *textBuilder) text(src imap.MessageSource, part *message.Part) error {
	end := min(part.End, src.Size())
	if end <= part.BodyStart {
		return nil
	}
	r := message.NewTextReader(io.NewSectionReader(src, part.BodyStart, end-part.BodyStart),
		part.Encoding, message.ParamValue(part.Params, "charset"))
	seg := b.scratch[:0]
	defer func() { b.scratch = seg[:0] }()
	keep := 0
	for {
		n, err := r.Read(b.buf[keep:])
		n += keep
		atEOF := err != nil
		used := n
		if !atEOF {
			// Leave an incomplete UTF-8 sequence for the next read.
			for k := n - 1; k >= 0 && k >= n-utf8.UTFMax; k-- {
				if utf8.RuneStart(b.buf[k]) {
					if !utf8.FullRune(b.buf[k:n]) {
						used = k
					}
					break
				}
			}
		}
		seg = appendFoldedBytes(seg, b.buf[:used])
		if b.max > 0 && b.total+len(seg) > b.max {
			return ErrTextTooLarge
		}
		keep = copy(b.buf, b.buf[used:n])
		if err == io.EOF {
			return b.add(bytes.Clone(seg))
		}
		if err != nil {
			return fmt.Errorf("search body: read text: %w", err)
		}
	}
}

// appendFolded appends s case-folded.
func appendFolded(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		dst = utf8.AppendRune(dst, fold(r))
		i += n
	}
	return dst
}

// appendFoldedBytes appends b case-folded.
func appendFoldedBytes(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		dst = utf8.AppendRune(dst, fold(r))
		i += n
	}
	return dst
}

// folded returns the pattern's folded runes as UTF-8, computed once.
func (p *pattern) foldedBytes() []byte {
	if p.enc == nil {
		for _, r := range p.runes {
			p.enc = utf8.AppendRune(p.enc, r)
		}
	}
	return p.enc
}

// matchHeaderText is matchHeader over a prepared header.
func matchHeaderText(t *HeaderText, field string, pat *pattern) bool {
	for _, f := range t.fields {
		if !strings.EqualFold(f.name, field) {
			continue
		}
		if pat.empty() || bytes.Contains(f.line[f.valueAt:], pat.foldedBytes()) {
			return true
		}
	}
	return false
}

// matchHeaderFields is matchFields over a prepared header.
func matchHeaderFields(t *HeaderText, pat *pattern) bool {
	if pat.empty() {
		return true
	}
	for _, f := range t.fields {
		if bytes.Contains(f.line, pat.foldedBytes()) {
			return true
		}
	}
	return false
}

// matchBodyText is matchBody over a prepared body.
func matchBodyText(t *BodyText, pat *pattern) bool {
	if pat.empty() {
		return true
	}
	for _, s := range t.segs {
		if bytes.Contains(s, pat.foldedBytes()) {
			return true
		}
	}
	return false
}
