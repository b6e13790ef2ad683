package message

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Limits of Parse. Beyond them the message is still described, less
// finely; nothing fails.
const (
	// MaxDepth is the deepest nesting of multiparts and encapsulated
	// messages that Parse describes; a multipart or message/rfc822 part
	// deeper than that is an opaque leaf (a multipart without Parts).
	MaxDepth = 32
	// MaxParts is the most parts Parse describes in one message; body
	// parts after that are skipped like a preamble.
	MaxParts = 10000
	// maxFieldLen bounds what is kept of one header field value.
	maxFieldLen = 64 << 10
	// maxBoundary bounds a multipart boundary parameter (RFC 2046 §5.1.1
	// allows 70 characters; longer ones are accepted up to this length).
	maxBoundary = 1000
	// readBufSize is the read buffer; longer lines are handled in pieces.
	readBufSize = 4 << 10
)

// Header fields Parse collects. The message fields are collected only in
// message headers (the root and encapsulated messages).
const (
	fNone = iota
	fContentType
	fContentTransferEncoding
	fContentID
	fContentDescription
	fContentMD5
	fContentDisposition
	fContentLanguage
	fContentLocation
	fDate // first message field
	fSubject
	fFrom
	fSender
	fReplyTo
	fTo
	fCc
	fBcc
	fInReplyTo
	fMessageID
	fReferences
	nFields
)

// fieldNames are the lower-case names of the collected fields. Read-only.
var fieldNames = [nFields]string{
	fContentType:             "content-type",
	fContentTransferEncoding: "content-transfer-encoding",
	fContentID:               "content-id",
	fContentDescription:      "content-description",
	fContentMD5:              "content-md5",
	fContentDisposition:      "content-disposition",
	fContentLanguage:         "content-language",
	fContentLocation:         "content-location",
	fDate:                    "date",
	fSubject:                 "subject",
	fFrom:                    "from",
	fSender:                  "sender",
	fReplyTo:                 "reply-to",
	fTo:                      "to",
	fCc:                      "cc",
	fBcc:                     "bcc",
	fInReplyTo:               "in-reply-to",
	fMessageID:               "message-id",
	fReferences:              "references",
}

// lookupField returns the id of a collected field name, or fNone.
func lookupField(name []byte, msg bool) int {
	last := nFields
	if !msg {
		last = fDate
	}
	for id := fContentType; id < last; id++ {
		if n := fieldNames[id]; len(n) == len(name) && equalFoldASCII(n, name) {
			return id
		}
	}
	return fNone
}

// equalFoldASCII compares a lower-case ASCII string with b, ignoring the
// case of b.
func equalFoldASCII(lower string, b []byte) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hdrCollector keeps the values of the collected fields of the header
// being read: the first occurrence of each, unfolded, at most maxFieldLen
// bytes. Values are stored one after another in buf.
type hdrCollector struct {
	cur        int // field being collected, or fNone
	buf        []byte
	start, end [nFields]int
	has        [nFields]bool
}

func (h *hdrCollector) reset() {
	h.cur = fNone
	h.buf = h.buf[:0]
	h.has = [nFields]bool{}
}

func (h *hdrCollector) begin(id int) {
	h.cur = id
	h.has[id] = true
	h.start[id] = len(h.buf)
	h.end[id] = len(h.buf)
}

// add appends a piece of the current field's value; complete means b ends
// the line (its line ending is dropped: RFC 5322 §2.2.3 unfolding).
func (h *hdrCollector) add(b []byte, complete bool) {
	id := h.cur
	if complete {
		b = b[:len(b)-1]
		if len(b) > 0 && b[len(b)-1] == '\r' {
			b = b[:len(b)-1]
		} else if len(b) == 0 && h.end[id] > h.start[id] && h.buf[h.end[id]-1] == '\r' {
			// The CR came at the end of the previous piece.
			h.end[id]--
			h.buf = h.buf[:h.end[id]]
		}
	}
	room := maxFieldLen - (h.end[id] - h.start[id])
	if room <= 0 {
		return
	}
	if len(b) > room {
		b = b[:room]
	}
	h.buf = append(h.buf, b...)
	h.end[id] = len(h.buf)
}

