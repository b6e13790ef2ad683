//go:build linux

package imapserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParkResumesOnInput(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice@example.org")
	c := ts.dial()
	ts.waitParked(1) // not logged in yet: waits parked too
	c.ok("L1 LOGIN alice@example.org \"" + testPassword + "\"")
	c.ok("a1 SELECT INBOX")
	ts.waitParked(1)
	c.expect("a2 NOOP", "a2 OK NOOP completed")
	// Part of a command: the session resumes, reads it and waits for the
	// rest in a read (a command in progress does not park).
	io.WriteString(c.c, "a3 NO")
	ts.waitParked(0)
	c.send("OP")
	c.expectLine("a3 OK NOOP completed")
	ts.waitParked(1)
	// A line end split from its line.
	io.WriteString(c.c, "a4 NOOP\r")
	ts.waitParked(0)
	io.WriteString(c.c, "\n")
	c.expectLine("a4 OK NOOP completed")
	c.expect("a5 LOGOUT", "* BYE Logging out", "a5 OK LOGOUT completed")
	ts.waitParked(0)
}

func TestParkResumesOnEvent(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("one", "1"))
	// IMAP4rev2: no RECENT, whose counts depend on which session saw a
	// message first.
	idle := ts.login("alice@example.org")
	idle.ok("a0 ENABLE IMAP4rev2")
	idle.ok("a1 SELECT INBOX")
	idle.send("a2 IDLE")
	idle.expectLine("+ idling")
	notify := ts.login("alice@example.org")
	notify.ok("n0 ENABLE IMAP4rev2")
	notify.ok("n1 SELECT INBOX")
	notify.ok("n2 NOTIFY SET (selected (MessageNew MessageExpunge))")
	plain := ts.login("alice@example.org")
	plain.ok("p0 ENABLE IMAP4rev2")
	plain.ok("p1 SELECT INBOX")
	ts.waitParked(3)
	for i := 2; i <= 4; i++ {
		ts.deliver(acct, "INBOX", msg(fmt.Sprint("m", i), "x"))
		// IDLE and NOTIFY sessions are resumed and told at once...
		idle.expectLine(fmt.Sprintf("* %d EXISTS", i))
		notify.expectLine(fmt.Sprintf("* %d EXISTS", i))
		// ...and park again.
		ts.waitParked(3)
	}
	// The plain session stays parked until its next command, which
	// reports the changes.
	plain.expect("p2 NOOP", "* 4 EXISTS", "p2 OK NOOP completed")
	idle.send("DONE")
	idle.expectLine("a2 OK IDLE terminated")
	notify.expect("n3 NOOP", "n3 OK NOOP completed")
}

func TestParkIdleTimeout(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.IdleTimeout = 700 * time.Millisecond })
	ts.addUser("alice@example.org")
	plain := ts.dial()
	idle := ts.login("alice@example.org")
	idle.ok("a1 SELECT INBOX")
	idle.send("a2 IDLE")
	idle.expectLine("+ idling")
	for _, c := range []*client{plain, idle} {
		c.expectLine("* BYE Idle timeout, closing connection")
		if _, err := c.r.ReadString('\n'); err != io.EOF {
			t.Fatalf("after BYE: %v", err)
		}
	}
	ts.waitParked(0)
}

