package smtpserver

import (
	"strings"
	"sync"
	"testing"

	"github.com/postfach/postfach/internal/store"
)

// TestQuotaAtRcpt: a recipient at or over its quota, or taken over it by
// the announced SIZE=, gets 452 4.2.2 at RCPT; 552 5.2.2 when SIZE= alone
// is more than the whole quota; one under its quota takes the message
// even if it goes over then, and the others are not held back. LMTP
// answers per recipient.
func TestQuotaAtRcpt(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		fs := newFakeStore("alice@example.org", "bob@example.org", "carol@example.org", "dave@example.org", "erin@example.org")
		lim := store.Quota{Bytes: 1000}
		fs.setUsage("alice@example.org", store.Usage{Bytes: 900, Messages: 3, Limit: lim})
		fs.setUsage("bob@example.org", store.Usage{Bytes: 1000, Messages: 3, Limit: lim}) // exactly full
		fs.setUsage("carol@example.org", store.Usage{Bytes: 10, Messages: 1, Limit: lim})
		fs.setUsage("dave@example.org", store.Usage{Bytes: 10, Messages: 5, Limit: store.Quota{Messages: 5}})
		var mu sync.Mutex
		var kinds []string
		ts := startServer(t, fs, func(o *Options) {
			o.LMTP = lmtp
			o.Metrics.Error = func(proto, kind string) {
				mu.Lock()
				kinds = append(kinds, kind)
				mu.Unlock()
			}
		})
		c := dialT(t, ts.addr)
		c.expect("220 ")
		if lmtp {
			c.do("LHLO x", "250 ")
		} else {
			c.do("EHLO x", "250 ")
		}
		// Without SIZE=: only the full ones are refused.
		c.do("MAIL FROM:<sender@remote.example>", "250 ")
		c.do("RCPT TO:<alice@example.org>", "250 2.1.5")
		c.do("RCPT TO:<bob@example.org>", "452 4.2.2 Mailbox full")
		c.do("RCPT TO:<dave+tag@example.org>", "452 4.2.2")
		c.do("RCPT TO:<erin@example.org>", "250 2.1.5")
		c.do("DATA", "354 ")
		// 300 bytes take alice over: she was under, so she takes it.
		c.send("Subject: over by one\r\n\r\n" + strings.Repeat("x", 300) + "\r\n.")
		if lmtp {
			c.expect("250 2.0.0 <alice@example.org> Delivered")
			c.expect("250 2.0.0 <erin@example.org> Delivered")
		} else {
			c.expect("250 2.0.0 Message accepted")
		}
		// With SIZE=: what it would take over is refused, and a message
		// larger than the whole quota is refused for good.
		c.do("MAIL FROM:<sender@remote.example> SIZE=200", "250 ")
		c.do("RCPT TO:<alice@example.org>", "452 4.2.2")
		c.do("RCPT TO:<carol@example.org>", "250 2.1.5")
		c.do("RCPT TO:<erin@example.org>", "250 2.1.5")
		c.do("RSET", "250 ")
		c.do("MAIL FROM:<sender@remote.example> SIZE=1001", "250 ")
		c.do("RCPT TO:<carol@example.org>", "552 5.2.2")
		c.do("RCPT TO:<erin@example.org>", "250 2.1.5")
		// RSET forgets the size.
		c.do("RSET", "250 ")
		c.do("MAIL FROM:<sender@remote.example>", "250 ")
		c.do("RCPT TO:<carol@example.org>", "250 2.1.5")
		c.do("QUIT", "221 ")
		if n := len(fs.messages("alice@example.org")); n != 1 {
			t.Errorf("lmtp %v: alice has %d messages, want 1", lmtp, n)
		}
		if n := len(fs.messages("bob@example.org")) + len(fs.messages("dave@example.org")); n != 0 {
			t.Errorf("lmtp %v: the full mailboxes got %d messages", lmtp, n)
		}
		mu.Lock()
		if n := strings.Count(strings.Join(kinds, " "), "over_quota"); n != 4 {
			t.Errorf("lmtp %v: %d over_quota errors counted, want 4 (%v)", lmtp, n, kinds)
		}
		mu.Unlock()
	}
}
