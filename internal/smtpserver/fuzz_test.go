package smtpserver

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/delivery"
)

// FuzzSession runs whole sessions, SMTP and LMTP, on any client input
// over a loopback socket: the session must end when the input does, never
// panic, and write only well-formed replies.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"EHLO x\r\nMAIL FROM:<a@b.example> SIZE=10\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nSubject: s\r\n\r\n..x\r\n.\r\nQUIT\r\n",
		"LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<ghost@example.org>\r\nBDAT 5\r\nabcdeBDAT 2 LAST\r\nfgQUIT\r\n",
		"LHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.org>\r\nBDAT 3\r\nxyzRSET\r\nDATA\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<postmaster>\r\nDATA\r\n.\r\n",
		"HELP\r\nVRFY x\r\nSTARTTLS\r\nNOOP\r\nBDAT x\r\n",
		"EHLO x\r\nMAIL FROM:<\"a b\"@c.example>\r\nRCPT TO:<\"alice\"@example.org>\r\nRCPT TO:<\"x y\"@example.org>\r\nBDAT 2\r\nabDATA\r\nRSET\r\n",
		"EHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nRCPT TO:<d@example.org>\r\nRCPT TO:<e@example.org>\r\nRCPT TO:<f@example.org>\r\nNOOP\r\n",
		"LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n..a\n..\n.\r\nb\r.c\r\n.\r\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, lmtp bool) {
		fs := newFakeStore("alice@example.org")
		d := delivery.New(delivery.Options{Store: fs, Hostname: "mx.example.org", Domains: []string{"example.org"}, MaxMessageSize: 1000})
		s := New(Options{LMTP: lmtp, Deliverer: d, Hostname: "mx.example.org", MaxMessageSize: 1000, MaxRecipients: 5,
			CommandTimeout: 10 * time.Second, DataTimeout: 10 * time.Second, MaxBadCommands: 5,
			UnknownRcpts: UnknownRcptLimits{DelayAfter: 2, Delay: time.Millisecond, Max: 5}})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			newSession(s, conn, nil, false).run()
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		go func() {
			_, _ = c.Write(in)
			_ = c.(*net.TCPConn).CloseWrite()
		}()
		out, err := io.ReadAll(c)
		if err != nil {
			// The server may close with unread input (QUIT, 421).
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("session did not end: %v", err)
			}
		}
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("session goroutine did not end")
		}
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
			t.Fatalf("output does not end in CRLF: %q", out)
		}
		lines := bytes.Split(out, []byte("\r\n"))
		for _, l := range lines[:len(lines)-1] {
			if len(l) < 4 || bytes.ContainsAny(l, "\r\n") || l[0] < '2' || l[0] > '5' ||
				!isDigit(l[1]) || !isDigit(l[2]) || (l[3] != ' ' && l[3] != '-') {
				t.Fatalf("malformed reply line %q in %q", l, out)
			}
		}
	})
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