// value returns a collected value with surrounding whitespace removed, or
// "" if the field was absent.
func (h *hdrCollector) value(id int) string {
	if !h.has[id] {
		return ""
	}
	return string(bytes.TrimSpace(h.buf[h.start[id]:h.end[id]]))
}

// frameState is what the parser is reading for a frame.
type frameState uint8

const (
	stHeader   frameState = iota // the part's header
	stBody                       // a leaf body
	stPreamble                   // a multipart before its first delimiter
	stSkip                       // a multipart part beyond MaxParts
	stEpilogue                   // a multipart after its close delimiter
	stMessage                    // a message/rfc822 part (its message is the next frame)
)

// frame is one open part: the root, every multipart and message/rfc822
// part enclosing the current position, and the current part itself.
type frame struct {
	part  *Part // stable: its parent's Parts slice grows only after it closes
	state frameState

	boundary  []byte // "--" + boundary while the delimiters are recognised
	digest    bool   // multipart/digest: children default to message/rfc822
	msg       bool   // the header is a message header: collect the envelope
	inMessage bool   // inside an encapsulated message: no preview from here
	rfc822Def bool   // default Content-Type is message/rfc822 (digest child)

	startLines int64 // lines started before BodyStart

	// Leaf body decoding.
	dec      transferDecoder
	decode   bool // run dec (base64 or quoted-printable)
	decoded  int64
	pv       *partPreview
	pvHTML   bool
	pendTerm [2]byte // line ending held back: it may precede a boundary
	npend    int
	heldCR   bool // a CR ended the last piece of an unfinished line
}

// parseBufs holds Parse's read buffers: every delivery and APPEND parses
// its message once.
var parseBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}

// parser is the state of one Parse call.
type parser struct {
	br  *bufio.Reader
	off int64 // offset of the next byte to read

	nlines        int64 // lines started so far
	lineStart     int64 // start of the current line
	prevLineStart int64 // start of the previous line, -1 if none
	prevTermStart int64 // where the previous line's ending starts, -1 if none
	lastCR        bool  // the last piece read ended with CR

	// A delimiter line is being read: when it ends, frame boundFrame gets a
	// new child (unless boundClose).
	inBoundary bool
	boundFrame int
	boundClose bool

	stack  []frame
	nparts int
	sum    *Summary
	hdr    hdrCollector

	lineByLine bool // never bulk (tests compare the two ways)

	plain, html         previewBuilder
	plainDone, htmlDone bool
	scratch             []byte
}

// Parse reads a message (RFC 5322, with MIME: RFC 2045, 2046) in one
// streaming pass and returns its Summary. Memory use is bounded whatever
// the message: lines of any length are read in pieces, at most
// maxFieldLen bytes of each interesting header field and a few KB for the
// preview are kept, and nesting and the number of parts are capped
// (MaxDepth, MaxParts).
//
// Malformed messages never fail: a missing final boundary ends the
// multipart at the end of its parent; a header without a separator line
// runs to the end of its part; bare-LF line endings, NUL bytes, 8-bit
// header text and lines of any length are accepted; an unparseable
// Content-Type gives the default type. Delimiter lines are recognised by
// prefix, the longest active boundary winning (so nested multiparts whose
// boundaries share a prefix work), and are recognised in headers too.
// Preambles and epilogues are not parts. Only an error reading r is
// returned.
func Parse(r io.Reader) (*Summary, error) { return parse(r, false) }

// parse is Parse; lineByLine turns bulk off.
func parse(r io.Reader, lineByLine bool) (*Summary, error) {
	br := parseBufs.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() {
		br.Reset(nil)
		parseBufs.Put(br)
	}()
	p := &parser{
		br:            br,
		sum:           &Summary{},
		lineStart:     -1,
		prevLineStart: -1,
		prevTermStart: -1,
		nparts:        1,
		lineByLine:    lineByLine,
	}
	p.stack = append(make([]frame, 0, 8), frame{part: &p.sum.Root, msg: true})
	p.hdr.reset()
	first := true
	for {
		if first && !p.inBoundary && !p.lineByLine {
			p.bulk()
		}
		frag, err := p.br.ReadSlice('\n')
		if len(frag) > 0 {
			complete := frag[len(frag)-1] == '\n'
			p.piece(frag, first, complete)
			first = complete
		}
		if err == nil || err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			break
		}
		return nil, fmt.Errorf("read message: %w", err)
	}
	p.finish()
	return p.sum, nil
}

