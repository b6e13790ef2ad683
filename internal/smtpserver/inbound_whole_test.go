package smtpserver_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/dnstest"
	"github.com/postfach/postfach/internal/testenv"
)

// inboundSend sends one message over SMTP (DATA, or BDAT in one LAST
// chunk) and returns the reply to its end, e.g. "250 2.0.0 ...".
func inboundSend(t *testing.T, addr, from, to, msg string, bdat bool) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReader(c)
	reply := func() string {
		t.Helper()
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read reply: %v (%q)", err, l)
			}
			if len(l) < 4 || l[3] != '-' {
				return strings.TrimRight(l, "\r\n")
			}
		}
	}
	cmd := func(line, want string) {
		t.Helper()
		if line != "" {
			fmt.Fprintf(c, "%s\r\n", line)
		}
		if l := reply(); !strings.HasPrefix(l, want) {
			t.Fatalf("%q: %q, want %s", line, l, want)
		}
	}
	cmd("", "220")
	cmd("EHLO client.sender.example", "250")
	cmd("MAIL FROM:<"+from+">", "250")
	cmd("RCPT TO:<"+to+">", "250")
	if bdat {
		fmt.Fprintf(c, "BDAT %d LAST\r\n%s", len(msg), msg)
	} else {
		cmd("DATA", "354")
		fmt.Fprintf(c, "%s.\r\n", strings.ReplaceAll("\n"+msg, "\n.", "\n..")[1:])
	}
	res := reply()
	fmt.Fprintf(c, "QUIT\r\n")
	return res
}

func inboundMsg(from, subject string) string {
	return "From: " + from + "\r\nTo: alice@example.org\r\nSubject: " + subject +
		"\r\nDate: Mon, 07 Dec 2026 18:00:00 +0000\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@x>\r\n\r\nhello\r\n"
}

