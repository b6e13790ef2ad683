package netserve

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// sendFileChunk bounds one sendfile(2) call, so that the write deadline
// moves forward while a long body goes out to a slow but live client.
const sendFileChunk = 256 << 10

// PlainTCP returns the TCP connection under conn when nothing (TLS)
// stands between a protocol and the socket: conn is tc itself, or a bare
// *net.TCPConn. It returns nil otherwise.
func PlainTCP(conn net.Conn, tc *Conn) *net.TCPConn {
	if tc != nil {
		if conn != net.Conn(tc) {
			return nil // a *tls.Conn over it
		}
		conn = tc.Conn
	}
	c, _ := conn.(*net.TCPConn)
	return c
}

// SendFile sends the n bytes of f at offset off to c with sendfile(2): from
// the page cache to the socket, without a copy through the process. Each
// piece of at most 256 KiB must leave within timeout. Callers flush
// their own buffered output first. A file shorter than off+n is an error.
func SendFile(c *net.TCPConn, f *os.File, off, n int64, timeout time.Duration) error {
	if n <= 0 {
		return nil
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("sendfile: %w", err)
	}
	for n > 0 {
		chunk := min(n, sendFileChunk)
		_ = c.SetWriteDeadline(time.Now().Add(timeout))
		// TCPConn.ReadFrom uses sendfile(2) for a limited *os.File, and
		// copies through a buffer where the system cannot.
		sent, err := c.ReadFrom(&io.LimitedReader{R: f, N: chunk})
		n -= sent
		if err != nil {
			return fmt.Errorf("sendfile: %w", err)
		}
		if sent < chunk {
			return fmt.Errorf("sendfile: body file ends %d bytes early", n)
		}
	}
	return nil
}
