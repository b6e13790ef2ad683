package netserve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echoServer answers "hello" and then echoes lines; "panic" panics, "busy"
// marks the connection busy until "idle". A read error writes "bye <err>".
func echoServer(t *testing.T, opt Options) (*Server, string) {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ServerOptions{Options: opt, Handler: func(conn net.Conn, tc *Conn) {
		io.WriteString(conn, "hello\r\n")
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					io.WriteString(conn, "bye\r\n")
				}
				return
			}
			switch strings.TrimSpace(line) {
			case "panic":
				panic("test panic")
			case "busy":
				tc.SetBusy(true)
			case "idle":
				tc.SetBusy(false)
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
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return s, ln.Addr().String()
}

type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{t, c, bufio.NewReader(c)}
}

func (c *client) expect(want string) {
	c.t.Helper()
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (want %q)", err, want)
	}
	if got := strings.TrimRight(line, "\r\n"); got != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) expectEOF() {
	c.t.Helper()
	if line, err := c.r.ReadString('\n'); err == nil {
		c.t.Fatalf("got %q, want connection closed", line)
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name         string
		total, perIP int
	}{
		{"total", 2, 0},
		{"per ip", 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rejected := make(chan string, 10)
			_, addr := echoServer(t, Options{Proto: "test", MaxConns: tt.total, MaxConnsPerIP: tt.perIP,
				BusyReply: "421 busy\r\n", Metrics: ConnMetrics{ConnReject: func(_, r string) { rejected <- r }}})
			a, b := dial(t, addr), dial(t, addr)
			a.expect("hello")
			b.expect("hello")
			c := dial(t, addr)
			c.expect("421 busy")
			c.expectEOF()
			if r := <-rejected; !strings.Contains(r, "too many") {
				t.Errorf("reject reason %q", r)
			}
			a.send("QUIT")
			a.expect("QUIT")
			a.c.Close()
			// The slot frees once the server has seen the close.
			deadline := time.Now().Add(20 * time.Second)
			for {
				d := dial(t, addr)
				line, _ := d.r.ReadString('\n')
				if strings.HasPrefix(line, "hello") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("slot never freed")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestPanicClosesOnlyThatConnection(t *testing.T) {
	_, addr := echoServer(t, Options{Proto: "test"})
	a, b := dial(t, addr), dial(t, addr)
	a.expect("hello")
	b.expect("hello")
	a.send("panic")
	a.expectEOF()
	b.send("still here")
	b.expect("still here")
}

func TestShutdownDrains(t *testing.T) {
	s, addr := echoServer(t, Options{Proto: "test"})
	idle, busy := dial(t, addr), dial(t, addr)
	idle.expect("hello")
	busy.expect("hello")
	busy.send("busy")
	busy.expect("busy")

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	// The idle connection is told goodbye at once.
	idle.expect("bye")
	idle.expectEOF()
	// The busy one keeps working until it is done.
	busy.send("more")
	busy.expect("more")
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while a connection was busy", err)
	default:
	}
	busy.send("idle")
	busy.expect("idle")
	busy.expect("bye")
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("listener still accepts after Shutdown")
	}
}

func TestShutdownDeadlineCutsOff(t *testing.T) {
	s, addr := echoServer(t, Options{Proto: "test"})
	busy := dial(t, addr)
	busy.expect("hello")
	busy.send("busy")
	busy.expect("busy")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v", err)
	}
	busy.expectEOF()
}

func TestSelfSignedTLS(t *testing.T) {
	dir := t.TempDir()
	cfg, err := TLSConfig("", "", dir, "mail.example.org")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "tls", "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
	}
	leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("mail.example.org"); err != nil {
		t.Error(err)
	}
	// Generated once: a second call reuses the pair.
	cfg2, err := TLSConfig("", "", dir, "mail.example.org")
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg2.Certificates[0].Certificate[0]) != string(cfg.Certificates[0].Certificate[0]) {
		t.Error("certificate regenerated")
	}
	// Explicit files load too.
	if _, err := TLSConfig(filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem"), "", ""); err != nil {
		t.Error(err)
	}
	if _, err := TLSConfig(filepath.Join(dir, "nope.pem"), filepath.Join(dir, "tls", "key.pem"), "", ""); err == nil {
		t.Error("missing cert file accepted")
	}

	// Implicit TLS listener.
	_, addr := echoServer(t, Options{Proto: "tls", TLSConfig: cfg})
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "mail.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "hello\r\n" {
		t.Fatalf("over tls: %q %v", line, err)
	}
}

func TestListenUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "lmtp.sock")
	ln, err := Listen("unix:" + path)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	// A stale socket file (as after a crash) does not block the next start.
	if err := os.WriteFile(path+".x", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ln2, err := Listen("unix:" + path)
	if err != nil {
		t.Fatalf("relisten: %v", err)
	}
	defer ln2.Close()
	l := NewListener(ln2, Options{Proto: "lmtp", MaxConnsPerIP: 1})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "ok\r\n")
			c.Close()
		}
	}()
	for range 3 { // per-IP limits do not apply to unix sockets
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if line != "ok\r\n" {
			t.Fatalf("got %q", line)
		}
	}
	if _, err := Listen("unix:"); err == nil {
		t.Error("empty unix path accepted")
	}
}

