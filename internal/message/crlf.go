package message

import (
	"bytes"
	"io"
	"sync"
)

// NewCRLFReader returns a reader that passes r through with every line
// ending made CRLF: CRLF stays as it is, and a bare LF and a bare CR (one
// not followed by LF) each become CRLF; every other byte is kept as
// delivered. It streams; memory use is constant. Mail from pipes and from
// some clients uses bare LF, while the store holds messages in the CRLF
// form the protocols use: RFC 5322 §2.1 and §2.3 allow CR and LF only
// together, and a bare CR left in a stored message would be read as a line
// break by some clients and not by others.
func NewCRLFReader(r io.Reader) io.Reader {
	return &crlfReader{r: r}
}

type crlfReader struct {
	r      io.Reader
	buf    *crlfBuf // from crlfBufs until the input has ended
	in     []byte
	out    []byte // converted bytes not yet returned
	pos    int
	prevCR bool // the last byte read was a CR, already sent as CRLF: skip an LF next
	err    error
}

func (c *crlfReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for c.pos >= len(c.out) {
		if c.err != nil {
			c.release()
			return 0, c.err
		}
		if c.buf == nil {
			c.buf = crlfBufs.Get().(*crlfBuf)
			c.in, c.out = c.buf.in[:], c.buf.out[:0]
		}
		n, err := c.r.Read(c.in)
		c.out = c.convert(c.out[:0], c.in[:n])
		c.pos = 0
		c.err = err
	}
	n := copy(p, c.out[c.pos:])
	c.pos += n
	return n, nil
}

// crlfChunk is how much a crlfReader reads at a time.
const crlfChunk = 16 << 10

// crlfBuf is a crlfReader's pair of buffers, pooled: every delivery and
// APPEND reads through a crlfReader, and most messages are small.
type crlfBuf struct {
	in  [crlfChunk]byte
	out [2 * crlfChunk]byte
}

var crlfBufs = sync.Pool{New: func() any { return new(crlfBuf) }}

// release gives the buffers back once the input has ended and everything
// converted was returned.
func (c *crlfReader) release() {
	if c.buf != nil {
		crlfBufs.Put(c.buf)
		c.buf, c.in, c.out, c.pos = nil, nil, nil, 0
	}
}

// convert appends src to dst with every bare LF and bare CR made CRLF.
// Runs that end in CRLF or LF and hold no other CR are copied whole (the
// input is usually CRLF already). A CR at the end of src is sent as CRLF
// at once, and an LF that begins the next src is then dropped.
func (c *crlfReader) convert(dst, src []byte) []byte {
	if c.prevCR && len(src) > 0 {
		c.prevCR = false
		if src[0] == '\n' {
			src = src[1:]
		}
	}
	for len(src) > 0 {
		lf := bytes.IndexByte(src, '\n')
		end := lf
		if lf < 0 {
			end = len(src)
		}
		cr := bytes.IndexByte(src[:end], '\r')
		switch {
		case cr < 0 && lf < 0:
			return append(dst, src...)
		case cr < 0:
			// A bare LF.
			dst = append(dst, src[:lf]...)
			dst = append(dst, '\r', '\n')
			src = src[lf+1:]
		case cr == lf-1:
			// CRLF, and no other CR before it.
			dst = append(dst, src[:lf+1]...)
			src = src[lf+1:]
		default:
			// A bare CR, or a CR that ends src: CRLF either way.
			dst = append(dst, src[:cr]...)
			dst = append(dst, '\r', '\n')
			src = src[cr+1:]
			if len(src) == 0 {
				c.prevCR = true
			}
		}
	}
	return dst
}
