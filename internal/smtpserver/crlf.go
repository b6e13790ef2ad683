package smtpserver

import "io"

const crlfChunk = 4 << 10

// crlfReader converts bare LF line endings to CRLF while streaming; CR and
// every other byte pass unchanged (messages are stored as delivered, only
// with canonical line endings).
type crlfReader struct {
	r      io.Reader
	in     [crlfChunk]byte
	buf    [2 * crlfChunk]byte // each input byte becomes at most two
	out    []byte              // pending converted bytes, a slice of buf
	prevCR bool                // the last byte read was CR
	err    error
}

func newCRLFReader(r io.Reader) io.Reader { return &crlfReader{r: r} }

func (c *crlfReader) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		n, err := c.r.Read(c.in[:])
		c.err = err
		out := c.buf[:0]
		for _, b := range c.in[:n] {
			if b == '\n' && !c.prevCR {
				out = append(out, '\r')
			}
			out = append(out, b)
			c.prevCR = b == '\r'
		}
		c.out = out
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}
