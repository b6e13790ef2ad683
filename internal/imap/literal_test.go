package imap

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

// countingReader serves a prefix and then an endless run of filler bytes,
// counting what was read.
type countingReader struct {
	prefix string
	filler byte
	n      int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k := 0
	for k < len(p) {
		if int(c.n) < len(c.prefix) {
			p[k] = c.prefix[c.n]
		} else {
			p[k] = c.filler
		}
		k++
		c.n++
	}
	return k, nil
}

func wantParseError(t *testing.T, err error, status, code, reason string, fatal bool) *ParseError {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want ParseError %q", err, reason)
	}
	if pe.Status != status || pe.Code != code || pe.Reason != reason || pe.Fatal != fatal {
		t.Fatalf("got %+v, want %s [%s] %q fatal=%v", pe, status, code, reason, fatal)
	}
	return pe
}

func TestHugeSyncLiteralNotRead(t *testing.T) {
	// A 10 GB literal announcement is refused before anything of it is
	// read, without a continuation request; the client then sends the
	// next command.
	r, n := newTestReader("a LOGIN {10000000000}\r\nb NOOP\r\n", Options{})
	_, err := r.ReadCommand()
	pe := wantParseError(t, err, BAD, "TOOBIG", "literal too big", false)
	if pe.Tag != "a" {
		t.Errorf("tag %q", pe.Tag)
	}
	if *n != 0 {
		t.Errorf("%d continuation requests sent", *n)
	}
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
}

func TestHugeNonSyncLiteralFatal(t *testing.T) {
	// A 10 GB non-synchronizing literal can not be skipped within
	// MaxDiscard: the error is fatal and little is read.
	src := &countingReader{prefix: "a LOGIN {10000000000+}\r\n", filler: 'x'}
	r := NewReader(bufio.NewReaderSize(src, 4096), nil, Options{})
	_, err := r.ReadCommand()
	wantParseError(t, err, BAD, "TOOBIG", "literal too big", true)
	if src.n > 8192 {
		t.Errorf("read %d bytes", src.n)
	}
	// Even a number that does not fit in 63 bits.
	r, _ = newTestReader("a LOGIN {99999999999999999999999+}\r\n", Options{})
	_, err = r.ReadCommand()
	wantParseError(t, err, BAD, "TOOBIG", "literal too big", true)
}

func TestNonSyncLiteralDiscarded(t *testing.T) {
	in := "a LOGIN {20+}\r\n01234567890123456789 x\r\nb NOOP\r\n"
	r, _ := newTestReader(in, Options{MaxLiteral: 10})
	_, err := r.ReadCommand()
	wantParseError(t, err, BAD, "TOOBIG", "literal too big", false)
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
	// Over MaxDiscard: fatal.
	r, _ = newTestReader(in, Options{MaxLiteral: 10, MaxDiscard: 15})
	_, err = r.ReadCommand()
	wantParseError(t, err, BAD, "TOOBIG", "literal too big", true)
}

func TestLiteralMinus(t *testing.T) {
	big := strings.Repeat("x", 5000)
	r, _ := newTestReader("a LOGIN {5000+}\r\n"+big+" y\r\nb NOOP\r\n", Options{LiteralMinus: true})
	_, err := r.ReadCommand()
	wantParseError(t, err, BAD, "TOOBIG", "non-synchronizing literal larger than 4096 bytes", false)
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
	// A synchronizing literal of that size is fine.
	r, _ = newTestReader("a LOGIN {5000}\r\n"+big+" y\r\n", Options{LiteralMinus: true})
	if c, err := r.ReadCommand(); err != nil || c.(*Login).Username != big {
		t.Fatalf("sync literal: %v", err)
	}
	// And so is a small non-synchronizing one.
	r, _ = newTestReader("a LOGIN {4096+}\r\n"+big[:4096]+" y\r\n", Options{LiteralMinus: true})
	if _, err := r.ReadCommand(); err != nil {
		t.Fatalf("4096: %v", err)
	}
}