func TestParkShutdown(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice@example.org")
	greeted := ts.dial()
	plain := ts.login("alice@example.org")
	plain.ok("a1 SELECT INBOX")
	idle := ts.login("alice@example.org")
	idle.ok("b1 SELECT INBOX")
	idle.send("b2 IDLE")
	idle.expectLine("+ idling")
	notify := ts.login("alice@example.org")
	notify.ok("n1 NOTIFY SET (personal (MessageNew MessageExpunge))")
	ts.waitParked(4)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ts.srv.Shutdown(ctx) }()
	for _, c := range []*client{greeted, plain, idle, notify} {
		c.expectLine("* BYE [UNAVAILABLE] Server shutting down, try again later")
		if _, err := c.r.ReadString('\n'); err != io.EOF {
			t.Fatalf("after BYE: %v", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := ts.srv.parkedCount(); n != 0 {
		t.Fatalf("%d sessions parked after Shutdown", n)
	}
}

func TestParkClientCloses(t *testing.T) {
	closed := make(chan string, 4)
	ts := newTestServer(t, func(o *Options) {
		o.Metrics.ConnClose = func(proto string) { closed <- proto }
	})
	ts.addUser("alice@example.org")
	a := ts.login("alice@example.org")
	a.ok("a1 SELECT INBOX")
	b := ts.login("alice@example.org")
	b.ok("b1 SELECT INBOX")
	b.send("b2 IDLE")
	b.expectLine("+ idling")
	ts.waitParked(2)
	for _, c := range []*client{a, b} {
		c.c.Close()
		select {
		case <-closed:
		case <-time.After(20 * time.Second):
			t.Fatal("the server did not see the client close")
		}
	}
	ts.waitParked(0)
}

// TestParkPipelined sends each command as soon as the previous response
// arrived, and commands in batches, so input races with parking.
func TestParkPipelined(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice@example.org")
	c := ts.login("alice@example.org")
	c.ok("a1 SELECT INBOX")
	for i := range 300 {
		c.expect(fmt.Sprintf("n%d NOOP", i), fmt.Sprintf("n%d OK NOOP completed", i))
	}
	var batch strings.Builder
	for i := range 50 {
		fmt.Fprintf(&batch, "b%d NOOP\r\n", i)
	}
	io.WriteString(c.c, batch.String())
	for i := range 50 {
		c.expectLine(fmt.Sprintf("b%d OK NOOP completed", i))
	}
	// IDLE and DONE in one write, and DONE right after the continuation.
	io.WriteString(c.c, "i1 IDLE\r\nDONE\r\n")
	c.expectLine("+ idling")
	c.expectLine("i1 OK IDLE terminated")
	for i := range 100 {
		c.send(fmt.Sprintf("i%d IDLE", i+2))
		c.expectLine("+ idling")
		c.send("DONE")
		c.expectLine(fmt.Sprintf("i%d OK IDLE terminated", i+2))
	}
}

// TestParkManyConcurrent parks and resumes many sessions at once: IDLE
// sessions woken by deliveries while others run commands.
func TestParkManyConcurrent(t *testing.T) {
	const idlers, workers, rounds = 60, 20, 8
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.addUser("bob@example.org")
	open := func(user string, cmds string, until string) (*lineConn, error) {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(60 * time.Second))
		cn := &lineConn{c, bufio.NewReader(c)}
		if _, err := io.WriteString(c, "L LOGIN "+user+" \""+testPassword+"\"\r\n"+cmds); err != nil {
			return nil, err
		}
		return cn, cn.readUntil(until)
	}
	idle := make([]*lineConn, idlers)
	for i := range idle {
		var err error
		if idle[i], err = open("alice@example.org", "s SELECT INBOX\r\ni IDLE\r\n", "+ idling"); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, idlers+workers)
	var wg sync.WaitGroup
	for _, c := range idle {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.readUntil(fmt.Sprintf("* %d EXISTS", rounds)); err != nil {
				errs <- err
				return
			}
			io.WriteString(c.c, "DONE\r\nn NOOP\r\n")
			if err := c.readUntil("n OK NOOP completed"); err != nil {
				errs <- err
			}
		}()
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := open("bob@example.org", "s SELECT INBOX\r\n", "s OK")
			if err != nil {
				errs <- err
				return
			}
			for i := range 40 {
				fmt.Fprintf(c.c, "w%d NOOP\r\n", i)
				if err := c.readUntil(fmt.Sprintf("w%d OK", i)); err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
			}
		}()
	}
	for i := range rounds {
		ts.deliver(acct, "INBOX", msg(fmt.Sprint("m", i), "x"))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// lineConn is a client connection for tests that run clients in their
// own goroutines (no t.Fatal there).
type lineConn struct {
	c net.Conn
	r *bufio.Reader
}

// readUntil reads lines up to one that starts with want.
func (c *lineConn) readUntil(want string) error {
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("waiting for %q: %w", want, err)
		}
		if strings.HasPrefix(l, want) {
			return nil
		}
	}
}