// bulk takes, at the start of a line, the buffered complete lines that
// the per-line path would only count: lines of a leaf body that is not
// decoded (or only counted: base64 without a preview) and of a multipart's
// preamble, epilogue or skipped parts, up to the next line that begins
// with "--" (a possible delimiter, left to the per-line path). It updates
// the parser's state exactly as piece would for each of those lines, but
// with a few scans of the whole run instead of several calls per line:
// most of a large message is such lines (base64 attachments).
func (p *parser) bulk() {
	f := &p.stack[len(p.stack)-1]
	switch f.state {
	case stBody:
		if f.pv != nil || f.decode && f.dec.kind != cteBase64 {
			return
		}
	case stPreamble, stEpilogue, stSkip:
	default:
		return
	}
	n := p.br.Buffered()
	if n < 2 {
		return
	}
	buf, _ := p.br.Peek(n)
	if buf[0] == '-' && buf[1] == '-' {
		return
	}
	end := bytes.Index(buf, delimStart) // the LF before a line that begins with "--"
	if end < 0 {
		end = bytes.LastIndexByte(buf, '\n')
		if end < 0 {
			return
		}
	}
	run := buf[:end+1] // whole lines, the last ending at run[end]
	lines := int64(bytes.Count(run, newline))
	last := bytes.LastIndexByte(run[:end], '\n') + 1 // start of the last line
	if lines == 1 {
		p.prevLineStart = p.lineStart
	} else {
		p.prevLineStart = p.off + int64(bytes.LastIndexByte(run[:last-1], '\n')+1)
	}
	p.lineStart = p.off + int64(last)
	p.nlines += lines
	crlf := end-last >= 1 && run[end-1] == '\r' // the last line ends in CRLF
	if f.state == stBody && f.decode {
		// Line endings are not base64 characters: counting the run at
		// once counts what the per-line path feeds. The last line's
		// ending is held back as bodyPiece holds it.
		f.decoded += f.dec.base64Size(run)
		if crlf {
			f.pendTerm, f.npend = [2]byte{'\r', '\n'}, 2
		} else {
			f.pendTerm, f.npend = [2]byte{'\n'}, 1
		}
	}
	p.off += int64(len(run))
	p.prevTermStart = p.off - 1
	if crlf {
		p.prevTermStart--
	}
	p.lastCR = false
	_, _ = p.br.Discard(len(run))
}

var (
	delimStart = []byte("\n--")
	newline    = []byte("\n")
)

// piece handles one piece of a line: the whole line, or (for lines longer
// than the buffer) a part of it. first means it starts the line, complete
// that it ends it.
func (p *parser) piece(frag []byte, first, complete bool) {
	start := p.off
	p.off += int64(len(frag))
	if first {
		p.prevLineStart = p.lineStart
		p.lineStart = start
		p.nlines++
		if k, closing, ok := p.matchBoundary(frag); ok {
			p.boundary(k, closing)
		}
	}
	if p.inBoundary {
		if complete {
			p.inBoundary = false
			if !p.boundClose {
				p.newChild(p.boundFrame)
			}
		}
	} else {
		f := &p.stack[len(p.stack)-1]
		switch f.state {
		case stHeader:
			p.headerPiece(f, frag, first, complete)
		case stBody:
			p.bodyPiece(f, frag, first, complete)
		}
	}
	if complete {
		t := p.off - 1
		if len(frag) >= 2 && frag[len(frag)-2] == '\r' || len(frag) == 1 && p.lastCR {
			t--
		}
		p.prevTermStart = t
	}
	p.lastCR = frag[len(frag)-1] == '\r'
}

