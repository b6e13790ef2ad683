package message

import (
	"bytes"
	"io"
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
			return 0, c.err
		}
		if c.in == nil {
			c.in = make([]byte, crlfChunk)
			c.out = make([]byte, 0, 2*crlfChunk)
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
