package queue_test

import (
	"context"
	"io"
	"mime/quotedprintable"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/dnstest"
	"github.com/postfach/postfach/internal/queue"
)

func sinkDNS(t *testing.T) *dnstest.Server {
	return dnstest.New(t,
		"sink.test. 300 IN MX 10 mx.sink.test.",
		"mx.sink.test. 300 IN A 127.0.0.1",
	)
}

const eightBitMsg = "From: alice@example.org\r\nTo: bob@sink.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
	"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln\r\n.punkt\r\n" +
	"--b\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\xff\xfe binary\r\n" +
	"--b\r\nContent-Type: text/plain\r\n\r\nplain ascii\r\n--b--\r\n"

// TestEightBitDownconversion: an 8-bit message goes as it is, with
// BODY=8BITMIME, to a hop that offers 8BITMIME, and converted to 7 bits
// (RFC 6152 §3) to one that does not: the text part in quoted-printable,
// the binary one in base64, both decoding to the original bytes.
func TestEightBitDownconversion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ext  []string
	}{
		{"with 8BITMIME", []string{"8BITMIME", "PIPELINING"}},
		{"without", []string{"PIPELINING"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sk := startSink(t, &sink{ext: tc.ext})
			s := startSender(t, sinkDNS(t), sk.port(), "", nil, nil)
			id := s.sendAs(t, &delivery.Outbound{Account: s.alice.ID, From: "alice@example.org", To: []string{"bob@sink.test"}, EightBit: true},
				eightBitMsg)
			waitFor(t, "delivery", func() bool { return s.entry(t, id) == nil })
			msgs := sk.messages()
			if len(msgs) != 1 {
				t.Fatalf("sink got %d messages", len(msgs))
			}
			m := msgs[0]
			if len(tc.ext) == 2 {
				if m.mail != "BODY=8BITMIME" || m.data != eightBitMsg {
					t.Fatalf("MAIL parameters %q, body changed: %v", m.mail, m.data != eightBitMsg)
				}
				return
			}
			if strings.Contains(m.mail, "8BITMIME") {
				t.Errorf("BODY=8BITMIME to a hop without it: %q", m.mail)
			}
			for i := 0; i < len(m.data); i++ {
				if c := m.data[i]; c >= 0x80 || c == 0 {
					t.Fatalf("8-bit byte %#x at %d in what went to a 7-bit hop:\n%q", c, i, m.data)
				}
			}
			if !strings.Contains(m.data, "Content-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: 7bit\r\n") ||
				strings.Count(m.data, "Content-Transfer-Encoding: quoted-printable") != 1 ||
				strings.Count(m.data, "Content-Transfer-Encoding: base64") != 1 ||
				!strings.Contains(m.data, "--b\r\nContent-Type: text/plain\r\n\r\nplain ascii\r\n--b--\r\n") {
				t.Fatalf("converted message:\n%s", m.data)
			}
			qp := between(m.data, "Content-Transfer-Encoding: quoted-printable\r\n\r\n", "\r\n--b")
			dec, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(qp)))
			if err != nil || string(dec) != "Grüße aus Köln\r\n.punkt" {
				t.Errorf("quoted-printable part decodes to %q, %v", dec, err)
			}
		})
	}
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	if j := strings.Index(s, b); j >= 0 {
		return s[:j]
	}
	return s
}

// TestSMTPUTF8: a message that needs SMTPUTF8 goes with the SMTPUTF8
// parameter to a hop that offers it, and to one that does not it is not
// sent at all but bounced (RFC 6531 §3.2) with status 5.6.7.
func TestSMTPUTF8(t *testing.T) {
	t.Parallel()
	for _, offered := range []bool{true, false} {
		t.Run(map[bool]string{true: "offered", false: "missing"}[offered], func(t *testing.T) {
			t.Parallel()
			ext := []string{"8BITMIME"}
			if offered {
				ext = append(ext, "SMTPUTF8")
			}
			sk := startSink(t, &sink{ext: ext})
			s := startSender(t, sinkDNS(t), sk.port(), "", nil, nil)
			id := s.sendAs(t, &delivery.Outbound{Account: s.alice.ID, From: "alice@example.org", To: []string{"jürgen@sink.test"},
				SMTPUTF8: true, EightBit: true}, msg("utf8", "hallo"))
			waitFor(t, "the entry to finish", func() bool { return s.entry(t, id) == nil })
			if offered {
				if m := sk.messages(); len(m) != 1 || !strings.Contains(m[0].mail, "SMTPUTF8") || m[0].rcpts[0] != "jürgen@sink.test" {
					t.Fatalf("sink got %+v", m)
				}
				return
			}
			if n := len(sk.messages()); n != 0 {
				t.Fatalf("sent %d messages to a hop without SMTPUTF8", n)
			}
			got := s.Messages("alice@example.org", "INBOX")
			if len(got) != 1 || !strings.Contains(string(got[0]), "Status: 5.6.7") ||
				!strings.Contains(string(got[0]), "message/global-delivery-status") ||
				!strings.Contains(string(got[0]), "Final-Recipient: utf-8; jürgen@sink.test") {
				t.Fatalf("DSN: %q", got)
			}
		})
	}
}