// TestParkResume: a parked connection stays open without a goroutine,
// its continuation runs after Resume, Shutdown waits for it, and a
// continuation that returns closes it.
func TestParkResume(t *testing.T) {
	parked := make(chan *Conn, 1)
	var serve func(conn net.Conn, tc *Conn, r *bufio.Reader)
	serve = func(conn net.Conn, tc *Conn, r *bufio.Reader) {
		line, err := r.ReadString('\n')
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				io.WriteString(conn, "bye\r\n")
			}
			return
		}
		io.WriteString(conn, line)
		if strings.TrimSpace(line) == "park" {
			if !tc.Park(func() { parked <- tc }) {
				t.Error("Park refused")
			}
			return
		}
		serve(conn, tc, r)
	}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ServerOptions{Options: Options{Proto: "test"}, Handler: func(conn net.Conn, tc *Conn) {
		io.WriteString(conn, "hello\r\n")
		serve(conn, tc, bufio.NewReader(conn))
	}})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	c := dial(t, ln.Addr().String())
	c.expect("hello")
	c.send("park")
	c.expect("park")
	tc := <-parked
	c.send("one")
	// Resumed, the connection goes on where it was: the line sent while
	// it was parked is there.
	tc.Resume(func() { serve(tc, tc, bufio.NewReader(tc)) })
	c.expect("one")
	c.send("park")
	c.expect("park")
	tc = <-parked

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	// Shutdown waits for the parked connection...
	for !tc.Draining() {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a parked connection", err)
	case <-time.After(50 * time.Millisecond):
	}
	// ...until its owner resumes it and it ends.
	tc.Resume(func() { serve(tc, tc, bufio.NewReader(tc)) })
	c.expect("bye")
	c.expectEOF()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}

// TestParkWithoutServer: a bare Listener's connection cannot be parked.
func TestParkWithoutServer(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(ln, Options{Proto: "test"})
	defer l.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			defer c.Close()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ConnOf(c).Park(func() {}) {
		t.Fatal("Park accepted without a Server")
	}
}

// TestGroup: a Group serves several listeners with their own options and
// shuts them all down: an idle connection on each is told goodbye, the
// hook runs once, concurrent Shutdowns return the same, and Serve after
// Shutdown closes its listener and returns ErrServerClosed.
func TestGroup(t *testing.T) {
	var g Group
	echo := func(conn net.Conn, tc *Conn) {
		io.WriteString(conn, "hello\r\n")
		if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				io.WriteString(conn, "bye\r\n")
			}
		}
	}
	var addrs []string
	served := make(chan error, 2)
	for _, proto := range []string{"one", "two"} {
		ln, err := Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		go func() { served <- g.Serve(ln, ServerOptions{Options: Options{Proto: proto}, Handler: echo}) }()
	}
	var clients []*client
	for _, addr := range addrs {
		c := dial(t, addr)
		c.expect("hello")
		clients = append(clients, c)
	}
	var hooks atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- g.Shutdown(ctx, func() { hooks.Add(1) }) }()
	}
	for _, c := range clients {
		c.expect("bye")
		c.expectEOF()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	}
	if n := hooks.Load(); n != 1 {
		t.Errorf("the hook ran %d times", n)
	}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Serve(ln, ServerOptions{Handler: echo}); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("a listener given to Serve after Shutdown still accepts")
	}
}

// TestSendFile: a range of a file goes out whole over TCP; a file that
// ends before the range does is an error, not a short send.
func TestSendFile(t *testing.T) {
	data := make([]byte, 700<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	f, err := os.CreateTemp(t.TempDir(), "body")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- b
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tc := PlainTCP(c, nil)
	if tc == nil {
		t.Fatal("PlainTCP of a TCP connection is nil")
	}
	if err := SendFile(tc, f, 1234, 600<<10, time.Minute); err != nil {
		t.Fatal(err)
	}
	err = SendFile(tc, f, int64(len(data))-10, 20, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "ends 10 bytes early") {
		t.Fatalf("SendFile past the end of the file = %v", err)
	}
	c.Close()
	b := <-got
	want := append(append([]byte{}, data[1234:1234+600<<10]...), data[len(data)-10:]...)
	if !bytes.Equal(b, want) {
		t.Fatalf("received %d bytes, want %d, equal: %v", len(b), len(want), bytes.Equal(b, want))
	}
}

// TestConnsPerIPGroupsIPv6By64: MaxConnsPerIP counts an IPv6 /64 as one
// client, as the pre-login budget and the guessing protection do; counted
// per address, one /64 could take every connection of a listener.
func TestConnsPerIPGroupsIPv6By64(t *testing.T) {
	key := func(s string) string { return ipKey(&net.TCPAddr{IP: net.ParseIP(s), Port: 1}) }
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"127.0.0.1", "127.0.0.2", false},
		{"127.0.0.1", "::ffff:127.0.0.1", true},
		{"::1", "127.0.0.1", false},
	} {
		if got := key(tc.a) == key(tc.b); got != tc.same {
			t.Errorf("%s and %s: same client %v (keys %q, %q), want %v", tc.a, tc.b, got, key(tc.a), key(tc.b), tc.same)
		}
	}
}
