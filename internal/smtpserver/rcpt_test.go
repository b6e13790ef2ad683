package smtpserver

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestQuotedLocalPart: RFC 5321 §4.1.2. A quoted local part that is a
// Dot-string names the same mailbox as the Dot-string; one that needs
// its quotes is kept quoted: an unknown user here, or a sender as sent.
func TestQuotedLocalPart(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		fs := newFakeStore("alice@example.org", "bob@example.org")
		ts := startServer(t, fs, func(o *Options) { o.LMTP = lmtp })
		c := dialT(t, ts.addr)
		c.expect("220 ")
		if lmtp {
			c.do("LHLO x", "250 ")
		} else {
			c.do("EHLO x", "250 ")
		}
		c.do(`MAIL FROM:<"bob"@example.org>`, "250 2.1.0")
		c.do(`RCPT TO:<"alice"@example.org>`, "250 2.1.5")
		c.do(`RCPT TO:<"b\ob"@example.org>`, "250 2.1.5")
		c.do(`RCPT TO:<"no such user"@example.org>`, "550 5.1.1")
		c.do(`RCPT TO:<"alice smith"@elsewhere.example>`, "550 5.7.1")
		c.do(`RCPT TO:<"alice@example.org>`, "501 5.5.4") // the quote hides the bracket
		c.do(`RCPT TO:<"alice"x@example.org>`, "501 5.1.3")
		c.do("DATA", "354 ")
		c.write("Subject: q\r\n\r\nquoted\r\n.\r\n")
		if lmtp {
			c.expectAll("250 2.0.0 <alice@example.org> Delivered", "250 2.0.0 <bob@example.org> Delivered")
		} else {
			c.expect("250 2.0.0")
		}
		c.do(`MAIL FROM:<"john q. doe"@remote.example>`, "250 2.1.0")
		c.do("RCPT TO:<alice@example.org>", "250 2.1.5")
		c.do("DATA", "354 ")
		c.write("Subject: q2\r\n\r\nquoted sender\r\n.\r\n")
		c.expect("250 2.0.0")
		c.do(`MAIL FROM:<"a`+"\x01"+`"@remote.example>`, "501 5.1.7")
		c.do("QUIT", "221 ")

		msgs := fs.messages("alice@example.org")
		if len(msgs) != 2 || len(fs.messages("bob@example.org")) != 1 {
			t.Fatalf("lmtp %v: stored %q and %q", lmtp, msgs, fs.messages("bob@example.org"))
		}
		if !strings.HasPrefix(string(msgs[0]), "Return-Path: <bob@example.org>\r\n") {
			t.Errorf("lmtp %v: first message %q", lmtp, msgs[0])
		}
		if !strings.HasPrefix(string(msgs[1]), "Return-Path: <\"john q. doe\"@remote.example>\r\n") ||
			!strings.Contains(string(msgs[1]), "for <alice@example.org>;") {
			t.Errorf("lmtp %v: second message %q", lmtp, msgs[1])
		}
	}
}

