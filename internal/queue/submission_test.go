package queue_test

import (
	"net/smtp"
	"strings"
	"testing"
)

// TestSubmissionToRemote is the path of issue 15 end to end: a client
// (Go's net/smtp) submits through postfach's submission listener with
// AUTH, the server's own outbound queue takes the remote recipient and
// delivers it over STARTTLS to a second postfach found by MX, and the
// sender's Sent holds the message once.
func TestSubmissionToRemote(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	remote := remoteMX(t, ca)
	dns := remoteDNS(t)
	s := startSender(t, dns, port(t, remote.Addr("smtp")), ca.pem, nil, nil)

	c, err := smtp.Dial(s.Addr("submission"))
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
	msg := "From: Alice <alice@example.org>\r\nTo: bob@remote.test\r\nSubject: across\r\nMessage-ID: <across-1@example.org>\r\n\r\nhello bob\r\n.a dot line\r\n"
	if _, err := w.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}

	waitFor(t, "bob's message", func() bool { return len(remote.Messages("bob@remote.test", "INBOX")) > 0 })
	got := remote.Messages("bob@remote.test", "INBOX")
	if len(got) != 1 || !strings.Contains(string(got[0]), "Subject: across") || !strings.Contains(string(got[0]), "\r\n.a dot line\r\n") {
		t.Fatalf("bob has %d messages:\n%s", len(got), got)
	}
	// RFC 3848, RFC 6531 §4.3: ESMTPS, or UTF8SMTPS when the client
	// asked for SMTPUTF8 (net/smtp does when offered).
	if !strings.Contains(string(got[0]), "SMTPS id") {
		t.Errorf("not delivered over TLS:\n%s", got[0])
	}
	waitFor(t, "the queue to empty", func() bool { return s.Server.Queue().Len() == 0 })
	sent := s.Messages("alice@example.org", "Sent")
	if len(sent) != 1 || !strings.Contains(string(sent[0]), "Message-ID: <across-1@example.org>") {
		t.Errorf("Sent has %d messages, want the one sent", len(sent))
	}
	if n := len(s.Messages("alice@example.org", "INBOX")); n != 0 {
		t.Errorf("alice has %d messages in INBOX (a DSN?), want none", n)
	}
}
