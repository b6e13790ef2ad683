package message

import "io"

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
			c.in = make([]byte, 4096)
			c.out = make([]byte, 0, 2*4096)
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

func (c *crlfReader) convert(dst, src []byte) []byte {
	for _, b := range src {
		if b == '\n' && !c.prevCR {
			dst = append(dst, '\r')
		}
		dst = append(dst, b)
		c.prevCR = b == '\r'
	}
	return dst
}