// matchBoundary reports whether line (the first piece of a line) is a
// delimiter of an open multipart (RFC 2046 §5.1.1), which frame's, and
// whether it is the close delimiter. Delimiters match by prefix: anything
// after the boundary other than "--" is ignored, as transport padding is.
func (p *parser) matchBoundary(line []byte) (k int, closing, ok bool) {
	if len(line) < 3 || line[0] != '-' || line[1] != '-' {
		return 0, false, false
	}
	best, bestLen := -1, 0
	for i := len(p.stack) - 1; i >= 0; i-- {
		b := p.stack[i].boundary
		if len(b) > bestLen && bytes.HasPrefix(line, b) {
			best, bestLen = i, len(b)
		}
	}
	if best < 0 {
		return 0, false, false
	}
	rest := line[bestLen:]
	return best, len(rest) >= 2 && rest[0] == '-' && rest[1] == '-', true
}

// boundary handles a delimiter line of frame k: every part inside it ends
// before the line ending that precedes the delimiter (RFC 2046 §5.1.1:
// that CRLF belongs to the delimiter).
func (p *parser) boundary(k int, closing bool) {
	end := p.prevTermStart
	for len(p.stack)-1 > k {
		// A part can end no earlier than the parts it contains: a child
		// whose header separator was taken by the delimiter ends at its
		// BodyStart, after end.
		end = p.closeTop(end, p.linesBefore(end), false)
	}
	f := &p.stack[k]
	if closing {
		f.state = stEpilogue
		f.boundary = nil // RFC 2046 §5.1.1: the epilogue is ignored
	}
	p.inBoundary, p.boundFrame, p.boundClose = true, k, closing
}

// linesBefore returns the number of lines that start before end, for an
// end at or after the previous line's ending, while a delimiter line is
// being read.
func (p *parser) linesBefore(end int64) int64 {
	n := p.nlines - 1 // lines started before the delimiter line
	if p.prevLineStart >= 0 && p.prevLineStart >= end {
		n-- // the previous line was empty: it starts at end
	}
	return n
}

// newChild starts the next body part of multipart frame k after a
// delimiter line.
func (p *parser) newChild(k int) {
	f := &p.stack[k]
	if p.nparts >= MaxParts {
		f.state = stSkip
		return
	}
	p.nparts++
	f.state = stPreamble // not read while the child is open
	f.part.Parts = append(f.part.Parts, Part{HeaderStart: p.off})
	child := &f.part.Parts[len(f.part.Parts)-1]
	p.stack = append(p.stack, frame{
		part:      child,
		inMessage: f.inMessage,
		rfc822Def: f.digest,
	})
	p.hdr.reset()
}

// headerPiece handles a piece of a header line.
func (p *parser) headerPiece(f *frame, frag []byte, first, complete bool) {
	h := &p.hdr
	if !first {
		if h.cur != fNone {
			h.add(frag, complete)
		}
		return
	}
	if complete && isBlankLine(frag) {
		p.endHeader(f, p.off, true)
		return
	}
	if frag[0] == ' ' || frag[0] == '\t' {
		// RFC 5322 §2.2.3: continuation of the current field.
		if h.cur != fNone {
			h.add(frag, complete)
		}
		return
	}
	h.cur = fNone
	colon := bytes.IndexByte(frag, ':')
	if colon <= 0 {
		return // not a field (an mbox "From " line, garbage): ignored
	}
	name := bytes.TrimRight(frag[:colon], " \t")
	if id := lookupField(name, f.msg); id != fNone && !h.has[id] {
		h.begin(id)
		h.add(bytes.TrimLeft(frag[colon+1:], " \t"), complete)
	}
}