// TestInboundChecksWholeServer: SPF, DKIM and DMARC on the MX of the
// whole server against a test DNS server: mail signed by a second
// postfach passes, altered after signing is refused at DATA under
// p=reject, p=quarantine goes to Junk (by DATA and by BDAT), forged
// Authentication-Results of our hostname are replaced, a DNS outage
// defers and loses nothing, LMTP is not checked, and the results are
// counted.
func TestInboundChecksWholeServer(t *testing.T) {
	t.Parallel()
	dns := dnstest.New(t,
		// sender.example sends from elsewhere: only DKIM can pass.
		`sender.example. TXT "v=spf1 ip4:192.0.2.1 -all"`,
		`_dmarc.sender.example. TXT "v=DMARC1; p=reject"`,
		`quarantine.example. TXT "v=spf1 -all"`,
		`_dmarc.quarantine.example. TXT "v=DMARC1; p=quarantine"`,
		`spf.example. TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
		`_dmarc.spf.example. TXT "v=DMARC1; p=reject"`,
		`_dmarc.outage.example. TXT "v=DMARC1; p=reject"`,
		`outage.example. TXT "v=spf1 ip4:127.0.0.1 -all"`,
	)
	withDNS := func(c *config.Config) { c.DNS.Servers = []string{dns.Addr} }

	// The second postfach signs for sender.example.
	sender := testenv.Start(t, testenv.Options{Config: func(c *config.Config) {
		withDNS(c)
		c.Domains = []string{"sender.example"}
	}})
	ctx := context.Background()
	keys, err := sender.Server.Admin().DKIMKeygen(ctx, "sender.example", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		v := k.DNSValue
		var parts []string
		for len(v) > 0 {
			n := min(len(v), 255)
			parts = append(parts, `"`+v[:n]+`"`)
			v = v[n:]
		}
		dns.Add(t, k.DNSName+". TXT "+strings.Join(parts, " "))
	}
	signed := func(subject string) string {
		t.Helper()
		m := inboundMsg("Sender <someone@sender.example>", subject)
		sig, err := sender.Server.Signer().Sign(ctx, "sender.example", strings.NewReader(m))
		if err != nil {
			t.Fatal(err)
		}
		return string(sig) + m
	}

	e := testenv.Start(t, testenv.Options{Config: withDNS})
	e.AddUser("alice@example.org", "secret password")
	smtp := e.Addr("smtp")
	const alice = "alice@example.org"
	count := func(mailbox string) int { return len(e.Messages(alice, mailbox)) }

	// Signed by the second postfach: delivered, and said so on top.
	if r := inboundSend(t, smtp, "bounce@sender.example", alice, signed("signed"), false); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("signed: %s", r)
	}
	inbox := e.Messages(alice, "INBOX")
	if len(inbox) != 1 {
		t.Fatalf("INBOX has %d messages", len(inbox))
	}
	got := string(inbox[0])
	i := strings.Index(got, "Authentication-Results: mx.test.example;")
	if !strings.HasPrefix(got, "Return-Path: <bounce@sender.example>\r\n") || i < 0 || i > strings.Index(got, "Received:") {
		t.Fatalf("stored:\n%s", got)
	}
	for _, want := range []string{"spf=fail smtp.mailfrom=bounce@sender.example", "dkim=pass header.d=sender.example header.s=postfach-rsa",
		"dkim=pass header.d=sender.example header.s=postfach-ed25519", "dmarc=pass (p=reject) header.from=sender.example"} {
		if !strings.Contains(got, want) {
			t.Fatalf("no %q in\n%s", want, got)
		}
	}

	// Altered after signing: refused at DATA, nothing stored.
	altered := strings.Replace(signed("altered"), "hello", "pay me", 1)
	if r := inboundSend(t, smtp, "bounce@sender.example", alice, altered, false); !strings.HasPrefix(r, "550 5.7.1 ") {
		t.Fatalf("altered: %s", r)
	}
	if n := count("INBOX") + count("Junk"); n != 1 {
		t.Fatalf("%d messages after a refusal", n)
	}

	// p=quarantine: to Junk, by DATA and by BDAT.
	for _, bdat := range []bool{false, true} {
		if r := inboundSend(t, smtp, "x@quarantine.example", alice, inboundMsg("q@quarantine.example", "quarantined"), bdat); !strings.HasPrefix(r, "250 ") {
			t.Fatalf("quarantine (bdat %v): %s", bdat, r)
		}
	}
	if count("Junk") != 2 || count("INBOX") != 1 {
		t.Fatalf("after quarantine: INBOX %d, Junk %d", count("INBOX"), count("Junk"))
	}

	// A forged Authentication-Results of ours is replaced; another
	// server's stays.
	forged := "Authentication-Results: mx.test.example; dmarc=pass header.from=spf.example\r\n" +
		"Authentication-Results: other.example; spf=pass\r\n" + inboundMsg("a@spf.example", "forged results")
	if r := inboundSend(t, smtp, "a@spf.example", alice, forged, false); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("forged: %s", r)
	}
	inbox = e.Messages(alice, "INBOX")
	got = string(inbox[len(inbox)-1])
	if strings.Count(got, "Authentication-Results: mx.test.example;") != 1 || strings.Contains(got, "mx.test.example; dmarc=pass") ||
		!strings.Contains(got, "Authentication-Results: other.example; spf=pass\r\n") || !strings.Contains(got, "spf=pass smtp.mailfrom=a@spf.example") {
		t.Fatalf("forged results:\n%s", got)
	}

	// LMTP is not checked: the forged field stays, none is added.
	if err := lmtpSend(e.Addr("lmtp"), alice, forged); err != nil {
		t.Fatal(err)
	}
	inbox = e.Messages(alice, "INBOX")
	if got = string(inbox[len(inbox)-1]); !strings.Contains(got, "mx.test.example; dmarc=pass") || strings.Contains(got, "smtp.mailfrom") {
		t.Fatalf("lmtp:\n%s", got)
	}

	// A DNS outage: deferred with 451 4.4.3, nothing stored; once the
	// DNS answers, the retry is delivered, once.
	before := count("INBOX") + count("Junk")
	dns.Fail("_dmarc.outage.example.")
	outage := inboundMsg("a@outage.example", "outage")
	if r := inboundSend(t, smtp, "a@outage.example", alice, outage, false); !strings.HasPrefix(r, "451 4.4.3 ") {
		t.Fatalf("outage: %s", r)
	}
	if n := count("INBOX") + count("Junk"); n != before {
		t.Fatalf("stored during the outage: %d -> %d", before, n)
	}
	dns.Heal("_dmarc.outage.example.")
	if r := inboundSend(t, smtp, "a@outage.example", alice, outage, false); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("after the outage: %s", r)
	}
	if n := count("INBOX"); n != before-count("Junk")+1 {
		t.Fatalf("INBOX after the retry: %d", n)
	}

	// Results per mechanism in /metrics.
	resp, err := http.Get("http://" + e.Addr("http") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`postfach_inbound_auth_results_total{mechanism="dkim",result="pass"} 2`,
		`postfach_inbound_auth_results_total{mechanism="dmarc",result="fail"} 3`,
		`postfach_inbound_auth_results_total{mechanism="action",result="reject"} 1`,
		`postfach_inbound_auth_results_total{mechanism="action",result="defer"} 1`,
		`postfach_inbound_auth_results_total{mechanism="action",result="junk"} 2`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// lmtpSend delivers msg to rcpt over LMTP.
func lmtpSend(addr, rcpt, msg string) error {
	c, err := net.DialTimeout("tcp", addr, time.Minute)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	fmt.Fprintf(c, "LHLO x\r\nMAIL FROM:<a@spf.example>\r\nRCPT TO:<%s>\r\nDATA\r\n", rcpt)
	var replies []string
	for len(replies) < 6 {
		l, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if l[3] != '-' {
			replies = append(replies, l)
		}
		if len(replies) == 5 {
			fmt.Fprintf(c, "%s.\r\n", msg)
		}
	}
	if !strings.HasPrefix(replies[5], "250") {
		return fmt.Errorf("lmtp: %q", replies)
	}
	return nil
}

// With dmarc_reject = false a p=reject failure goes to Junk.
func TestInboundDMARCRejectOff(t *testing.T) {
	t.Parallel()
	dns := dnstest.New(t, `_dmarc.bank.example. TXT "v=DMARC1; p=reject"`)
	e := testenv.Start(t, testenv.Options{Config: func(c *config.Config) {
		c.DNS.Servers = []string{dns.Addr}
		c.Inbound.DMARCReject = false
	}})
	e.AddUser("alice@example.org", "secret password")
	if r := inboundSend(t, e.Addr("smtp"), "x@elsewhere.example", "alice@example.org", inboundMsg("ceo@bank.example", "phish"), false); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("reply %s", r)
	}
	if len(e.Messages("alice@example.org", "Junk")) != 1 || len(e.Messages("alice@example.org", "INBOX")) != 0 {
		t.Fatal("not in Junk")
	}
}