func TestLineTooLong(t *testing.T) {
	long := "a LOGIN " + strings.Repeat("x", 1000)
	tests := []struct {
		name, in string
	}{
		{"plain", long + "\r\nb NOOP\r\n"},
		{"non-sync literal at its end", long + " {5+}\r\n12345 rest\r\nb NOOP\r\n"},
		{"sync literal at its end", long + " {5}\r\nb NOOP\r\n"},
	}
	for _, tc := range tests {
		r, n := newTestReader(tc.in, Options{MaxLine: 100})
		_, err := r.ReadCommand()
		pe := wantParseError(t, err, BAD, "", "command line too long", false)
		if pe.Tag != "a" {
			t.Errorf("%s: tag %q", tc.name, pe.Tag)
		}
		if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
			t.Fatalf("%s: next: %v %v", tc.name, c, err)
		}
		if *n != 0 {
			t.Errorf("%s: continuation sent", tc.name)
		}
	}
	// A line longer than the bufio buffer, cut in the middle.
	r := NewReader(bufio.NewReaderSize(strings.NewReader(strings.Repeat("y", 100000)+"\r\nb NOOP\r\n"), 16), nil, Options{MaxLine: 50})
	_, err := r.ReadCommand()
	wantParseError(t, err, BAD, "", "command line too long", false)
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
	// A continuation line after a literal.
	r, _ = newTestReader("a LOGIN {1}\r\nx "+strings.Repeat("z", 200)+"\r\nb NOOP\r\n", Options{MaxLine: 100})
	_, err = r.ReadCommand()
	wantParseError(t, err, BAD, "", "command line too long", false)
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
}

func TestEndlessLineFatal(t *testing.T) {
	src := &countingReader{prefix: "a NOOP ", filler: 'x'}
	r := NewReader(bufio.NewReaderSize(src, 4096), nil, Options{MaxLine: 1000, MaxDiscard: 100000})
	_, err := r.ReadCommand()
	wantParseError(t, err, BAD, "", "command line too long", true)
	if src.n > 100000+2*4096 {
		t.Errorf("read %d bytes", src.n)
	}
}

func TestMaxCommand(t *testing.T) {
	lit := strings.Repeat("x", 60)
	in := "a LOGIN {60}\r\n" + lit + " {60+}\r\n" + lit + "\r\nb NOOP\r\n"
	r, n := newTestReader(in, Options{MaxCommand: 100})
	_, err := r.ReadCommand()
	wantParseError(t, err, BAD, "", "command too long", false)
	if *n != 1 {
		t.Errorf("continuations: %d, want 1", *n)
	}
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
}

