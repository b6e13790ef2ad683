package message

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"strings"
)

// maxBinaryHeader bounds a part header EncodeBinaryParts holds while it
// decides whether the part is converted. A message with a longer header
// is passed through unchanged from there on.
const maxBinaryHeader = 64 << 10

// base64Line is the length of a base64 line EncodeBinaryParts writes
// (RFC 2045 §6.8 allows at most 76 characters).
const base64Line = 76

// EncodeBinaryParts returns a reader of the message r in which every
// leaf body part whose Content-Transfer-Encoding is "binary" is base64
// encoded instead: its Content-Transfer-Encoding field says "base64"
// and its content is the base64 of the part's bytes in lines of 76
// characters, ending with the last of them (the line ending before a
// delimiter stays the delimiter's). Everything else is copied unchanged.
//
// RFC 3516 §4.3 lets a server change the transfer encoding of a literal8
// APPEND as long as no data is lost; Dovecot does this. IMAP clients
// that do not use BINARY then get all of such a part in BODY[], where a
// NUL byte could not go (RFC 9051 §4.3), and BINARY[] still gives the
// original bytes. Parts are found as Parse finds them (so the Summary of
// the result describes the same parts); multiparts and message/rfc822
// parts are never converted. Memory stays bounded: a part header is held
// only until its end (at most maxBinaryHeader bytes), lines of any
// length are read in pieces. An error reading r is returned as is.
func EncodeBinaryParts(r io.Reader) io.Reader {
	e := &binEncoder{br: bufio.NewReaderSize(r, readBufSize), first: true, nparts: 1}
	e.stack = append(make([]binFrame, 0, 8), binFrame{state: binHeader})
	return e
}

type binState uint8

const (
	binHeader  binState = iota // the part's header
	binBody                    // a leaf body
	binRaw                     // a multipart's preamble or epilogue, a skipped part
	binMessage                 // a message/rfc822 part: its message is the next frame
)

// binFrame is one open part, as in Parse: the root, the multiparts and
// message/rfc822 parts around the current position, and the current part.
type binFrame struct {
	state    binState
	boundary []byte // "--" + boundary while the delimiters are recognised
	digest   bool   // multipart/digest: children default to message/rfc822
	rfc822   bool   // the default Content-Type is message/rfc822
}

type binEncoder struct {
	br    *bufio.Reader
	out   []byte
	off   int
	err   error // the reader's error, io.EOF at the end; returned once out is empty
	first bool  // the next piece starts a line

	stack  []binFrame
	nparts int
	pass   bool // everything from here on passes unchanged

	// A delimiter line is being copied; when it ends, frame delimFrame
	// gets a new child (unless delimClose).
	inDelim    bool
	delimFrame int
	delimClose bool

	hdr []byte // the header of the top frame, held until its end

	// The leaf body being converted.
	conv bool
	eol  string // the line ending of base64 lines: the header's
	held []byte // a line ending (or a CR) that may precede a delimiter
	grp  [3]byte
	ngrp int
	col  int // base64 characters on the current line
	enc  [base64Line]byte
}

func (e *binEncoder) Read(p []byte) (int, error) {
	for e.off == len(e.out) {
		if e.err != nil {
			return 0, e.err
		}
		e.out, e.off = e.out[:0], 0
		frag, err := e.br.ReadSlice('\n')
		if len(frag) > 0 {
			complete := frag[len(frag)-1] == '\n'
			e.piece(frag, e.first, complete)
			e.first = complete
		}
		switch {
		case err == nil || err == bufio.ErrBufferFull:
		case err == io.EOF:
			e.finish()
			e.err = io.EOF
		default:
			e.err = err
		}
	}
	n := copy(p, e.out[e.off:])
	e.off += n
	return n, nil
}

func (e *binEncoder) emit(b []byte)       { e.out = append(e.out, b...) }
func (e *binEncoder) emitString(s string) { e.out = append(e.out, s...) }
func (e *binEncoder) top() *binFrame      { return &e.stack[len(e.stack)-1] }
func (e *binEncoder) resetHeader()        { e.hdr = e.hdr[:0] }