// endHeader ends the header of frame f at bodyStart and decides, from the
// header, how the body is read. hasBody is false when the part ended
// without a separator line.
func (p *parser) endHeader(f *frame, bodyStart int64, hasBody bool) {
	part := f.part
	part.BodyStart = bodyStart
	f.startLines = p.nlines
	p.describe(f)
	p.hdr.reset()
	if !hasBody {
		return
	}
	depth := len(p.stack)
	switch {
	case part.Type == "multipart":
		b := ParamValue(part.Params, "boundary")
		if b != "" && len(b) <= maxBoundary && depth < MaxDepth {
			f.boundary = []byte("--" + b)
			f.digest = part.Subtype == "digest" // RFC 2046 §5.1.5
			f.state = stPreamble
			return
		}
	case part.Type == "message" && (part.Subtype == "rfc822" || part.Subtype == "global"):
		// RFC 2046 §5.2.1: only 7bit, 8bit or binary; an encoded message
		// cannot be described by offsets into the stored one.
		if parseCTE(part.Encoding) == cteIdentity && depth < MaxDepth && p.nparts < MaxParts {
			p.nparts++
			f.state = stMessage
			part.Parts = []Part{{HeaderStart: bodyStart}}
			p.stack = append(p.stack, frame{part: &part.Parts[0], msg: true, inMessage: true})
			return
		}
	}
	p.startLeaf(f)
}

// describe fills in the part's fields from its collected header.
func (p *parser) describe(f *frame) {
	h := &p.hdr
	part := f.part
	ok := false
	if h.has[fContentType] {
		part.Type, part.Subtype, part.Params, ok = parseContentType(h.value(fContentType))
	}
	if !ok {
		// RFC 2045 §5.2, RFC 2046 §5.1.5.
		if f.rfc822Def {
			part.Type, part.Subtype, part.Params = "message", "rfc822", nil
		} else {
			part.Type, part.Subtype = "text", "plain"
			part.Params = []Param{{Name: "charset", Value: "us-ascii"}}
		}
	}
	if v := h.value(fContentTransferEncoding); v != "" {
		tok, _ := readToken(v, skipCFWS(v, 0))
		part.Encoding = strings.ToLower(tok)
	}
	part.ID = h.value(fContentID)
	part.Description = h.value(fContentDescription)
	part.MD5 = h.value(fContentMD5)
	part.Location = h.value(fContentLocation)
	if v := h.value(fContentDisposition); v != "" {
		part.Disposition, part.DispositionParams = parseDisposition(v)
	}
	if v := h.value(fContentLanguage); v != "" {
		part.Language = parseLanguage(v)
	}
	if !f.msg {
		return
	}
	env := &Envelope{
		Date:      h.value(fDate),
		Subject:   h.value(fSubject),
		From:      ParseAddressList(h.value(fFrom)),
		Sender:    ParseAddressList(h.value(fSender)),
		ReplyTo:   ParseAddressList(h.value(fReplyTo)),
		To:        ParseAddressList(h.value(fTo)),
		Cc:        ParseAddressList(h.value(fCc)),
		Bcc:       ParseAddressList(h.value(fBcc)),
		InReplyTo: h.value(fInReplyTo),
		MessageID: h.value(fMessageID),
	}
	part.Envelope = env
	n := len(p.stack)
	if n == 1 {
		if t, ok := ParseDate(env.Date); ok {
			p.sum.Date = t
		}
		p.sum.References = ParseMessageIDs(h.value(fReferences))
	} else if n >= 3 {
		// The enclosing message/rfc822 part shares the envelope of the
		// message it contains (the root keeps its own).
		p.stack[n-2].part.Envelope = env
	}
}

// parseLanguage splits a Content-Language value (RFC 3282 §2).
func parseLanguage(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		i := skipCFWS(s, 0)
		tok, _ := readToken(s, i)
		if tok != "" && len(out) < maxParams {
			out = append(out, tok)
		}
	}
	return out
}

// startLeaf prepares frame f to read a leaf body: transfer decoding when
// BINARY.SIZE needs it, and the preview for the first text parts.
func (p *parser) startLeaf(f *frame) {
	part := f.part
	f.state = stBody
	k := parseCTE(part.Encoding)
	f.dec = transferDecoder{kind: k}
	// A multipart is never transfer-encoded (RFC 2046 §5.1.1), even when
	// it is opaque because malformed.
	f.decode = (k == cteBase64 || k == cteQP) && part.Type != "multipart"
	if f.inMessage || part.Type != "text" || part.Disposition == "attachment" {
		return
	}
	switch {
	case part.Subtype == "plain" && !p.plainDone:
		f.pv = newPartPreview(ParamValue(part.Params, "charset"), false, &p.plain)
	case part.Subtype == "html" && !p.htmlDone && !p.plainDone:
		f.pv = newPartPreview(ParamValue(part.Params, "charset"), true, &p.html)
		f.pvHTML = true
	}
}

