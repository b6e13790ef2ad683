package bench

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptConn is the server side of a scripted test conversation.
type scriptConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
	w io.Writer
}

// send writes lines, each ended with CRLF.
func (s *scriptConn) send(lines ...string) {
	for _, l := range lines {
		if _, err := io.WriteString(s.w, l+"\r\n"); err != nil {
			s.t.Errorf("server write: %v", err)
		}
	}
}

// expect reads one line and checks it.
func (s *scriptConn) expect(want string) {
	s.t.Helper()
	got, err := s.r.ReadString('\n')
	if err != nil {
		s.t.Errorf("server read, want %q: %v", want, err)
		return
	}
	if got = strings.TrimRight(got, "\r\n"); got != want {
		s.t.Errorf("client sent %q, want %q", got, want)
	}
}

// line reads one line.
func (s *scriptConn) line() string {
	got, err := s.r.ReadString('\n')
	if err != nil {
		s.t.Errorf("server read: %v", err)
	}
	return strings.TrimRight(got, "\r\n")
}

// serveScript listens on 127.0.0.1:0 and runs script for every
// connection. It returns the address; the listener and connections close
// when the test ends.
func serveScript(t *testing.T, script func(s *scriptConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				script(&scriptConn{t: t, c: c, r: bufio.NewReader(c), w: c})
			}()
		}
	}()
	return ln.Addr().String()
}
