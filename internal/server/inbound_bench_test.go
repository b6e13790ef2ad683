package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/dnstest"
	"github.com/postfach/postfach/internal/testenv"
)

// BenchmarkMXChecks delivers 2 KB messages over 8 concurrent SMTP
// connections to the MX of the whole server, with the sender
// authentication checks on (SPF pass, two DKIM signatures, DMARC
// p=reject, against a local DNS server; answers cached) and off, for
// issue 16's target: with checks at least 80 % of the rate without. Run:
//
//	go test -run '^$' -bench MXChecks -benchtime 5000x ./internal/server
func BenchmarkMXChecks(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) { benchMX(b, on) })
	}
}

func benchMX(b *testing.B, checks bool) {
	const conns = 8
	dns := dnstest.New(b,
		`sender.example. TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
		`_dmarc.sender.example. TXT "v=DMARC1; p=reject"`,
	)
	sender := testenv.Start(b, testenv.Options{Config: func(c *config.Config) {
		c.DNS.Servers = []string{dns.Addr}
		c.Domains = []string{"sender.example"}
		c.Listen.SMTP = ""
	}})
	keys, err := sender.Server.Admin().DKIMKeygen(context.Background(), "sender.example", "")
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range keys {
		v, parts := k.DNSValue, []string{}
		for len(v) > 0 {
			n := min(len(v), 255)
			parts, v = append(parts, `"`+v[:n]+`"`), v[n:]
		}
		dns.Add(b, k.DNSName+". TXT "+strings.Join(parts, " "))
	}
	env := testenv.Start(b, testenv.Options{Config: func(c *config.Config) {
		c.DNS.Servers = []string{dns.Addr}
		c.Inbound.SPF, c.Inbound.DKIM, c.Inbound.DMARC = checks, checks, checks
		c.Log.Level = "warn"
	}})
	for i := range 10 {
		env.AddUser(fmt.Sprintf("user%d@example.org", i), "pw")
	}
	msg := "From: bench@sender.example\r\nTo: user0@example.org\r\nSubject: benchmark\r\nDate: Mon, 07 Dec 2026 18:00:00 +0000\r\nMessage-ID: <bench@sender.example>\r\n\r\n" +
		strings.Repeat(strings.Repeat("x", 78)+"\r\n", 25)
	sig, err := sender.Server.Signer().Sign(context.Background(), "sender.example", strings.NewReader(msg))
	if err != nil {
		b.Fatal(err)
	}
	body := string(sig) + msg
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, conns)
	b.ResetTimer()
	start := time.Now()
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := benchMXConn(env.Addr("smtp"), w, body, func() bool { return next.Add(1) <= int64(b.N) }); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errc)
	for err := range errc {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	q := 0
	for _, n := range []string{"sender.example.", "_dmarc.sender.example.", "postfach-rsa._domainkey.sender.example.", "postfach-ed25519._domainkey.sender.example."} {
		q += dns.Queries(n, "TXT")
	}
	b.ReportMetric(float64(q), "dns-queries")
	if checks {
		// The checks ran, and passed.
		for i := range 10 {
			if inbox := env.Messages(fmt.Sprintf("user%d@example.org", i), "INBOX"); len(inbox) > 0 {
				if !strings.Contains(string(inbox[0]), "dmarc=pass") {
					b.Fatalf("the checks did not pass:\n%.1500s", inbox[0])
				}
				return
			}
		}
		b.Fatal("nothing in INBOX")
	}
}

// benchMXConn sends messages over one SMTP connection while more says so.
func benchMXConn(addr string, w int, body string, more func() bool) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	expect := func(want string) error {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if len(line) >= 4 && line[3] == '-' {
				continue
			}
			if !strings.HasPrefix(line, want) {
				return fmt.Errorf("got %q, want %q", line, want)
			}
			return nil
		}
	}
	send := func(s, want string) error {
		if _, err := io.WriteString(c, s); err != nil {
			return err
		}
		return expect(want)
	}
	if err := expect("220"); err != nil {
		return err
	}
	if err := send("EHLO mail.sender.example\r\n", "250"); err != nil {
		return err
	}
	for i := 0; more(); i++ {
		rcpt := fmt.Sprintf("user%d@example.org", (w+i)%10)
		if err := send("MAIL FROM:<bounce@sender.example>\r\n", "250"); err != nil {
			return err
		}
		if err := send("RCPT TO:<"+rcpt+">\r\n", "250"); err != nil {
			return err
		}
		if err := send("DATA\r\n", "354"); err != nil {
			return err
		}
		if err := send(body+".\r\n", "250"); err != nil {
			return err
		}
	}
	return send("QUIT\r\n", "221")
}