// bodyPiece handles a piece of a leaf body line. The line ending is held
// back until the next line shows it is not the CRLF before a delimiter.
func (p *parser) bodyPiece(f *frame, frag []byte, first, complete bool) {
	if !f.decode && f.pv == nil {
		return // nothing to compute: the decoded size is the raw size
	}
	if first && f.npend > 0 {
		p.feed(f, f.pendTerm[:f.npend])
		f.npend = 0
	}
	if f.heldCR {
		f.heldCR = false
		if complete && frag[0] == '\n' {
			f.pendTerm, f.npend = [2]byte{'\r', '\n'}, 2
			return
		}
		p.feed(f, []byte{'\r'})
	}
	if !complete {
		if frag[len(frag)-1] == '\r' {
			frag = frag[:len(frag)-1]
			f.heldCR = true
		}
		p.feed(f, frag)
		return
	}
	n := len(frag) - 1
	if n > 0 && frag[n-1] == '\r' {
		n--
		f.pendTerm, f.npend = [2]byte{'\r', '\n'}, 2
	} else {
		f.pendTerm, f.npend = [2]byte{'\n'}, 1
	}
	p.feed(f, frag[:n])
}

// feed passes body bytes of leaf f through its decoder and preview.
func (p *parser) feed(f *frame, b []byte) {
	if len(b) == 0 {
		return
	}
	if f.decode && f.pv == nil && f.dec.kind == cteBase64 {
		// Only the decoded size is wanted (BINARY.SIZE): count it.
		f.decoded += f.dec.base64Size(b)
		return
	}
	if f.decode {
		p.scratch = f.dec.decode(p.scratch[:0], b)
		f.decoded += int64(len(p.scratch))
		b = p.scratch
	}
	if f.pv != nil {
		f.pv.write(b)
		if f.pv.b.full {
			p.endPreview(f)
		}
	}
}

// endPreview ends the preview of leaf f.
func (p *parser) endPreview(f *frame) {
	f.pv.finish()
	if f.pv.b.runes > 0 {
		if f.pvHTML {
			p.htmlDone = true
		} else {
			p.plainDone = true
		}
	}
	f.pv = nil
}

// closeTop ends the innermost open part at end, or later if its header
// or body starts later, and returns where it ended. linesBefore is the
// number of lines that start before end; atEOF says the message ended
// (rather than a delimiter).
func (p *parser) closeTop(end, linesBefore int64, atEOF bool) int64 {
	f := &p.stack[len(p.stack)-1]
	part := f.part
	if end < part.HeaderStart {
		end = part.HeaderStart
	}
	if f.state == stHeader {
		p.endHeader(f, end, false)
	}
	if end < part.BodyStart {
		end = part.BodyStart
	}
	part.End = end
	if end > part.BodyStart {
		part.Lines = max(0, linesBefore-f.startLines)
	}
	part.DecodedSize = part.End - part.BodyStart
	if f.state == stBody {
		if atEOF {
			if f.npend > 0 {
				p.feed(f, f.pendTerm[:f.npend])
			}
			if f.heldCR {
				p.feed(f, []byte{'\r'})
			}
		}
		if f.decode {
			p.scratch = f.dec.flush(p.scratch[:0])
			f.decoded += int64(len(p.scratch))
			if f.pv != nil {
				f.pv.write(p.scratch)
			}
			part.DecodedSize = f.decoded
		}
		if f.pv != nil {
			p.endPreview(f)
		}
	}
	p.stack = p.stack[:len(p.stack)-1]
	return end
}

// finish closes every open part at the end of the message.
func (p *parser) finish() {
	for len(p.stack) > 0 {
		p.closeTop(p.off, p.nlines, true)
	}
	switch {
	case p.plain.runes > 0:
		p.sum.Preview = string(p.plain.out)
	case p.html.runes > 0:
		p.sum.Preview = string(p.html.out)
	}
}
