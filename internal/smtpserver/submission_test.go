package smtpserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/store"
)

// submitAuth accepts PLAIN with alice's password only.
type submitAuth struct{}

func (submitAuth) NewSASL(mech string, c auth.ConnInfo) (auth.SASL, error) {
	return submitPlain{}, nil
}

type submitPlain struct{}

func (submitPlain) Next(ctx context.Context, resp []byte) ([]byte, *auth.Principal, error) {
	if resp == nil {
		return []byte{}, nil, nil
	}
	if string(resp) == "\x00alice@example.org\x00pw" {
		return nil, &auth.Principal{Account: 1, Name: "alice@example.org"}, nil
	}
	return nil, nil, auth.ErrFailed
}

// startSubmission starts a submission server on a fake store whose
// clients all seem to come from remote (not loopback).
func startSubmission(t *testing.T, fs *fakeStore, remote netip.Addr, tlsCfg *tls.Config) string {
	t.Helper()
	d := delivery.New(delivery.Options{Store: fs, Hostname: "mx.example.org", Domains: []string{"example.org"}})
	s := New(Options{Deliverer: d, Hostname: "mx.example.org", TLSConfig: tlsCfg, CommandTimeout: time.Minute, DataTimeout: time.Minute,
		Submission: &Submission{Auth: submitAuth{}, SASLMechanisms: []string{"PLAIN"}}})
	s.remoteFor = func(net.Conn) netip.Addr { return remote }
	ln, err := netserve.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// TestSubmissionPlaintextOffLoopback: a client on another host gets no
// AUTH without TLS (not offered, and 538 5.7.11 when tried, DESIGN §6),
// and MAIL without AUTH is 530 5.7.0; after STARTTLS it signs in and
// sends.
func TestSubmissionPlaintextOffLoopback(t *testing.T) {
	cfg, err := netserve.TLSConfig("", "", t.TempDir(), "mx.example.org")
	if err != nil {
		t.Fatal(err)
	}
	fs := newFakeStore("alice@example.org", "bob@example.org")
	addr := startSubmission(t, fs, netip.MustParseAddr("192.0.2.7"), cfg)
	c := dialT(t, addr)
	c.expect("220 ")
	caps := strings.Join(c.do("EHLO client", "250 "), "\n")
	if strings.Contains(caps, "AUTH") || !strings.Contains(caps, "STARTTLS") {
		t.Fatalf("EHLO without TLS from another host: %q", caps)
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00pw"))
	c.do("AUTH PLAIN "+plain, "538 5.7.11 ")
	c.do("MAIL FROM:<alice@example.org>", "530 5.7.0 ")
	c.do("STARTTLS", "220 ")
	tlsConn := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true})
	if err := tlsConn.Handshake(); err != nil {
		t.Fatal(err)
	}
	c = &tc{t: t, c: tlsConn, r: bufio.NewReader(tlsConn)}
	caps = strings.Join(c.do("EHLO client", "250 "), "\n")
	if !strings.Contains(caps, "AUTH PLAIN") {
		t.Fatalf("no AUTH after STARTTLS: %q", caps)
	}
	c.do("AUTH PLAIN "+plain, "235 2.7.0 ")
	c.do("AUTH PLAIN "+plain, "503 ")
	c.do("MAIL FROM:<alice@example.org>", "250 ")
	c.do("RCPT TO:<bob@example.org>", "250 ")
	c.do("RCPT TO:<someone@elsewhere.example>", "550 5.7.1 ")
	c.do("DATA", "354 ")
	c.send("From: Alice <alice@example.org>\r\nSubject: hi\r\n\r\nhello\r\n.")
	c.expect("250 ")
	msgs := fs.messages("bob@example.org")
	if len(msgs) != 1 || !strings.Contains(string(msgs[0]), "with ESMTPSA") || !strings.Contains(string(msgs[0]), "\r\nMessage-ID: <") ||
		!strings.Contains(string(msgs[0]), "\r\nDate: ") {
		t.Fatalf("bob got %q", msgs)
	}
}

// TestBuildHeaders: the recipients' header loses Bcc:, the Sent copy's
// has one Bcc: with the blind recipients, envelope ones included.
func TestBuildHeaders(t *testing.T) {
	h := message.ParseHeader([]byte("From: a@example.org\r\nTo: B <b@example.org>\r\nBcc: c@example.org\r\nCc: d@x.example\r\nBcc: e@y.example\r\nSubject: s\r\n\r\n"))
	p := buildHeaders(h, []byte("Date: now\r\n"), []string{"B@example.org", "c@example.org", "d@x.example", "f@z.example"})
	want := "From: a@example.org\r\nTo: B <b@example.org>\r\nCc: d@x.example\r\nSubject: s\r\nDate: now\r\n\r\n"
	if string(p.header) != want {
		t.Errorf("header %q, want %q", p.header, want)
	}
	wantSent := strings.TrimSuffix(want, "\r\n") + "Bcc: c@example.org,\r\n e@y.example,\r\n f@z.example\r\n\r\n"
	if string(p.sent) != wantSent {
		t.Errorf("sent %q, want %q", p.sent, wantSent)
	}
}

// FuzzSubmitHeaders: whatever header a client submits, the recipients'
// header has no Bcc:, both end in the blank line, and the Sent copy's
// has at most one Bcc:.
func FuzzSubmitHeaders(f *testing.F) {
	f.Add([]byte("From: a@example.org\r\nBcc: x@y.example\r\n\r\n"), "r@example.org")
	f.Add([]byte("From: a@example.org\nBcc:\n\tx@y.example\nTo: <r@example.org>"), "r@example.org")
	f.Add([]byte("bcc : x\r\n \r\n\r\n"), "")
	f.Fuzz(func(t *testing.T, hdr []byte, rcpt string) {
		h, _ := message.ReadHeader(bytes.NewReader(hdr), 1<<16)
		p := buildHeaders(h, nil, []string{rcpt})
		for _, out := range [][]byte{p.header, p.sent} {
			if !bytes.HasSuffix(out, []byte("\r\n\r\n")) && !bytes.Equal(out, []byte("\r\n")) {
				t.Fatalf("header does not end in a blank line: %q", out)
			}
		}
		if message.ParseHeader(p.header).Has("Bcc") {
			t.Fatalf("Bcc: left in %q", p.header)
		}
		if n := len(message.ParseHeader(p.sent).Values("Bcc")); n > 1 {
			t.Fatalf("%d Bcc: fields in %q", n, p.sent)
		}
	})
}

// FuzzParseBURL: parseBURL never accepts a URL with blanks or controls,
// and a "LAST" it reports was there.
func FuzzParseBURL(f *testing.F) {
	f.Add("imap://a@h/INBOX;UIDVALIDITY=1/;UID=2;urlauth=submit+a:internal:00 LAST")
	f.Add("x LAST LAST")
	f.Add("")
	f.Fuzz(func(t *testing.T, arg string) {
		url, last, ok := parseBURL(arg)
		if !ok {
			return
		}
		if url == "" || strings.ContainsFunc(url, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			t.Fatalf("url %q accepted", url)
		}
		if last && !strings.Contains(strings.ToUpper(arg), "LAST") {
			t.Fatalf("LAST from %q", arg)
		}
	})
}

var _ = store.ErrNotFound
