package imap

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
)

func newTestEncoder() (*Encoder, *bytes.Buffer) {
	var buf bytes.Buffer
	return NewEncoder(bufio.NewWriter(&buf)), &buf
}

func flushed(t *testing.T, e *Encoder, buf *bytes.Buffer) string {
	t.Helper()
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	buf.Reset()
	e.sep = false // the next test output starts a new line of its own
	return s
}

func TestEncoderStrings(t *testing.T) {
	tests := []struct {
		name string
		utf8 bool
		f    func(e *Encoder)
		want string
	}{
		{"atom astring", false, func(e *Encoder) { e.AString("INBOX") }, "INBOX"},
		{"astring with ]", false, func(e *Encoder) { e.AString("a]b") }, "a]b"},
		{"empty astring", false, func(e *Encoder) { e.AString("") }, `""`},
		{"astring NIL", false, func(e *Encoder) { e.AString("nil") }, `"nil"`},
		{"astring space", false, func(e *Encoder) { e.AString("a b") }, `"a b"`},
		{"astring specials", false, func(e *Encoder) { e.AString(`a"b\c`) }, `"a\"b\\c"`},
		{"astring wildcard", false, func(e *Encoder) { e.AString("a*") }, `"a*"`},
		{"string", false, func(e *Encoder) { e.String("INBOX") }, `"INBOX"`},
		{"string CRLF", false, func(e *Encoder) { e.String("a\r\nb") }, "{4}\r\na\r\nb"},
		{"string 8-bit", false, func(e *Encoder) { e.String("é") }, "{2}\r\né"},
		{"string 8-bit utf8", true, func(e *Encoder) { e.String("é") }, `"é"`},
		{"string invalid utf8", true, func(e *Encoder) { e.String("\xff") }, "{1}\r\n\xff"},
		{"string NUL", false, func(e *Encoder) { e.String("a\x00b") }, "{2}\r\nab"},
		{"string tab", false, func(e *Encoder) { e.String("a\tb") }, "\"a\tb\""},
		{"string long", false, func(e *Encoder) { e.String(strings.Repeat("x", 5000)) }, "{5000}\r\n" + strings.Repeat("x", 5000)},
		{"nstring", false, func(e *Encoder) { e.NString("").NString("x") }, `NIL "x"`},
		{"mailbox", false, func(e *Encoder) { e.Mailbox("Entwürfe") }, "Entw&APw-rfe"},
		{"mailbox space", false, func(e *Encoder) { e.Mailbox("Sent Items") }, `"Sent Items"`},
		{"mailbox utf8", true, func(e *Encoder) { e.Mailbox("Entwürfe") }, `"Entwürfe"`},
		{"mailbox &", false, func(e *Encoder) { e.Mailbox("a&b") }, "a&-b"},
		{"numbers", false, func(e *Encoder) { e.Number(0).Number(4294967295).Number64(9223372036854775807) }, "0 4294967295 9223372036854775807"},
		{"lists", false, func(e *Encoder) { e.BeginList().BeginList().EndList().Atom("a").BeginList().Nil().EndList().EndList() }, "(() a (NIL))"},
		{"flags", false, func(e *Encoder) { e.Flags(mail.NewFlags(`\Seen`, "$Junk")).Flags(nil) }, `($Junk \Seen) ()`},
		{"date-time", false, func(e *Encoder) {
			e.DateTime(time.Date(1996, 7, 17, 2, 44, 25, 0, time.FixedZone("", -7*3600)))
			e.DateTime(time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC))
		}, `"17-Jul-1996 02:44:25 -0700" " 1-Dec-2024 00:00:00 +0000"`},
		{"uid set", false, func(e *Encoder) { e.UIDSet(uids(1, 3, 7, 7, 9, 12)) }, "1:3,7,9:12"},
		{"code and text", false, func(e *Encoder) { e.Untagged().Atom("OK").Code("UIDNEXT 4").Text("Predicted next UID") }, "* OK [UIDNEXT 4] Predicted next UID"},
		{"text sanitised", false, func(e *Encoder) { e.Text("a\r\nb\x00cé") }, "a  b c?"},
		{"text utf8", true, func(e *Encoder) { e.Text("é\xff") }, "é?"},
	}
	for _, tc := range tests {
		e, buf := newTestEncoder()
		e.SetUTF8(tc.utf8)
		tc.f(e)
		if got := flushed(t, e, buf); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestEncoderResponses(t *testing.T) {
	e, buf := newTestEncoder()
	e.Untagged().Number(23).Atom("FETCH").BeginList().
		Atom("FLAGS").Flags(mail.Flags{`\Seen`}).Atom("RFC822.SIZE").Number(44827).Atom("UID").Number(447).
		EndList().End()
	e.StatusResponse("a1", OK, "READ-WRITE", "SELECT completed")
	e.StatusResponse("", BYE, "", "")
	e.ErrorResponse(&ParseError{Tag: "t", Status: BAD, Code: "CLIENTBUG", Reason: "bad"})
	e.ErrorResponse(&ParseError{Tag: "t", Status: BAD, Code: "TOOBIG", Reason: "too big", Fatal: true})
	e.ErrorResponse(&ParseError{Status: BAD, Reason: "invalid tag"})
	want := "* 23 FETCH (FLAGS (\\Seen) RFC822.SIZE 44827 UID 447)\r\n" +
		"a1 OK [READ-WRITE] SELECT completed\r\n" +
		"* BYE bye\r\n" +
		"t BAD [CLIENTBUG] bad\r\n" +
		"* BYE [TOOBIG] too big\r\n" +
		"* BAD invalid tag\r\n"
	if got := flushed(t, e, buf); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}

	if err := e.ContinuationRequest("Ready for literal data"); err != nil {
		t.Fatal(err)
	}
	if err := e.Continuation([]byte("\x00user\x00pw")); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "+ Ready for literal data\r\n+ AHVzZXIAcHc=\r\n" {
		t.Errorf("continuations %q", got)
	}
	buf.Reset()

	// FETCH item names.
	items := []FetchItem{
		{Kind: FetchBodySection, Peek: true, Section: Section{Part: []uint32{1, 2}, Text: SectionHeaderFields, Fields: []string{"Subject", "a b"}}, Partial: Partial{0, 100}},
		{Kind: FetchBodySection},
		{Kind: FetchBodySection, Section: Section{Part: []uint32{4}, Text: SectionMIME}},
		{Kind: FetchBodySection, Section: Section{Text: SectionHeaderFieldsNot, Fields: []string{"X"}}},
		{Kind: FetchBinary, Peek: true, Section: Section{Part: []uint32{3}}, Partial: Partial{10, 5}},
		{Kind: FetchBinarySize, Section: Section{Part: []uint32{1}}},
		{Kind: FetchRFC822Header},
		{Kind: FetchPreview, Lazy: true},
	}
	for i := range items {
		e.FetchItemName(&items[i])
	}
	want = `BODY[1.2.HEADER.FIELDS (Subject "a b")]<0> BODY[] BODY[4.MIME] BODY[HEADER.FIELDS.NOT (X)] BINARY[3]<10> BINARY.SIZE[1] RFC822.HEADER PREVIEW`
	if got := flushed(t, e, buf); got != want {
		t.Errorf("names\n%s\nwant\n%s", got, want)
	}
}