// TestOneConnectionSeveralMessages: messages waiting for one domain go
// over one connection, pipelined; each recipient's answer counts on its
// own (a refused one is bounced, the others delivered).
func TestOneConnectionSeveralMessages(t *testing.T) {
	t.Parallel()
	sk := startSink(t, &sink{ext: []string{"PIPELINING", "8BITMIME", "SIZE 100000"}, rcpt: func(a string) string {
		if strings.HasPrefix(a, "nobody") {
			return "550 5.1.1 no such user"
		}
		if strings.HasPrefix(a, "later") {
			return "451 4.2.0 try again"
		}
		return "250 2.1.5 ok"
	}})
	dns := sinkDNS(t)
	dns.Fail("sink.test")
	s := startSender(t, dns, sk.port(), "", nil, nil)
	var ids []string
	for i, to := range [][]string{{"a@sink.test"}, {"b@sink.test", "nobody@sink.test"}, {"c@sink.test", "later@sink.test"}} {
		ids = append(ids, s.send(t, to, msg("batch "+itoa(i), "body")))
	}
	for _, id := range ids {
		s.attempted(t, id, 1)
	}
	dns.Heal("sink.test")
	s.clock.add(5 * time.Minute)
	s.Server.Queue().Kick()
	waitFor(t, "the second attempts", func() bool {
		return s.entry(t, ids[0]) == nil && s.entry(t, ids[1]) == nil && s.entry(t, ids[2]) != nil && s.entry(t, ids[2]).Attempts == 2
	})
	if n := sk.connections(); n != 1 {
		t.Errorf("%d connections for three messages, want 1", n)
	}
	msgs := sk.messages()
	if len(msgs) != 3 {
		t.Fatalf("sink got %d messages", len(msgs))
	}
	for _, m := range msgs {
		if !strings.Contains(m.mail, "SIZE=") {
			t.Errorf("MAIL without SIZE to a hop with SIZE: %q", m.mail)
		}
	}
	e := s.entry(t, ids[2])
	if e.Recipients[0].State.String() != "delivered" || e.Recipients[1].State.String() != "pending" ||
		e.Recipients[1].Status != "4.2.0" || !strings.Contains(e.LastError, "451") {
		t.Errorf("entry with a deferred recipient: %+v", e)
	}
	got := s.Messages("alice@example.org", "INBOX")
	if len(got) != 1 || !strings.Contains(string(got[0]), "nobody@sink.test") || strings.Contains(string(got[0]), "Final-Recipient: rfc822; b@sink.test") {
		t.Fatalf("reports: %q", got)
	}
	// The next attempt sends only to the recipient still pending.
	s.clock.add(10 * time.Minute)
	s.Server.Queue().Kick()
	s.attempted(t, ids[2], 3)
	if m := sk.messages(); len(m) != 3 {
		t.Fatalf("a retry for a refused-only recipient delivered something: %d messages", len(m))
	}
}

// TestTooBigForHop: a hop whose SIZE is smaller than the message gets
// nothing, and the message bounces with 5.3.4.
func TestTooBigForHop(t *testing.T) {
	t.Parallel()
	sk := startSink(t, &sink{ext: []string{"SIZE 100"}})
	s := startSender(t, sinkDNS(t), sk.port(), "", nil, nil)
	id := s.send(t, []string{"b@sink.test"}, msg("big", strings.Repeat("x", 200)))
	waitFor(t, "the entry to finish", func() bool { return s.entry(t, id) == nil })
	if n := len(sk.messages()); n != 0 {
		t.Fatalf("sink got %d messages", n)
	}
	if got := s.Messages("alice@example.org", "INBOX"); len(got) != 1 || !strings.Contains(string(got[0]), "Status: 5.3.4") {
		t.Fatalf("reports: %q", got)
	}
}

