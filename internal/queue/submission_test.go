package queue_test

import (
	"bytes"
	"context"
	"net/smtp"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-msgauth/dkim"
)

// TestSubmissionToRemote is the path of issue 15 end to end ("Done
// when"): a new user's client submits through postfach's submission
// listener with AUTH, the server signs the message with the domain's
// DKIM keys, its outbound queue takes the remote recipient and delivers
// it over STARTTLS to a second postfach found by MX, which gets it once
// with both signatures valid; and the sender's Sent holds the message
// once, as another device's IMAP session, open from before the sending,
// sees it. The clients: Go's net/smtp, and swaks as a new user would test
// a server (STARTTLS, AUTH PLAIN).
func TestSubmissionToRemote(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		send func(t *testing.T, addr, msg string)
	}{
		{"net/smtp", submitNetSMTP},
		{"swaks", submitSwaks},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ca := newCA(t)
			remote := remoteMX(t, ca)
			dns := remoteDNS(t)
			s := startSender(t, dns, port(t, remote.Addr("smtp")), ca.pem, nil, nil)
			keys, err := s.Server.Admin().DKIMKeygen(context.Background(), "example.org", "")
			if err != nil || len(keys) != 2 {
				t.Fatalf("dkim keygen: %+v, %v", keys, err)
			}
			records := map[string]string{}
			for _, k := range keys {
				records[k.DNSName] = k.DNSValue
			}

			// Another device: an IMAP session on Sent before the sending.
			other, err := imapclient.DialInsecure(s.Addr("imap"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if err := other.Login("alice@example.org", "password").Wait(); err != nil {
				t.Fatalf("imap login: %v", err)
			}
			if sel, err := other.Select("Sent", nil).Wait(); err != nil || sel.NumMessages != 0 {
				t.Fatalf("select Sent: %+v, %v", sel, err)
			}

			mid := "across-" + strings.ReplaceAll(tc.name, "/", "-") + "@example.org"
			msg := "From: Alice <alice@example.org>\r\nTo: bob@remote.test\r\nSubject: across\r\nMessage-ID: <" + mid +
				">\r\nDate: Mon, 07 Dec 2026 18:00:00 +0000\r\n\r\nhello bob\r\n.a dot line\r\n"
			tc.send(t, s.Addr("submission"), msg)

			waitFor(t, "bob's message", func() bool { return len(remote.Messages("bob@remote.test", "INBOX")) > 0 })
			waitFor(t, "the queue to empty", func() bool { return s.Server.Queue().Len() == 0 })
			got := remote.Messages("bob@remote.test", "INBOX")
			if len(got) != 1 || !strings.Contains(string(got[0]), "Subject: across") || !strings.Contains(string(got[0]), "\r\n.a dot line\r\n") {
				t.Fatalf("bob has %d messages:\n%s", len(got), got)
			}
			// RFC 3848, RFC 6531 §4.3: ESMTPS, or UTF8SMTPS when the
			// client asked for SMTPUTF8 (net/smtp does when offered).
			if !strings.Contains(string(got[0]), "SMTPS id") {
				t.Errorf("not delivered over TLS:\n%s", got[0])
			}
			// RFC 6376, RFC 8463: both signatures verify as bob's server
			// got the message, with its own trace fields on top.
			vs, err := dkim.VerifyWithOptions(bytes.NewReader(got[0]), &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
				return []string{records[strings.TrimSuffix(name, ".")]}, nil
			}})
			if err != nil || len(vs) != 2 {
				t.Fatalf("dkim verify: %v, %d signatures, want 2\n%s", err, len(vs), got[0])
			}
			for _, v := range vs {
				if v.Err != nil || v.Domain != "example.org" {
					t.Errorf("signature d=%s: %v", v.Domain, v.Err)
				}
			}

			sent := s.Messages("alice@example.org", "Sent")
			if len(sent) != 1 || !strings.Contains(string(sent[0]), "Message-ID: <"+mid+">") {
				t.Errorf("Sent has %d messages, want the one sent", len(sent))
			}
			if n := len(s.Messages("alice@example.org", "INBOX")); n != 0 {
				t.Errorf("alice has %d messages in INBOX (a DSN?), want none", n)
			}
			if err := other.Noop().Wait(); err != nil {
				t.Fatal(err)
			}
			fetched, err := other.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Envelope: true}).Collect()
			if err != nil {
				t.Fatalf("fetch Sent: %v", err)
			}
			if len(fetched) != 1 || fetched[0].Envelope == nil || fetched[0].Envelope.MessageID != mid {
				t.Fatalf("the other session sees %d messages in Sent: %+v", len(fetched), fetched)
			}
		})
	}
}

func submitNetSMTP(t *testing.T, addr, msg string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// net/smtp sends PLAIN without TLS only to localhost; postfach
	// accepts it on loopback.
	if err := c.Auth(smtp.PlainAuth("", "alice@example.org", "password", "127.0.0.1")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := c.Mail("alice@example.org"); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	if err := c.Rcpt("bob@remote.test"); err != nil {
		t.Fatalf("RCPT: %v", err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
}

// submitSwaks sends msg with swaks over STARTTLS with AUTH PLAIN (the
// server's certificate is not checked: swaks does not by default).
func submitSwaks(t *testing.T, addr, msg string) {
	t.Helper()
	swaks := queueLookTool(t, "swaks")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, swaks, "--server", addr, "--tls", "--auth", "PLAIN",
		"--auth-user", "alice@example.org", "--auth-password", "password",
		"--from", "alice@example.org", "--to", "bob@remote.test", "--data", "-")
	cmd.Stdin = strings.NewReader(msg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "<-  250 ") || !strings.Contains(string(out), "235 ") {
		t.Fatalf("swaks transcript:\n%s", out)
	}
}

// queueLookTool finds an outside client; with POSTFACH_REQUIRE_TOOLS=1
// (as in CI) a missing one fails the test instead of skipping it.
func queueLookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("POSTFACH_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s not found and POSTFACH_REQUIRE_TOOLS=1: %v", name, err)
	}
	t.Skipf("%s not installed", name)
	return ""
}
