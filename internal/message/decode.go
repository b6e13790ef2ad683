package message

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/text/transform"
)

// ErrUnknownEncoding is returned by NewBinaryReader for a
// Content-Transfer-Encoding it cannot decode; IMAP answers such a BINARY
// fetch with NO [UNKNOWN-CTE] (RFC 3516 §4.3).
var ErrUnknownEncoding = errors.New("unknown content-transfer-encoding")

// cte is a Content-Transfer-Encoding, as far as decoding goes.
type cte uint8

const (
	cteIdentity cte = iota // 7bit, 8bit, binary or absent
	cteBase64
	cteQP
	cteUnknown
)

// parseCTE classifies a Content-Transfer-Encoding value (RFC 2045 §6.1).
func parseCTE(enc string) cte {
	enc = strings.TrimSpace(enc)
	switch {
	case enc == "" || strings.EqualFold(enc, "7bit") || strings.EqualFold(enc, "8bit") ||
		strings.EqualFold(enc, "binary"):
		return cteIdentity
	case strings.EqualFold(enc, "base64"):
		return cteBase64
	case strings.EqualFold(enc, "quoted-printable"):
		return cteQP
	}
	return cteUnknown
}

// b64Pad and b64Skip mark '=' and bytes outside the base64 alphabet in
// b64Table.
const (
	b64Pad  = 0xfe
	b64Skip = 0xff
)