// TestRelay: with [relay], mail goes to the smarthost whatever the
// recipient's domain: plain on loopback with tls = "none", and with
// STARTTLS and AUTH PLAIN (the credentials only after TLS); a relay
// that does not offer STARTTLS gets nothing when tls = "starttls".
func TestRelay(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	_, _, pair := ca.issue(t, "localhost")
	for _, tc := range []struct {
		name  string
		sink  *sink
		relay config.Relay
		ok    bool
	}{
		{"none on loopback", &sink{}, config.Relay{TLS: "none"}, true},
		{"starttls with auth", &sink{tls: tlsConfig(pair), ext: []string{"AUTH PLAIN LOGIN"}},
			config.Relay{TLS: "starttls", Username: "relayuser", Password: "secret"}, true},
		{"implicit with auth login", &sink{tls: tlsConfig(pair), impl: true, ext: []string{"AUTH LOGIN"}},
			config.Relay{TLS: "implicit", Username: "relayuser", Password: "secret"}, true},
		{"starttls not offered", &sink{ext: []string{"AUTH PLAIN"}},
			config.Relay{TLS: "starttls", Username: "relayuser", Password: "secret"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sk := startSink(t, tc.sink)
			dns := dnstest.New(t) // nothing: the relay needs no DNS
			s := startSender(t, dns, 25, ca.pem, func(c *config.Config) {
				c.Relay = tc.relay
				host := "127.0.0.1"
				if tc.sink.tls != nil {
					host = "localhost"
				}
				c.Relay.Host = host + ":" + itoa(sk.port())
			}, nil)
			id := s.send(t, []string{"x@anywhere.test"}, msg("relay", "body"))
			if !tc.ok {
				e := s.attempted(t, id, 1)
				if e == nil || !strings.Contains(e.LastError, "TLS") {
					t.Fatalf("entry: %+v", e)
				}
				sk.mu.Lock()
				defer sk.mu.Unlock()
				if len(sk.msgs) != 0 || len(sk.auths) != 0 {
					t.Fatalf("the relay without STARTTLS got %d messages, %d logins", len(sk.msgs), len(sk.auths))
				}
				return
			}
			waitFor(t, "delivery", func() bool { return s.entry(t, id) == nil })
			m := sk.messages()
			if len(m) != 1 || m[0].rcpts[0] != "x@anywhere.test" || m[0].tls != (tc.sink.tls != nil) {
				t.Fatalf("relay got %+v", m)
			}
			sk.mu.Lock()
			defer sk.mu.Unlock()
			if tc.relay.Username != "" && (len(sk.auths) != 1 || sk.auths[0] != "|relayuser|secret") {
				t.Fatalf("logins %q", sk.auths)
			}
		})
	}
}

// fakeSigner signs with a header naming the domain and a hash of what it
// was given, so the test sees what was signed.
type fakeSigner struct{}

func (fakeSigner) Sign(_ context.Context, domain string, r io.Reader) ([]byte, error) {
	b, _ := io.ReadAll(r)
	if domain == "" {
		return nil, nil
	}
	eight := "7bit"
	if queue.Needs8Bit(b) {
		eight = "8bit"
	}
	return []byte("DKIM-Signature: v=1; d=" + domain + "; x-signed=" + eight + "; x-len=" + itoa(len(b)) + "\r\n"), nil
}

// countingSigner is a fakeSigner that counts its calls.
type countingSigner struct {
	fakeSigner
	calls atomic.Int64
}

func (c *countingSigner) Sign(ctx context.Context, domain string, r io.Reader) ([]byte, error) {
	c.calls.Add(1)
	return c.fakeSigner.Sign(ctx, domain, r)
}

// TestSigner: each message is signed once, when queued, for its From:
// domain; an 8-bit message is converted to 7 bits before it is signed
// (RFC 6376 §5.3), so that no hop changes what was signed, and it is
// signed only in that form (an RSA signature costs about a millisecond).
func TestSigner(t *testing.T) {
	t.Parallel()
	sk := startSink(t, &sink{ext: []string{"8BITMIME"}})
	signer := &countingSigner{}
	s := startSender(t, sinkDNS(t), sk.port(), "", nil, func(o *queue.Options) { o.Signer = signer })
	id := s.sendAs(t, &delivery.Outbound{Account: s.alice.ID, From: "alice@example.org", To: []string{"bob@sink.test"}, EightBit: true},
		eightBitMsg)
	waitFor(t, "delivery", func() bool { return s.entry(t, id) == nil })
	m := sk.messages()
	if len(m) != 1 {
		t.Fatalf("sink got %d messages", len(m))
	}
	sig, rest, _ := strings.Cut(m[0].data, "\r\n")
	if sig != "DKIM-Signature: v=1; d=example.org; x-signed=7bit; x-len="+itoa(len(rest)) {
		t.Fatalf("signature %q for %d bytes", sig, len(rest))
	}
	if queue.Needs8Bit([]byte(m[0].data)) || strings.Contains(m[0].mail, "8BITMIME") {
		t.Fatalf("signed message still 8-bit: %q", m[0].mail)
	}
	if n := signer.calls.Load(); n != 1 {
		t.Fatalf("the message was signed %d times, want once", n)
	}
}