func TestEncoderLiteral(t *testing.T) {
	e, buf := newTestEncoder()
	e.Untagged().Number(1).Atom("FETCH").BeginList().Atom("BODY[]").Literal(5, strings.NewReader("hello, and more")).EndList().End()
	e.Untagged().Number(1).Atom("FETCH").BeginList().Atom("BINARY[]").Literal8(2, bytes.NewReader([]byte{0, 1})).EndList().End()
	want := "* 1 FETCH (BODY[] {5}\r\nhello)\r\n* 1 FETCH (BINARY[] ~{2}\r\n\x00\x01)\r\n"
	if got := flushed(t, e, buf); got != want {
		t.Errorf("got %q", got)
	}
	// A reader shorter than announced breaks the response.
	e.Literal(10, strings.NewReader("abc"))
	if err := e.End(); !errors.Is(err, errShortLiteral) {
		t.Errorf("short literal: %v", err)
	}
	if err := e.Flush(); err == nil {
		t.Error("Flush after a failed literal succeeded")
	}
}

func TestEncoderFlushHook(t *testing.T) {
	e, _ := newTestEncoder()
	n := 0
	e.SetFlushHook(func() error { n++; return nil })
	e.StatusResponse("a", OK, "", "done")
	e.Flush()
	if n != 1 {
		t.Errorf("hook called %d times", n)
	}
}

func TestQuoteString(t *testing.T) {
	if got := QuoteString(`/a"b`, false); got != `"/a\"b"` {
		t.Errorf("%q", got)
	}
	if got := QuoteString("a\nb", false); got != "{3}\r\na\nb" {
		t.Errorf("%q", got)
	}
}