// piece handles one piece of a line, as Parse's piece does.
func (e *binEncoder) piece(frag []byte, first, complete bool) {
	if e.pass {
		e.emit(frag)
		return
	}
	if first {
		if k, closing, ok := e.matchBoundary(frag); ok {
			for len(e.stack)-1 > k {
				e.closeTop(false)
			}
			if closing {
				// RFC 2046 §5.1.1: the epilogue is ignored.
				e.stack[k].state, e.stack[k].boundary = binRaw, nil
			}
			e.inDelim, e.delimFrame, e.delimClose = true, k, closing
		}
	}
	if e.inDelim {
		e.emit(frag)
		if complete {
			e.inDelim = false
			if !e.delimClose {
				e.newChild(e.delimFrame)
			}
		}
		return
	}
	switch f := e.top(); f.state {
	case binHeader:
		e.headerPiece(f, frag, first, complete)
	case binBody:
		if e.conv {
			e.bodyPiece(frag, first, complete)
		} else {
			e.emit(frag)
		}
	default:
		e.emit(frag)
	}
}

// matchBoundary is Parse's: a delimiter of an open multipart, matched by
// prefix, the longest boundary winning.
func (e *binEncoder) matchBoundary(line []byte) (k int, closing, ok bool) {
	if len(line) < 3 || line[0] != '-' || line[1] != '-' {
		return 0, false, false
	}
	best, bestLen := -1, 0
	for i := len(e.stack) - 1; i >= 0; i-- {
		b := e.stack[i].boundary
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

// newChild starts the next body part of multipart frame k.
func (e *binEncoder) newChild(k int) {
	f := &e.stack[k]
	if e.nparts >= MaxParts {
		f.state = binRaw
		return
	}
	e.nparts++
	f.state = binRaw
	e.stack = append(e.stack, binFrame{state: binHeader, rfc822: f.digest})
	e.resetHeader()
}

// closeTop ends the innermost part. At a delimiter (atEOF false) a held
// line ending belongs to the delimiter; at the end of the message it is
// content.
func (e *binEncoder) closeTop(atEOF bool) {
	f := e.top()
	switch {
	case f.state == binHeader:
		e.emit(e.hdr) // a header without its blank line: nothing to convert
		e.resetHeader()
	case f.state == binBody && e.conv:
		if atEOF {
			e.encode(e.held)
			e.held = e.held[:0]
		}
		e.endBase64()
		e.emit(e.held)
		e.held = e.held[:0]
		e.conv = false
	}
	e.stack = e.stack[:len(e.stack)-1]
}

// finish closes every open part at the end of the message.
func (e *binEncoder) finish() {
	if e.pass {
		return
	}
	e.inDelim = false
	for len(e.stack) > 0 {
		e.closeTop(true)
	}
}

// headerPiece holds a piece of the top frame's header; its blank line
// ends it.
func (e *binEncoder) headerPiece(f *binFrame, frag []byte, first, complete bool) {
	e.hdr = append(e.hdr, frag...)
	if len(e.hdr) > maxBinaryHeader {
		e.emit(e.hdr)
		e.resetHeader()
		e.pass = true
		return
	}
	if first && complete && isBlankLine(frag) {
		e.endHeader(f)
	}
}

// endHeader decides, from the header held, how the part's body is read
// (as Parse's endHeader does) and writes the header, with its
// Content-Transfer-Encoding changed when the body is converted.
func (e *binEncoder) endHeader(f *binFrame) {
	ct, cte, cteStart, cteEnd := headerFields(e.hdr)
	typ, sub, params, ok := parseContentType(ct)
	if !ok {
		typ, sub = "text", "plain"
		if f.rfc822 {
			typ, sub = "message", "rfc822"
		}
	}
	tok, _ := readToken(cte, skipCFWS(cte, 0))
	enc := strings.ToLower(tok)
	depth := len(e.stack)
	switch {
	case typ == "multipart":
		b := ParamValue(params, "boundary")
		if b != "" && len(b) <= maxBoundary && depth < MaxDepth {
			f.boundary = []byte("--" + b)
			f.digest = sub == "digest"
			f.state = binRaw
			e.emit(e.hdr)
			e.resetHeader()
			return
		}
	case typ == "message" && (sub == "rfc822" || sub == "global"):
		if parseCTE(enc) == cteIdentity && depth < MaxDepth && e.nparts < MaxParts {
			e.nparts++
			f.state = binMessage
			e.emit(e.hdr)
			e.resetHeader()
			e.stack = append(e.stack, binFrame{state: binHeader})
			return
		}
	}
	f.state = binBody
	if enc != "binary" || typ == "multipart" || cteStart < 0 {
		e.emit(e.hdr)
		e.resetHeader()
		return
	}
	// The field keeps its place and the line ending of its last line.
	field := e.hdr[cteStart:cteEnd]
	e.eol = "\n"
	if bytes.HasSuffix(field, []byte("\r\n")) {
		e.eol = "\r\n"
	}
	e.emit(e.hdr[:cteStart])
	e.emitString("Content-Transfer-Encoding: base64" + e.eol)
	e.emit(e.hdr[cteEnd:])
	e.resetHeader()
	e.conv, e.held, e.ngrp, e.col = true, e.held[:0], 0, 0
}

// headerFields finds in a header (ending with its blank line) the
// unfolded values of the first Content-Type and Content-Transfer-Encoding
// fields, and where the latter's lines are (-1 when it is absent). A
// field is what Parse takes for one: a line with a name before a colon,
// and the lines that begin with white space after it.
func headerFields(hdr []byte) (ct, cte string, cteStart, cteEnd int) {
	cteStart, cteEnd = -1, -1
	cur := 0 // 1: in Content-Type, 2: in Content-Transfer-Encoding
	var ctb, cteb []byte
	haveCT, haveCTE := false, false
	for pos := 0; pos < len(hdr); {
		end := bytes.IndexByte(hdr[pos:], '\n')
		if end < 0 {
			end = len(hdr)
		} else {
			end += pos + 1
		}
		line := hdr[pos:end]
		content := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		switch {
		case len(content) == 0 && end == len(hdr):
			// The blank line.
		case line[0] == ' ' || line[0] == '\t':
			switch cur {
			case 1:
				ctb = append(ctb, content...)
			case 2:
				cteb = append(cteb, content...)
				cteEnd = end
			}
		default:
			cur = 0
			colon := bytes.IndexByte(content, ':')
			if colon <= 0 {
				break
			}
			name := bytes.TrimRight(content[:colon], " \t")
			value := bytes.TrimLeft(content[colon+1:], " \t")
			switch {
			case !haveCT && len(name) == len("content-type") && equalFoldASCII("content-type", name):
				haveCT, cur = true, 1
				ctb = append(ctb, value...)
			case !haveCTE && len(name) == len("content-transfer-encoding") && equalFoldASCII("content-transfer-encoding", name):
				haveCTE, cur = true, 2
				cteb = append(cteb, value...)
				cteStart, cteEnd = pos, end
			}
		}
		pos = end
	}
	return strings.TrimSpace(string(ctb)), strings.TrimSpace(string(cteb)), cteStart, cteEnd
}

// bodyPiece converts a piece of a line of a converted body. A line's
// ending is held back until the next line shows that it is not the one
// before a delimiter (RFC 2046 §5.1.1: that one belongs to the
// delimiter).
func (e *binEncoder) bodyPiece(frag []byte, first, complete bool) {
	if len(e.held) > 0 {
		if !first && e.held[0] == '\r' && len(e.held) == 1 && complete && len(frag) == 1 {
			// The CR at the end of the last piece and this LF end the
			// line.
			e.held = append(e.held, '\n')
			return
		}
		e.encode(e.held)
		e.held = e.held[:0]
	}
	switch {
	case complete:
		n := len(frag) - 1
		if n > 0 && frag[n-1] == '\r' {
			n--
		}
		e.encode(frag[:n])
		e.held = append(e.held, frag[n:]...)
	case frag[len(frag)-1] == '\r':
		e.encode(frag[:len(frag)-1])
		e.held = append(e.held, '\r')
	default:
		e.encode(frag)
	}
}

// encode adds content bytes to the base64 output.
func (e *binEncoder) encode(b []byte) {
	for len(b) > 0 {
		if e.ngrp > 0 || len(b) < 3 {
			k := copy(e.grp[e.ngrp:], b)
			e.ngrp += k
			b = b[k:]
			if e.ngrp == 3 {
				e.writeGroups(e.grp[:])
				e.ngrp = 0
			}
			continue
		}
		n := len(b) / 3 * 3
		e.writeGroups(b[:n])
		b = b[n:]
	}
}

// writeGroups writes whole 3-byte groups, breaking lines at base64Line
// characters before the next group (so no line ending follows the last).
func (e *binEncoder) writeGroups(b []byte) {
	for len(b) > 0 {
		if e.col == base64Line {
			e.emitString(e.eol)
			e.col = 0
		}
		k := min(len(b), (base64Line-e.col)/4*3)
		base64.StdEncoding.Encode(e.enc[:k/3*4], b[:k])
		e.emit(e.enc[:k/3*4])
		e.col += k / 3 * 4
		b = b[k:]
	}
}

// endBase64 writes the last, padded group of a converted body.
func (e *binEncoder) endBase64() {
	if e.ngrp == 0 {
		return
	}
	if e.col == base64Line {
		e.emitString(e.eol)
		e.col = 0
	}
	base64.StdEncoding.Encode(e.enc[:4], e.grp[:e.ngrp])
	e.emit(e.enc[:4])
	e.col += 4
	e.ngrp = 0
}