// TestSequenceReplies: DATA and BDAT out of sequence get a reply that
// says what is missing (RFC 5321 §3.3, §4.1.4; RFC 3030 §2).
func TestSequenceReplies(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		fs := newFakeStore("alice@example.org")
		ts := startServer(t, fs, func(o *Options) { o.LMTP = lmtp })
		c := dialT(t, ts.addr)
		c.expect("220 ")
		if lmtp {
			c.do("LHLO x", "250 ")
		} else {
			c.do("EHLO x", "250 ")
		}
		c.do("DATA", "503 5.5.1 Need MAIL and RCPT first")
		c.write("BDAT 3\r\nabc")
		c.expect("503 5.5.1 Need MAIL and RCPT first")
		c.do("RCPT TO:<alice@example.org>", "503 5.5.1 Need MAIL before RCPT")
		c.do("MAIL FROM:<a@b.example>", "250 ")
		c.do("DATA", "503 5.5.1 Need RCPT before DATA")
		c.write("BDAT 3\r\nabc")
		c.expect("503 5.5.1 Need RCPT before BDAT")
		c.do("RCPT TO:<alice@example.org>", "250 ")
		// DATA after a BDAT chunk: RFC 3030 §2, 503 and RSET needed.
		c.write("BDAT 3\r\nabcDATA\r\n")
		c.expectAll("250 2.0.0 3 octets", "503 5.5.1 DATA not allowed after BDAT")
		c.do("DATA", "503 5.5.1 DATA not allowed after BDAT")
		c.write("BDAT 2 LAST\r\nab")
		c.expect("503 5.5.1 BDAT transaction was abandoned")
		c.do("RSET", "250 ")
		c.do("DATA", "503 5.5.1 Need MAIL and RCPT first")
		// After RSET all is well again.
		c.do("MAIL FROM:<a@b.example>", "250 ")
		c.do("RCPT TO:<alice@example.org>", "250 ")
		c.write("BDAT 10 LAST\r\nSubject: x")
		c.expect("250 2.0.0")
		// A BDAT transaction given up with MAIL: the new one works.
		c.do("MAIL FROM:<a@b.example>", "250 ")
		c.do("RCPT TO:<alice@example.org>", "250 ")
		c.write("BDAT 1\r\nxMAIL FROM:<c@d.example>\r\n")
		c.expectAll("250 2.0.0 1 octets", "250 2.1.0")
		c.do("RCPT TO:<alice@example.org>", "250 ")
		c.do("DATA", "354 ")
		c.write("Subject: y\r\n\r\n.\r\n")
		c.expect("250 2.0.0")
		if n := len(fs.messages("alice@example.org")); n != 2 {
			t.Errorf("lmtp %v: %d messages stored, want 2", lmtp, n)
		}
	}
}

// fakeSleep records the delays asked for instead of waiting.
type fakeSleep struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (f *fakeSleep) sleep(ctx context.Context, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delays = append(f.delays, d)
}

func (f *fakeSleep) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.delays)
}

// TestUnknownRcptLimits (issue 11, item 13): on SMTP, the unknown
// recipients after DelayAfter are answered after a delay, and the one
// after Max gets 421 4.7.0 and the session ends. Known recipients, foreign
// domains and RSET do not reset or raise the count.
func TestUnknownRcptLimits(t *testing.T) {
	fs := newFakeStore("alice@example.org")
	sl := &fakeSleep{}
	ts := startServer(t, fs, func(o *Options) {
		o.LMTP = false
		o.UnknownRcpts = UnknownRcptLimits{DelayAfter: 2, Delay: 3 * time.Second, Max: 4, Sleep: sl.sleep}
	})
	c := dialT(t, ts.addr)
	c.expect("220 ")
	c.do("EHLO x", "250 ")
	c.do("MAIL FROM:<a@b.example>", "250 ")
	c.do("RCPT TO:<ghost1@example.org>", "550 5.1.1")
	c.do("RCPT TO:<alice@example.org>", "250 ")
	c.do("RCPT TO:<someone@elsewhere.example>", "550 5.7.1")
	c.do("RCPT TO:<ghost2@example.org>", "550 5.1.1")
	if n := sl.count(); n != 0 {
		t.Fatalf("%d delays for 2 unknown recipients", n)
	}
	c.do("RSET", "250 ")
	c.do("MAIL FROM:<a@b.example>", "250 ")
	c.do("RCPT TO:<ghost3@example.org>", "550 5.1.1")
	c.do(`RCPT TO:<"ghost 4"@example.org>`, "550 5.1.1")
	if sl.count() != 2 || sl.delays[0] != 3*time.Second {
		t.Fatalf("delays %v, want two of 3s", sl.delays)
	}
	c.do("RCPT TO:<alice@example.org>", "250 ")
	c.do("RCPT TO:<ghost5@example.org>", "421 4.7.0")
	c.expectClosed()
	if n := sl.count(); n != 2 {
		t.Errorf("%d delays, want 2 (the 421 is not delayed)", n)
	}
}

