//go:build linux

package imapserver

import (
	"bufio"
	"crypto/tls"
	"net"
	"sync"
	"testing"
)

// TestStartTLSParkedAndIdle: issue 11, item 16. A session that is parked
// (its buffers given back, its fd in the poller) when STARTTLS arrives
// upgrades cleanly, sends no session ticket after the handshake (a
// threaded client such as offlineimap would read it while writing its
// first command), and then waits in IDLE inside TLS: a store event that
// interrupts the read in the middle of a TLS record from the client loses
// nothing of that record.
func TestStartTLSParkedAndIdle(t *testing.T) {
	ts := newTestServerWith(t, func(s *Server) { s.loopbackSec = false })
	acct := ts.addUser("alice@example.org")
	c := ts.dial()
	ts.waitParked(1)
	c.expect("a1 STARTTLS", "a1 OK Begin TLS negotiation now")
	if n := c.r.Buffered(); n != 0 {
		t.Fatalf("%d plaintext bytes after the STARTTLS answer", n)
	}
	hc := &starttlsHeld{Conn: c.c}
	tickets := &starttlsTicketCount{}
	tc := tls.Client(hc, &tls.Config{InsecureSkipVerify: true, ClientSessionCache: tickets})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.c, c.r = tc, bufio.NewReader(tc)
	c.ok("a2 LOGIN alice@example.org \"" + testPassword + "\"")
	c.ok("a3 ENABLE IMAP4rev2")
	c.ok("a4 SELECT INBOX")
	c.send("a5 IDLE")
	c.expectLine("+ idling")
	// DONE goes out as one TLS record, all but its last bytes now.
	hc.hold()
	c.send("DONE")
	ts.deliver(acct, "INBOX", msg("one", "1"))
	c.expectLine("* 1 EXISTS")
	if err := hc.release(); err != nil {
		t.Fatal(err)
	}
	c.expectLine("a5 OK IDLE terminated")
	c.expect("a6 NOOP", "a6 OK NOOP completed")
	if n := tickets.count(); n != 0 {
		t.Errorf("the server sent %d TLS session tickets after the STARTTLS handshake", n)
	}
}

// starttlsHeld is a connection whose next write, after hold, sends all
// but the last 3 bytes; release sends them.
type starttlsHeld struct {
	net.Conn
	holding bool
	rest    []byte
}

func (h *starttlsHeld) hold() { h.holding = true }

func (h *starttlsHeld) Write(b []byte) (int, error) {
	if !h.holding || len(b) <= 3 {
		return h.Conn.Write(b)
	}
	h.holding = false
	k := len(b) - 3
	h.rest = append([]byte(nil), b[k:]...)
	if n, err := h.Conn.Write(b[:k]); err != nil {
		return n, err
	}
	return len(b), nil
}

func (h *starttlsHeld) release() error {
	_, err := h.Conn.Write(h.rest)
	return err
}

// starttlsTicketCount is a client session cache that counts the session
// tickets it is given.
type starttlsTicketCount struct {
	mu sync.Mutex
	n  int
}

func (s *starttlsTicketCount) Get(string) (*tls.ClientSessionState, bool) { return nil, false }

func (s *starttlsTicketCount) Put(_ string, cs *tls.ClientSessionState) {
	if cs != nil {
		s.mu.Lock()
		s.n++
		s.mu.Unlock()
	}
}

func (s *starttlsTicketCount) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}
