package imap

import (
	"bufio"
	"errors"
	"io"

	"github.com/postfach/postfach/internal/message"
)

// ErrUnknownCTE is returned for BINARY of a part whose
// Content-Transfer-Encoding the server cannot decode; the server answers
// "NO [UNKNOWN-CTE]" (RFC 3516 §4.3).
var ErrUnknownCTE = errors.New("imap: unknown content transfer encoding")

// OpenBinary returns the content of BINARY[part]<p> (RFC 3516 §4.2): the
// part's body with its Content-Transfer-Encoding (base64 or
// quoted-printable) undone, streamed, and its decoded length. An empty
// path gives the whole message, and a multipart or message/rfc822 part its
// body as it is. A part that does not exist is empty. The decoded length
// costs one decoding pass before the data is sent.
func OpenBinary(msg MessageSource, sum *message.Summary, part []uint32, p Partial) (io.Reader, int64, error) {
	open, err := binarySource(msg, sum, part)
	if err != nil {
		return nil, 0, err
	}
	total, err := io.Copy(io.Discard, open())
	if err != nil {
		return nil, 0, err
	}
	off, n := p.Apply(total)
	r := open()
	if _, err := io.CopyN(io.Discard, r, off); err != nil {
		return nil, 0, err
	}
	return io.LimitReader(r, n), n, nil
}

// BinarySize returns BINARY.SIZE[part] (RFC 3516 §4.2): the decoded size
// of the part's body.
func BinarySize(msg MessageSource, sum *message.Summary, part []uint32) (int64, error) {
	open, err := binarySource(msg, sum, part)
	if err != nil {
		return 0, err
	}
	return io.Copy(io.Discard, open())
}

