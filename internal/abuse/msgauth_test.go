package abuse

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/dnstest"
	"github.com/postfach/postfach/internal/testenv"
)

// The sender authentication checks of the MX (issue 16) under hostile
// input: they cost a bounded amount of DNS and CPU per message, whatever
// the message and the sender's records say, and never lose or damage a
// message.

// msgauthEnv is a server whose DNS is dns.
func msgauthEnv(t *testing.T, dns *dnstest.Server) *testenv.Env {
	t.Helper()
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.DNS.Servers = []string{dns.Addr} }})
	env.AddUser("alice@example.org", "secret password")
	return env
}

// msgauthSend sends msg over SMTP and returns the reply to its end.
func msgauthSend(t *testing.T, env *testenv.Env, from, msg string) string {
	t.Helper()
	s := smtpDial(t, env, "smtp")
	s.hello("smtp")
	s.do("MAIL FROM:<"+from+">", "250 ")
	s.do("RCPT TO:<alice@example.org>", "250 ")
	s.do("DATA", "354 ")
	s.write(strings.ReplaceAll("\n"+msg, "\n.", "\n..")[1:] + ".\r\n")
	reply := s.expect("")
	s.do("QUIT", "221 ")
	return reply
}

// At most five DKIM signatures are verified per message (each costs a
// DNS lookup and a public-key operation): forty are not forty lookups.
func TestMsgauthManySignatures(t *testing.T) {
	t.Parallel()
	dns := dnstest.New(t)
	env := msgauthEnv(t, dns)
	var b strings.Builder
	for i := range 40 {
		fmt.Fprintf(&b, "DKIM-Signature: v=1; a=rsa-sha256; d=sig%d.example; s=s; h=from; bh=AAAA; b=BBBB%d\r\n", i, i)
	}
	b.WriteString("From: a@sender.example\r\nSubject: signatures\r\n\r\nbody\r\n")
	if r := msgauthSend(t, env, "a@sender.example", b.String()); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("reply %q", r)
	}
	lookups := 0
	for i := range 40 {
		lookups += dns.Queries(fmt.Sprintf("s._domainkey.sig%d.example.", i), "TXT")
	}
	if lookups > 5 {
		t.Fatalf("%d key lookups for one message", lookups)
	}
	msgs := env.Messages("alice@example.org", "INBOX")
	if len(msgs) != 1 || strings.Count(string(msgs[0]), "\tdkim=") != 5 {
		t.Fatalf("stored %d messages:\n%.2000s", len(msgs), msgs)
	}
}

// SPF's lookup limit (RFC 7208 §4.6.4) holds against a record that
// includes itself: a permerror after at most ten lookups, and the message
// is still delivered.
func TestMsgauthSPFLoop(t *testing.T) {
	t.Parallel()
	dns := dnstest.New(t,
		`loop.example. TXT "v=spf1 include:loop.example include:loop2.example -all"`,
		`loop2.example. TXT "v=spf1 include:loop.example -all"`,
	)
	env := msgauthEnv(t, dns)
	if r := msgauthSend(t, env, "a@loop.example", "From: a@loop.example\r\nSubject: loop\r\n\r\nbody\r\n"); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("reply %q", r)
	}
	if n := dns.Queries("loop.example.", "TXT") + dns.Queries("loop2.example.", "TXT"); n > 11 {
		t.Fatalf("%d SPF lookups for one message", n)
	}
	msgs := env.Messages("alice@example.org", "INBOX")
	if len(msgs) != 1 || !strings.Contains(string(msgs[0]), "spf=permerror") {
		t.Fatalf("stored:\n%.1000s", msgs)
	}
}

// A message larger than the spool's memory (a megabyte) goes through a
// temporary file: its signature still verifies, and it is stored byte
// for byte.
func TestMsgauthLargeMessageSpooled(t *testing.T) {
	t.Parallel()
	dns := dnstest.New(t, `_dmarc.big.example. TXT "v=DMARC1; p=reject"`)
	sender := testenv.Start(t, testenv.Options{Config: func(c *config.Config) {
		c.DNS.Servers = []string{dns.Addr}
		c.Domains = []string{"big.example"}
	}})
	keys, err := sender.Server.Admin().DKIMKeygen(context.Background(), "big.example", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		v, parts := k.DNSValue, []string{}
		for len(v) > 0 {
			n := min(len(v), 255)
			parts, v = append(parts, `"`+v[:n]+`"`), v[n:]
		}
		dns.Add(t, k.DNSName+". TXT "+strings.Join(parts, " "))
	}
	env := msgauthEnv(t, dns)
	var body strings.Builder
	for i := 0; body.Len() < 3<<20; i++ {
		fmt.Fprintf(&body, "line %07d of a big message, with some text to fill it up to the spool's limit\r\n", i)
	}
	msg := "From: a@big.example\r\nTo: alice@example.org\r\nSubject: big\r\n\r\n" + body.String()
	sig, err := sender.Server.Signer().Sign(context.Background(), "big.example", strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	signed := string(sig) + msg
	if r := msgauthSend(t, env, "a@big.example", signed); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("reply %q", r)
	}
	msgs := env.Messages("alice@example.org", "INBOX")
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	got := string(msgs[0])
	if !strings.Contains(got, "dmarc=pass") || strings.Count(got, "dkim=pass") != 2 {
		t.Fatalf("results:\n%.1500s", got)
	}
	if !strings.HasSuffix(got, signed) {
		t.Fatal("the stored message is not the message sent")
	}
}