// TestParkAfterGrace: with a grace period (the default outside tests), a
// waiting session first waits in a read, where input and events reach it
// as they do when it is parked, and parks after the grace period.
func TestParkAfterGrace(t *testing.T) {
	ts := newTestServerWith(t, func(s *Server) { s.parkAfter = 300 * time.Millisecond })
	acct := ts.addUser("alice@example.org")
	c := ts.login("alice@example.org")
	c.ok("a0 ENABLE IMAP4rev2")
	c.ok("a1 SELECT INBOX")
	c.expect("a2 NOOP", "a2 OK NOOP completed")
	ts.waitParked(1)
	c.expect("a3 NOOP", "a3 OK NOOP completed")
	c.send("a4 IDLE")
	c.expectLine("+ idling")
	// Most likely still in the grace read: the event interrupts it.
	ts.deliver(acct, "INBOX", msg("one", "1"))
	c.expectLine("* 1 EXISTS")
	ts.waitParked(1)
	ts.deliver(acct, "INBOX", msg("two", "2"))
	c.expectLine("* 2 EXISTS")
	ts.waitParked(1)
	c.send("DONE")
	c.expectLine("a4 OK IDLE terminated")
}

// TestParkOff: with parking off, sessions wait in a blocked read and
// behave the same.
func TestParkOff(t *testing.T) {
	ts := newTestServerWith(t, func(s *Server) { s.parking = false })
	acct := ts.addUser("alice@example.org")
	c := ts.login("alice@example.org")
	c.ok("a1 SELECT INBOX")
	c.send("a2 IDLE")
	c.expectLine("+ idling")
	ts.deliver(acct, "INBOX", msg("one", "1"))
	c.expectLine("* 1 EXISTS")
	c.expectLine("* 1 RECENT")
	if ts.srv.poll.Load() != nil {
		t.Fatal("poller started with parking off")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.expectLine("* BYE [UNAVAILABLE] Server shutting down, try again later")
}

// TestIdleTimeoutNotRestartedByPushes: RFC 9051 §5.4. The autologout
// timer measures the client's inactivity: updates pushed to an IDLE
// client keep coming, yet it is logged out when it sends nothing.
func TestIdleTimeoutNotRestartedByPushes(t *testing.T) {
	for _, parking := range []bool{true, false} {
		t.Run(fmt.Sprint("parking=", parking), func(t *testing.T) {
			ts := newTestServerWith(t, func(s *Server) { s.parking = parking }, func(o *Options) { o.IdleTimeout = time.Second })
			acct := ts.addUser("alice@example.org")
			idle := ts.login("alice@example.org")
			idle.ok("a1 SELECT INBOX")
			idle.send("a2 IDLE")
			idle.expectLine("+ idling")
			lines := make(chan string, 100)
			go func() {
				defer close(lines)
				for {
					l, err := idle.r.ReadString('\n')
					if err != nil {
						return
					}
					lines <- l
				}
			}()
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			deadline := time.After(15 * time.Second)
			pushed := 0
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatal("connection closed without BYE")
					}
					if l == "* BYE Idle timeout, closing connection\r\n" {
						if pushed < 2 {
							t.Fatalf("BYE after %d pushes", pushed)
						}
						return
					}
				case <-tick.C:
					ts.deliver(acct, "INBOX", msg("m", "x"))
					pushed++
				case <-deadline:
					t.Fatalf("no idle timeout after %d pushes", pushed)
				}
			}
		})
	}
}
