package message

import (
	"bytes"
	"io"
	"sync"
)

// NewCRLFReader returns a reader that passes r through with every bare LF
// made CRLF; CRLF stays as it is, and every other byte, a CR not followed by
// LF included, is kept as delivered. It streams; memory use is constant.
// Mail from pipes and from some clients uses bare LF, while the store holds
// messages in the CRLF form the protocols use (RFC 5322 §2.1).
func NewCRLFReader(r io.Reader) io.Reader {
	return &crlfReader{r: r}
}

type crlfReader struct {
	r      io.Reader
	buf    *crlfBuf // from crlfBufs until the input has ended
	in     []byte
	out    []byte // converted bytes not yet returned
	pos    int
	prevCR bool // the last byte passed through was a CR
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

// convert appends src to dst with CR added before every bare LF. Runs
// between line feeds are copied whole (the input is usually CRLF already).
func (c *crlfReader) convert(dst, src []byte) []byte {
	for len(src) > 0 {
		i := bytes.IndexByte(src, '\n')
		if i < 0 {
			c.prevCR = src[len(src)-1] == '\r'
			return append(dst, src...)
		}
		cr := c.prevCR
		if i > 0 {
			cr = src[i-1] == '\r'
		}
		dst = append(dst, src[:i]...)
		if !cr {
			dst = append(dst, '\r')
		}
		dst = append(dst, '\n')
		c.prevCR = false
		src = src[i+1:]
	}
	return dst
}
