package netserve

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// loginServer echoes lines like echoServer, with a read deadline of 10 s
// per line as a protocol's idle timeout would set; "login" calls
// LoggedIn, "grow N" and "shrink N" charge and give back the Budget
// ("ok" or "no"). A timeout writes "bye" ("bye login" when the login
// deadline passed).
func loginServer(t *testing.T, opt Options) string {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ServerOptions{Options: opt, Handler: func(conn net.Conn, tc *Conn) {
		io.WriteString(conn, "hello\r\n")
		r := bufio.NewReader(conn)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			line, err := r.ReadString('\n')
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					if tc.LoginExpired() {
						io.WriteString(conn, "bye login\r\n")
					} else {
						io.WriteString(conn, "bye\r\n")
					}
				}
				return
			}
			f := strings.Fields(line)
			switch {
			case len(f) == 1 && f[0] == "login":
				tc.LoggedIn()
			case len(f) == 2 && (f[0] == "grow" || f[0] == "shrink"):
				n, _ := strconv.ParseInt(f[1], 10, 64)
				if f[0] == "shrink" {
					tc.Shrink(n)
				} else if !tc.Grow(n) {
					line = "no\r\n"
					break
				}
				line = "ok\r\n"
			}
			io.WriteString(conn, line)
		}
	}})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}

// TestLoginDeadlineIsTotal: a client that trickles bytes without logging
// in is cut off at the login deadline, although each read would allow
// ten seconds; one that logs in is not.
func TestLoginDeadlineIsTotal(t *testing.T) {
	t.Parallel()
	addr := loginServer(t, Options{Proto: "test", LoginTimeout: 300 * time.Millisecond})
	slow, ok := dial(t, addr), dial(t, addr)
	slow.expect("hello")
	ok.expect("hello")
	ok.send("login")
	ok.expect("login")
	// A trickle: a byte every 50 ms, never a whole line, until the
	// server gives up (bounded by the client's 30 s deadline).
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := slow.c.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	slow.expect("bye login")
	close(stop)
	slow.expectEOF()
	// The logged-in client outlives the login deadline.
	time.Sleep(400 * time.Millisecond)
	ok.send("still here")
	ok.expect("still here")
}

// TestLoginDeadlineWithoutDeadlines: a handler that sets no deadline of
// its own is bounded by the login deadline too.
func TestLoginDeadlineWithoutDeadlines(t *testing.T) {
	t.Parallel()
	_, addr := echoServer(t, Options{Proto: "test", LoginTimeout: 200 * time.Millisecond})
	c := dial(t, addr)
	c.expect("hello")
	c.expect("bye")
	c.expectEOF()
}

// TestBudgetPerClient: the connections of one client share the Budget;
// login and close give back what a connection held.
func TestBudgetPerClient(t *testing.T) {
	t.Parallel()
	b := NewBudget(1000)
	addr := loginServer(t, Options{Proto: "test", PreAuth: b})
	a, c := dial(t, addr), dial(t, addr)
	a.expect("hello")
	c.expect("hello")
	a.send("grow 600")
	a.expect("ok")
	c.send("grow 500")
	c.expect("no")
	c.send("grow 400")
	c.expect("ok")
	if b.Held() != 1000 || b.MaxHeld() != 1000 {
		t.Fatalf("held %d, max %d", b.Held(), b.MaxHeld())
	}
	c.send("shrink 100")
	c.expect("ok")
	a.send("login")
	a.expect("login")
	if b.Held() != 300 {
		t.Fatalf("after login held %d, want 300", b.Held())
	}
	// After login nothing is charged.
	a.send("grow 5000")
	a.expect("ok")
	c.c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for b.Held() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("held %d after close", b.Held())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
