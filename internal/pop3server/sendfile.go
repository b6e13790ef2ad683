package pop3server

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// sendfileMaxDots is the most dot lines a body sent with sendfile(2) may
// have: each costs two more system calls, and a body with many is
// cheaper to scan in the process.
const sendfileMaxDots = 16

// sendfileChunk bounds one sendfile(2) call, so that the write deadline
// moves forward while a long body goes out to a slow but live client: as
// on the other path, each chunk of copyBufSize must leave within the idle
// timeout.
const sendfileChunk = copyBufSize

// sendFile sends a body kept in a local file, whose dot lines the store
// knows, with sendfile(2): the pieces between those dots go from the page
// cache to the socket without passing through the process, and each dot
// is doubled by writing one more "." in front of the piece that begins
// with it (RFC 1939 §3). The terminating "." line is left in the write
// buffer. It reports false, having written nothing, when the connection
// (TLS) or the body does not allow this; the caller then scans the body.
func (x *session) sendFile(body store.Body) (bool, error) {
	tc := x.plainTCP()
	if tc == nil {
		return false, nil
	}
	bf, ok := body.(store.BodyFile)
	if !ok {
		return false, nil
	}
	dots, endsLF, known := bf.DotLines()
	if !known || len(dots) > sendfileMaxDots || body.Size() == 0 {
		return false, nil
	}
	f := bf.File()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, nil
	}
	size := body.Size()
	pos := int64(0)
	for i := 0; i <= len(dots); i++ {
		end := size
		if i < len(dots) {
			end = dots[i]
		}
		if err := x.sendRange(tc, f, end-pos); err != nil {
			return true, err
		}
		if i < len(dots) {
			x.w.WriteByte('.')
		}
		pos = end
	}
	if !endsLF {
		x.w.WriteString("\r\n")
	}
	x.w.WriteString(".\r\n")
	x.s.sentByFile.Add(1)
	return true, nil
}

// plainTCP returns the session's TCP connection when nothing (TLS) stands
// between the protocol and the socket, else nil.
func (x *session) plainTCP() *net.TCPConn {
	c := x.conn
	if x.tc != nil {
		if c != net.Conn(x.tc) {
			return nil // a *tls.Conn over it
		}
		c = x.tc.Conn
	}
	tc, _ := c.(*net.TCPConn)
	return tc
}

// sendRange flushes the write buffer and sends the next n bytes of f.
func (x *session) sendRange(tc *net.TCPConn, f *os.File, n int64) error {
	if n <= 0 {
		return nil
	}
	if err := x.w.Flush(); err != nil {
		return err
	}
	for n > 0 {
		chunk := min(n, sendfileChunk)
		_ = tc.SetWriteDeadline(time.Now().Add(x.s.idle))
		// TCPConn.ReadFrom uses sendfile(2) for a limited *os.File, and
		// copies through a buffer where the system cannot.
		sent, err := tc.ReadFrom(&io.LimitedReader{R: f, N: chunk})
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