// binarySource returns a function that opens the decoded content of a
// part (callable more than once).
func binarySource(msg MessageSource, sum *message.Summary, part []uint32) (func() io.Reader, error) {
	size := msg.Size()
	if len(part) == 0 {
		return func() io.Reader { return io.NewSectionReader(msg, 0, size) }, nil
	}
	x := FindPart(&sum.Root, part)
	if x == nil {
		return func() io.Reader { return eofReader{} }, nil
	}
	start := min(max(x.BodyStart, 0), size)
	end := min(max(x.End, start), size)
	raw := func() io.Reader { return io.NewSectionReader(msg, start, end-start) }
	if isMultipart(x) || isMessagePart(x) {
		return raw, nil
	}
	switch x.Encoding {
	case "", "7bit", "8bit", "binary":
		return raw, nil
	case "base64":
		return func() io.Reader { return newBase64Decoder(raw()) }, nil
	case "quoted-printable":
		return func() io.Reader { return newQPDecoder(raw()) }, nil
	}
	return nil, ErrUnknownCTE
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// base64Decoder decodes base64 leniently, as mail needs: characters
// outside the alphabet (line breaks, stray spaces) are skipped, decoding
// stops at "=", and a final partial quantum yields the bytes it holds.
// It never fails on bad input.
type base64Decoder struct {
	src  *bufio.Reader
	acc  uint32
	bits int
	out  [3]byte
	nout int
	iout int
	done bool
	err  error
}

func newBase64Decoder(r io.Reader) *base64Decoder {
	return &base64Decoder{src: bufio.NewReaderSize(r, 4096)}
}

var base64Values = func() (t [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range t {
		t[i] = 0xFF
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// Read implements io.Reader.
func (d *base64Decoder) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if d.iout < d.nout {
			c := copy(p[n:], d.out[d.iout:d.nout])
			d.iout += c
			n += c
			continue
		}
		if d.done {
			break
		}
		c, err := d.src.ReadByte()
		if err != nil {
			d.done = true
			if err != io.EOF {
				d.err = err
			}
			continue
		}
		if c == '=' {
			d.done = true
			continue
		}
		v := base64Values[c]
		if v == 0xFF {
			continue
		}
		d.acc = d.acc<<6 | uint32(v)
		d.bits += 6
		if d.bits >= 8 {
			d.bits -= 8
			d.out[0] = byte(d.acc >> d.bits)
			d.acc &= 1<<d.bits - 1
			d.nout, d.iout = 1, 0
		}
	}
	if n == 0 && d.done {
		if d.err != nil {
			return 0, d.err
		}
		return 0, io.EOF
	}
	return n, nil
}

// qpDecoder decodes quoted-printable (RFC 2045 §6.7) leniently: "=XX"
// becomes the octet, a soft line break ("=" at the end of a line, after
// optional white space) disappears, white space at the end of a line is
// removed, and anything malformed passes through as it is. Line endings
// are kept. It never fails on bad input.
type qpDecoder struct {
	src   *bufio.Reader
	out   []byte
	iout  int
	ws    []byte // white space that may be trailing
	state qpState
	hex1  byte
	done  bool
	err   error
}

// maxPendingWS bounds the white space held back as possibly trailing.
const maxPendingWS = 1024

type qpState uint8

const (
	qpNormal qpState = iota
	qpEq             // after "="
	qpEqHex          // after "=" and one hex digit (hex1)
	qpEqWS           // after "=" and white space (in ws)
	qpEqCR           // after "=" [white space] CR
	qpCR             // after a CR (white space before it in ws)
)

func newQPDecoder(r io.Reader) *qpDecoder {
	return &qpDecoder{src: bufio.NewReaderSize(r, 4096)}
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// Read implements io.Reader.
func (d *qpDecoder) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if d.iout < len(d.out) {
			c := copy(p[n:], d.out[d.iout:])
			d.iout += c
			n += c
			continue
		}
		d.out, d.iout = d.out[:0], 0
		if d.done {
			break
		}
		c, err := d.src.ReadByte()
		if err != nil {
			d.done = true
			if err != io.EOF {
				d.err = err
			}
			d.flushEOF()
			continue
		}
		d.step(c)
	}
	if n == 0 && d.done && d.iout >= len(d.out) {
		if d.err != nil {
			return 0, d.err
		}
		return 0, io.EOF
	}
	return n, nil
}

// step consumes one input byte, appending output to d.out.
func (d *qpDecoder) step(c byte) {
	switch d.state {
	case qpEq:
		switch {
		case c == '\r':
			d.state = qpEqCR
		case c == '\n':
			d.state = qpNormal // soft line break
		case c == ' ' || c == '\t':
			d.ws = append(d.ws[:0], c)
			d.state = qpEqWS
		default:
			if _, ok := unhex(c); ok {
				d.hex1 = c
				d.state = qpEqHex
				return
			}
			d.out = append(d.out, '=')
			d.state = qpNormal
			d.step(c)
		}
	case qpEqHex:
		d.state = qpNormal
		if lo, ok := unhex(c); ok {
			hi, _ := unhex(d.hex1)
			d.out = append(d.out, hi<<4|lo)
			return
		}
		d.out = append(d.out, '=', d.hex1)
		d.step(c)
	case qpEqWS:
		switch c {
		case ' ', '\t':
			if len(d.ws) >= maxPendingWS {
				d.out = append(d.out, '=')
				d.out = append(d.out, d.ws...)
				d.ws = d.ws[:0]
				d.state = qpNormal
			}
			d.ws = append(d.ws, c)
		case '\r':
			d.ws = d.ws[:0]
			d.state = qpEqCR
		case '\n':
			d.ws = d.ws[:0]
			d.state = qpNormal
		default:
			d.out = append(d.out, '=')
			d.out = append(d.out, d.ws...)
			d.ws = d.ws[:0]
			d.state = qpNormal
			d.step(c)
		}
	case qpEqCR:
		d.state = qpNormal
		if c != '\n' {
			d.step(c) // "=" CR without LF: still a soft break
		}
	case qpCR:
		d.state = qpNormal
		if c == '\n' {
			d.ws = d.ws[:0] // trailing white space is removed
			d.out = append(d.out, '\r', '\n')
			return
		}
		d.out = append(d.out, d.ws...)
		d.ws = d.ws[:0]
		d.out = append(d.out, '\r')
		d.step(c)
	default:
		switch c {
		case '=':
			d.out = append(d.out, d.ws...)
			d.ws = d.ws[:0]
			d.state = qpEq
		case ' ', '\t':
			if len(d.ws) >= maxPendingWS {
				// Too long to be padding worth removing: emit it.
				d.out = append(d.out, d.ws...)
				d.ws = d.ws[:0]
			}
			d.ws = append(d.ws, c)
		case '\r':
			d.state = qpCR
		case '\n':
			d.ws = d.ws[:0]
			d.out = append(d.out, '\n')
		default:
			d.out = append(d.out, d.ws...)
			d.ws = d.ws[:0]
			d.out = append(d.out, c)
		}
	}
}

// flushEOF ends the input: trailing white space is dropped, a dangling
// "=X" passes through, a final "=" is a soft break.
func (d *qpDecoder) flushEOF() {
	switch d.state {
	case qpEqHex:
		d.out = append(d.out, '=', d.hex1)
	case qpCR:
		d.out = append(d.out, '\r')
	}
	d.ws = d.ws[:0]
	d.state = qpNormal
}