// readAll reads a literal fully.
func readAll(t *testing.T, l *Literal) string {
	t.Helper()
	rd, err := l.Open()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAppend(t *testing.T) {
	in := "a APPEND saved-messages (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {10}\r\n0123456789 {3+}\r\nabc (\\Draft $x) ~{2}\r\n\x00\x01 UTF8 (~{3+}\r\nxyz)\r\nb NOOP\r\n"
	r, n := newTestReader(in, Options{})
	cmd, err := r.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	app := cmd.(*Append)
	if app.Tag != "a" || app.Name != "APPEND" || app.Mailbox != "saved-messages" {
		t.Fatalf("append %+v", app.CommandBase)
	}
	var got []string
	for {
		m, err := app.Next()
		if err != nil {
			t.Fatal(err)
		}
		if m == nil {
			break
		}
		desc := strings.Join(m.Flags, ",") + "|" + m.Date.Format(dateTimeLayout) + "|"
		if m.Literal.Sync {
			desc += "sync|"
		}
		if m.Literal.Binary {
			desc += "binary|"
		}
		if m.UTF8 {
			desc += "utf8|"
		}
		got = append(got, desc+readAll(t, m.Literal))
	}
	want := []string{
		`\Seen| 7-Feb-1994 21:52:25 -0800|sync|0123456789`,
		`| 1-Jan-0001 00:00:00 +0000|abc`,
		"$x,\\Draft| 1-Jan-0001 00:00:00 +0000|sync|binary|\x00\x01",
		`| 1-Jan-0001 00:00:00 +0000|binary|utf8|xyz`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("messages:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if *n != 2 {
		t.Errorf("continuations: %d, want 2", *n)
	}
	if m, err := app.Next(); m != nil || err != nil {
		t.Errorf("Next after end: %v %v", m, err)
	}
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
	if _, err := app.Next(); err != ErrStreamDone {
		t.Errorf("Next after ReadCommand: %v", err)
	}
}

func TestAppendCatenate(t *testing.T) {
	text1 := "\r\n--------------030308070208000400050903\r\n"
	in := "A003 APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER\" TEXT {42}\r\n" +
		text1 + " URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME\" UTF8 (~{3}\r\nxyz) TEXT {4+}\r\nlast)\r\nb NOOP\r\n"
	r, n := newTestReader(in, Options{})
	cmd, err := r.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	app := cmd.(*Append)
	m, err := app.Next()
	if err != nil || !m.Catenate || m.Literal != nil || len(m.Flags) != 3 {
		t.Fatalf("message: %+v %v", m, err)
	}
	var got []string
	for {
		p, err := m.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		if p == nil {
			break
		}
		if p.URL != "" {
			got = append(got, "URL "+p.URL)
		} else {
			got = append(got, "TEXT "+readAll(t, p.Text))
		}
	}
	want := []string{
		"URL /Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER",
		"TEXT " + text1,
		"URL /Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME",
		"TEXT xyz",
		"TEXT last",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("parts %q\nwant %q", got, want)
	}
	if m, err := app.Next(); m != nil || err != nil {
		t.Fatalf("end: %v %v", m, err)
	}
	if *n != 2 {
		t.Errorf("continuations: %d", *n)
	}
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
}

func TestAppendAbort(t *testing.T) {
	// Refusing a synchronizing literal: nothing is read, no continuation.
	r, n := newTestReader("a APPEND nosuch {5}\r\nb NOOP\r\n", Options{})
	cmd, _ := r.ReadCommand()
	app := cmd.(*Append)
	if m, err := app.Next(); err != nil || m.Literal.Size != 5 {
		t.Fatalf("%v %v", m, err)
	}
	if err := app.Abort(); err != nil {
		t.Fatal(err)
	}
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" || *n != 0 {
		t.Fatalf("next: %v %v, %d continuations", c, err, *n)
	}
	// Refusing a non-synchronizing literal: it is read and discarded.
	r, _ = newTestReader("a APPEND nosuch {5+}\r\nhello {3+}\r\nabc\r\nb NOOP\r\n", Options{})
	cmd, _ = r.ReadCommand()
	app = cmd.(*Append)
	app.Next()
	if err := app.Abort(); err != nil {
		t.Fatal(err)
	}
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
	// Refusing part-way through reading: the rest is drained.
	r, _ = newTestReader("a APPEND x {10}\r\n0123456789\r\nb NOOP\r\n", Options{})
	cmd, _ = r.ReadCommand()
	app = cmd.(*Append)
	m, _ := app.Next()
	rd, _ := m.Literal.Open()
	buf := make([]byte, 3)
	io.ReadFull(rd, buf)
	if err := app.Abort(); err != nil {
		t.Fatal(err)
	}
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
	// A non-synchronizing literal beyond MaxDiscard: fatal.
	r, _ = newTestReader("a APPEND x {50+}\r\n"+strings.Repeat("x", 50)+"\r\n", Options{MaxDiscard: 10})
	cmd, _ = r.ReadCommand()
	app = cmd.(*Append)
	app.Next()
	var pe *ParseError
	if err := app.Abort(); !errors.As(err, &pe) || !pe.Fatal || pe.Tag != "a" {
		t.Fatalf("abort: %v", err)
	}
}

func TestAppendErrors(t *testing.T) {
	// Over MaxAppend: NO [TOOBIG], before anything is read.
	r, n := newTestReader("a APPEND INBOX {100}\r\nb NOOP\r\n", Options{MaxAppend: 10})
	cmd, _ := r.ReadCommand()
	_, err := cmd.(*Append).Next()
	pe := wantParseError(t, err, NO, "TOOBIG", "message too big", false)
	if pe.Tag != "a" || *n != 0 {
		t.Errorf("tag %q, %d continuations", pe.Tag, *n)
	}
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
	// LITERAL-: BAD [TOOBIG].
	r, _ = newTestReader("a APPEND INBOX {5000+}\r\n"+strings.Repeat("x", 5000)+"\r\nb NOOP\r\n", Options{LiteralMinus: true})
	cmd, _ = r.ReadCommand()
	_, err = cmd.(*Append).Next()
	wantParseError(t, err, BAD, "TOOBIG", "non-synchronizing literal larger than 4096 bytes", false)
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
	// Junk after a message.
	r, _ = newTestReader("a APPEND INBOX {3}\r\nabc junk\r\nb NOOP\r\n", Options{})
	cmd, _ = r.ReadCommand()
	app := cmd.(*Append)
	m, _ := app.Next()
	readAll(t, m.Literal)
	_, err = app.Next()
	wantParseError(t, err, BAD, "", "expected message literal", false)
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
	// No message at all.
	r, _ = newTestReader("a APPEND INBOX\r\nb NOOP\r\n", Options{})
	cmd, _ = r.ReadCommand()
	_, err = cmd.(*Append).Next()
	wantParseError(t, err, BAD, "", "missing argument", false)
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
	// Bad date.
	r, _ = newTestReader("a APPEND INBOX \"31-Feb-2020 00:00:00 +0000\" {1}\r\n", Options{})
	cmd, _ = r.ReadCommand()
	_, err = cmd.(*Append).Next()
	wantParseError(t, err, BAD, "", "invalid day of month", false)
}

func TestAppendUnreadMessages(t *testing.T) {
	// The server forgets the rest of an APPEND: the next ReadCommand
	// skips it (and drains data it was sent), Next does it when a
	// literal was not opened.
	r, _ := newTestReader("a APPEND x {3+}\r\nabc {3+}\r\ndef\r\nb NOOP\r\n", Options{})
	cmd, _ := r.ReadCommand()
	cmd.(*Append).Next()
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" {
		t.Fatalf("next: %v %v", c, err)
	}
	r, n := newTestReader("a APPEND x {3}\r\nabc {3}\r\ndef\r\nb NOOP\r\n", Options{})
	cmd, _ = r.ReadCommand()
	app := cmd.(*Append)
	app.Next()
	m, err := app.Next() // drains the first, unopened
	if err != nil || readAll(t, m.Literal) != "def" {
		t.Fatalf("second: %v", err)
	}
	if m, err := app.Next(); m != nil || err != nil {
		t.Fatalf("end: %v %v", m, err)
	}
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "b" || *n != 2 {
		t.Fatalf("next: %v %v %d", c, err, *n)
	}
}

func TestReplace(t *testing.T) {
	r, _ := newTestReader("a UID REPLACE 3002 Drafts (\\Seen) {3}\r\nabc\r\nb REPLACE * x {1}\r\nq extra {1+}\r\nz\r\nc NOOP\r\n", Options{})
	cmd, err := r.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	rep := cmd.(*Replace)
	if !rep.UID || rep.Target != 3002 || rep.Mailbox != "Drafts" {
		t.Fatalf("%+v", rep)
	}
	m, err := rep.Next()
	if err != nil || readAll(t, m.Literal) != "abc" || !m.Flags.Has(`\Seen`) {
		t.Fatalf("message: %v", err)
	}
	if m, err := rep.Next(); m != nil || err != nil {
		t.Fatalf("end: %v %v", m, err)
	}
	cmd, _ = r.ReadCommand()
	rep = cmd.(*Replace)
	if rep.Target != Star {
		t.Errorf("target %d", rep.Target)
	}
	m, _ = rep.Next()
	readAll(t, m.Literal)
	_, err = rep.Next()
	wantParseError(t, err, BAD, "", "REPLACE takes one message", false)
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "c" {
		t.Fatalf("next: %v %v", c, err)
	}
}