// TestUnknownRcptDefaults: the defaults are 5 undelayed unknown
// recipients, then 1 s each, and 421 at the 21st on SMTP; LMTP has no
// limit unless one is set.
func TestUnknownRcptDefaults(t *testing.T) {
	l := UnknownRcptLimits{}.withDefaults(false)
	if l.DelayAfter != 5 || l.Delay != time.Second || l.Max != 20 || l.Sleep == nil {
		t.Errorf("SMTP defaults %+v", l)
	}
	l = UnknownRcptLimits{}.withDefaults(true)
	if l.DelayAfter >= 0 || l.Max >= 0 {
		t.Errorf("LMTP defaults %+v", l)
	}
	if l := (UnknownRcptLimits{Max: 3}).withDefaults(true); l.Max != 3 || l.DelayAfter >= 0 {
		t.Errorf("LMTP with a limit set: %+v", l)
	}
	if l := (UnknownRcptLimits{DelayAfter: 0, Delay: time.Millisecond}).withDefaults(false); l.Max >= 0 || l.DelayAfter != 0 {
		t.Errorf("SMTP with a delay from the first and no limit: %+v", l)
	}

	fs := newFakeStore("alice@example.org")
	sl := &fakeSleep{}
	ts := startServer(t, fs, func(o *Options) { o.LMTP = false; o.UnknownRcpts = UnknownRcptLimits{Sleep: sl.sleep} })
	c := dialT(t, ts.addr)
	c.expect("220 ")
	c.do("EHLO x", "250 ")
	c.do("MAIL FROM:<a@b.example>", "250 ")
	for i := range 20 {
		c.do("RCPT TO:<ghost"+itoa(i)+"@example.org>", "550 5.1.1")
	}
	if n := sl.count(); n != 15 {
		t.Errorf("%d delays for 20 unknown recipients, want 15", n)
	}
	c.do("RCPT TO:<ghost20@example.org>", "421 4.7.0")
	c.expectClosed()

	// LMTP: the MTA in front is trusted and reuses its connection.
	lt := startServer(t, fs, func(o *Options) {
		o.UnknownRcpts = UnknownRcptLimits{Sleep: func(context.Context, time.Duration) { t.Error("LMTP delayed an unknown recipient") }}
	})
	c = dialT(t, lt.addr)
	c.expect("220 ")
	c.do("LHLO x", "250 ")
	c.do("MAIL FROM:<a@b.example>", "250 ")
	for i := range 30 {
		c.do("RCPT TO:<ghost"+itoa(i)+"@example.org>", "550 5.1.1")
	}
	c.do("RCPT TO:<alice@example.org>", "250 ")
}

// TestSameAccountRecipients: several recipients of one transaction that
// are the same account (subaddresses, the address twice) get one copy;
// LMTP answers each of them, in RCPT order, with that copy's result.
func TestSameAccountRecipients(t *testing.T) {
	fs := newFakeStore("carol@example.org", "dave@example.org")
	ts := startServer(t, fs, nil)
	c := dialT(t, ts.addr)
	c.expect("220 ")
	c.do("LHLO x", "250 ")
	c.do("MAIL FROM:<a@b.example>", "250 ")
	c.do("RCPT TO:<carol+a@example.org>", "250 2.1.5")
	c.do("RCPT TO:<dave@example.org>", "250 2.1.5")
	c.do("RCPT TO:<carol+b@example.org>", "250 2.1.5")
	c.do("RCPT TO:<Carol@example.org>", "250 2.1.5")
	c.do("DATA", "354 ")
	c.write("Subject: once\r\n\r\nbody\r\n.\r\n")
	c.expectAll("250 2.0.0 <carol+a@example.org> Delivered", "250 2.0.0 <dave@example.org> Delivered",
		"250 2.0.0 <carol+b@example.org> Delivered", "250 2.0.0 <Carol@example.org> Delivered")
	if n, m := len(fs.messages("carol@example.org")), len(fs.messages("dave@example.org")); n != 1 || m != 1 {
		t.Errorf("carol has %d copies, dave %d; want one each", n, m)
	}
	// A failure of that account is each of its recipients' failure.
	fs.failFor["carol@example.org"] = context.DeadlineExceeded
	c.do("MAIL FROM:<a@b.example>", "250 ")
	c.do("RCPT TO:<carol+a@example.org>", "250 ")
	c.do("RCPT TO:<dave@example.org>", "250 ")
	c.do("RCPT TO:<carol+b@example.org>", "250 ")
	c.do("DATA", "354 ")
	c.write("Subject: twice\r\n\r\nbody\r\n.\r\n")
	c.expectAll("451 4.3.0 <carol+a@example.org>", "250 2.0.0 <dave@example.org>", "451 4.3.0 <carol+b@example.org>")
}