// b64Table maps a byte to its base64 value (RFC 2045 §6.8). Read-only.
var b64Table = func() (t [256]byte) {
	for i := range t {
		t[i] = b64Skip
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	t['='] = b64Pad
	return t
}()

// b64Valid is 1 for the bytes of the base64 alphabet, 0 for the others.
var b64Valid = func() (t [256]uint8) {
	for i, v := range b64Table {
		if v < 64 {
			t[i] = 1
		}
	}
	return t
}()

// maxQPSpace bounds the whitespace a quoted-printable decoder holds back
// while it waits to see whether the whitespace ends the line.
const maxQPSpace = 256

// Quoted-printable decoder states.
const (
	qpNormal = iota
	qpEq     // after "="
	qpEqHex  // after "=" and one hex digit
	qpEqWS   // after "=" and whitespace: a soft line break if the line ends
	qpSoftCR // after a soft line break's CR
)

// transferDecoder decodes a Content-Transfer-Encoding incrementally: feed
// it the body in chunks of any size with decode, then call flush once.
// It never fails: bytes that are not valid in the encoding are skipped
// (base64) or kept as they are (quoted-printable), as RFC 2045 §6.7 and
// §6.8 recommend for robust decoders.
type transferDecoder struct {
	kind cte

	quad [4]byte // base64: the values of the current quantum
	nq   int

	qs  int    // quoted-printable state
	hex byte   // qpEqHex: the first hex digit
	ws  []byte // pending whitespace (qpNormal: maybe trailing; qpEqWS: after "=")
}

// decode appends the decoded form of src to dst.
func (d *transferDecoder) decode(dst, src []byte) []byte {
	switch d.kind {
	case cteBase64:
		return d.base64(dst, src)
	case cteQP:
		return d.qp(dst, src)
	}
	return append(dst, src...)
}

// flush appends what the decoder still holds at the end of the body.
func (d *transferDecoder) flush(dst []byte) []byte {
	switch d.kind {
	case cteBase64:
		dst = d.b64Partial(dst)
	case cteQP:
		// RFC 2045 §6.7 (3): trailing whitespace is dropped; "=" at the end
		// of the data is a soft line break.
		if d.qs == qpEqHex {
			dst = append(dst, '=', d.hex)
		}
		d.qs = qpNormal
		d.ws = d.ws[:0]
	}
	return dst
}

// RFC 2045 §6.8: characters outside the alphabet are ignored; "=" ends the
// data of the current quantum. Data after padding is decoded as a new
// quantum, which recovers concatenated base64 blobs.
func (d *transferDecoder) base64(dst, src []byte) []byte {
	for _, c := range src {
		v := b64Table[c]
		if v < 64 {
			d.quad[d.nq] = v
			d.nq++
			if d.nq == 4 {
				q := &d.quad
				dst = append(dst, q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2, q[2]<<6|q[3])
				d.nq = 0
			}
		} else if v == b64Pad {
			dst = d.b64Partial(dst)
		}
	}
	return dst
}

// base64Size returns how many bytes base64 would append for src, and
// advances the state exactly as base64 does (the quantum's values are not
// kept: a later flush then appends bytes of the right count but not the
// right value, which is all a size computation needs).
func (d *transferDecoder) base64Size(src []byte) int64 {
	if bytes.IndexByte(src, '=') < 0 {
		// No padding: only the count of alphabet characters matters.
		// Eight bytes a round, loaded as one word: the parser runs every
		// byte of an attachment through here.
		t := d.nq
		for len(src) >= 8 {
			x := binary.LittleEndian.Uint64(src)
			t += int(b64Valid[byte(x)]) + int(b64Valid[byte(x>>8)]) +
				int(b64Valid[byte(x>>16)]) + int(b64Valid[byte(x>>24)]) +
				int(b64Valid[byte(x>>32)]) + int(b64Valid[byte(x>>40)]) +
				int(b64Valid[byte(x>>48)]) + int(b64Valid[byte(x>>56)])
			src = src[8:]
		}
		for _, c := range src {
			t += int(b64Valid[c])
		}
		d.nq = t % 4
		return int64(t/4) * 3
	}
	var n int64
	nq := d.nq
	for _, c := range src {
		v := b64Table[c]
		if v < 64 {
			nq++
			if nq == 4 {
				n += 3
				nq = 0
			}
		} else if v == b64Pad {
			if nq >= 2 {
				n += int64(nq - 1)
			}
			nq = 0
		}
	}
	d.nq = nq
	return n
}

// b64Partial ends the current quantum: two or three characters carry one
// or two bytes; a single character carries none.
func (d *transferDecoder) b64Partial(dst []byte) []byte {
	q := &d.quad
	switch d.nq {
	case 2:
		dst = append(dst, q[0]<<2|q[1]>>4)
	case 3:
		dst = append(dst, q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2)
	}
	d.nq = 0
	return dst
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

// qp decodes quoted-printable (RFC 2045 §6.7): "=XX" is a byte (lower-case
// hex accepted), "=" before the line end is a soft line break, trailing
// whitespace on a line is removed, and any other "=" is kept literally.
// Line breaks are kept as they are in the input.
func (d *transferDecoder) qp(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch d.qs {
		case qpNormal:
			switch c {
			case '=':
				dst = append(dst, d.ws...)
				d.ws = d.ws[:0]
				d.qs = qpEq
			case ' ', '\t':
				if len(d.ws) >= maxQPSpace {
					dst = append(dst, d.ws...)
					d.ws = d.ws[:0]
				}
				d.ws = append(d.ws, c)
			case '\r', '\n':
				d.ws = d.ws[:0]
				dst = append(dst, c)
			default:
				if len(d.ws) > 0 {
					dst = append(dst, d.ws...)
					d.ws = d.ws[:0]
				}
				dst = append(dst, c)
			}
		case qpEq:
			switch {
			case isHex(c):
				d.hex = c
				d.qs = qpEqHex
			case c == ' ' || c == '\t':
				d.ws = append(d.ws[:0], c)
				d.qs = qpEqWS
			case c == '\r':
				d.qs = qpSoftCR
			case c == '\n':
				d.qs = qpNormal
			default:
				dst = append(dst, '=')
				d.qs = qpNormal
				i--
			}
		case qpEqHex:
			d.qs = qpNormal
			if isHex(c) {
				dst = append(dst, unhex(d.hex)<<4|unhex(c))
			} else {
				dst = append(dst, '=', d.hex)
				i--
			}
		case qpEqWS:
			switch c {
			case ' ', '\t':
				if len(d.ws) >= maxQPSpace {
					dst = append(dst, '=')
					dst = append(dst, d.ws...)
					d.ws = d.ws[:0]
					d.qs = qpNormal
					i--
					continue
				}
				d.ws = append(d.ws, c)
			case '\r':
				d.ws = d.ws[:0]
				d.qs = qpSoftCR
			case '\n':
				d.ws = d.ws[:0]
				d.qs = qpNormal
			default:
				dst = append(dst, '=')
				dst = append(dst, d.ws...)
				d.ws = d.ws[:0]
				d.qs = qpNormal
				i--
			}
		case qpSoftCR:
			d.qs = qpNormal
			if c != '\n' {
				i--
			}
		}
	}
	return dst
}

// NewBinaryReader returns a reader of the transfer-decoded content of a
// part body (for IMAP BINARY[], RFC 3516), given the part's
// Content-Transfer-Encoding (Part.Encoding). 7bit, 8bit, binary and "" are
// returned as they are; base64 and quoted-printable are decoded leniently
// (see transferDecoder). Any other encoding gives ErrUnknownEncoding.
func NewBinaryReader(r io.Reader, encoding string) (io.Reader, error) {
	switch k := parseCTE(encoding); k {
	case cteIdentity:
		return r, nil
	case cteBase64, cteQP:
		return &decodeReader{r: r, d: transferDecoder{kind: k}}, nil
	}
	return nil, fmt.Errorf("decode %q: %w", encoding, ErrUnknownEncoding)
}

// NewTextReader returns a reader of a text part's body as UTF-8 (for SEARCH
// BODY and TEXT): the transfer encoding is decoded (unknown encodings are
// read as they are) and the charset converted. Unknown charsets, US-ASCII
// and UTF-8 are read as UTF-8 where valid and as windows-1252 elsewhere, so
// the result is always valid UTF-8.
func NewTextReader(r io.Reader, encoding, charset string) io.Reader {
	if k := parseCTE(encoding); k == cteBase64 || k == cteQP {
		r = &decodeReader{r: r, d: transferDecoder{kind: k}}
	}
	t, _ := lookupCharset(charset)
	return transform.NewReader(r, t)
}

// decodeReader is an io.Reader over a transferDecoder.
type decodeReader struct {
	r   io.Reader
	d   transferDecoder
	in  []byte
	out []byte // decoded, not yet returned
	pos int
	err error
}

func (dr *decodeReader) Read(p []byte) (int, error) {
	for dr.pos >= len(dr.out) {
		if dr.err != nil {
			return 0, dr.err
		}
		if dr.in == nil {
			dr.in = make([]byte, 8192)
			dr.out = make([]byte, 0, 8192)
		}
		n, err := dr.r.Read(dr.in)
		dr.out = dr.d.decode(dr.out[:0], dr.in[:n])
		dr.pos = 0
		if err != nil {
			if err == io.EOF {
				dr.out = dr.d.flush(dr.out)
			}
			dr.err = err
		}
	}
	n := copy(p, dr.out[dr.pos:])
	dr.pos += n
	return n, nil
}
