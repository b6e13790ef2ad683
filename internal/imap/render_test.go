package imap

import (
	"testing"

	"github.com/postfach/postfach/internal/message"
)

func TestEnvelope(t *testing.T) {
	// The envelope of the sample connection of RFC 9051 §8 (Sender and
	// Reply-To absent: the server fills in From).
	gray := message.Address{Name: "Terry Gray", Mailbox: "gray", Host: "cac.washington.edu"}
	env := &message.Envelope{
		Date:      "Wed, 17 Jul 1996 02:23:25 -0700 (PDT)",
		Subject:   "IMAP4rev2 WG mtg summary and minutes",
		From:      []message.Address{gray},
		To:        []message.Address{{Mailbox: "imap", Host: "cac.washington.edu"}},
		Cc:        []message.Address{{Mailbox: "minutes", Host: "CNRI.Reston.VA.US"}, {Name: "John Klensin", Mailbox: "KLENSIN", Host: "MIT.EDU"}},
		MessageID: "<B27397-0100000@cac.washington.ed>",
	}
	want := `("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev2 WG mtg summary and minutes" ` +
		`(("Terry Gray" NIL "gray" "cac.washington.edu")) ` +
		`(("Terry Gray" NIL "gray" "cac.washington.edu")) ` +
		`(("Terry Gray" NIL "gray" "cac.washington.edu")) ` +
		`((NIL NIL "imap" "cac.washington.edu")) ` +
		`((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) ` +
		`NIL NIL "<B27397-0100000@cac.washington.ed>")`
	e, buf := newTestEncoder()
	e.Envelope(env)
	if got := flushed(t, e, buf); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	// Groups, explicit Sender and Reply-To, source route, 8-bit, empty.
	env = &message.Envelope{
		From:    []message.Address{{Mailbox: "a", Host: "example.org"}},
		Sender:  []message.Address{{Mailbox: "s", Host: "example.org"}},
		ReplyTo: []message.Address{{Name: `Q "x"`, Adl: "@relay.example", Mailbox: "r", Host: "example.org"}},
		To: []message.Address{
			{Mailbox: "undisclosed-recipients", IsGroupStart: true},
			{IsGroupEnd: true},
		},
		Bcc: []message.Address{
			{Mailbox: "Team", IsGroupStart: true},
			{Name: "Jörg", Mailbox: "j", Host: "example.org"},
			{IsGroupEnd: true},
		},
		InReplyTo: "<x@y>",
	}
	want = `(NIL NIL ((NIL NIL "a" "example.org")) ((NIL NIL "s" "example.org")) ` +
		`(("Q \"x\"" "@relay.example" "r" "example.org")) ` +
		`((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) NIL ` +
		"((NIL NIL \"Team\" NIL)({5}\r\nJörg NIL \"j\" \"example.org\")(NIL NIL NIL NIL)) " +
		`"<x@y>" NIL)`
	e.Envelope(env)
	if got := flushed(t, e, buf); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	e.SetUTF8(true)
	e.Envelope(&message.Envelope{Subject: "Grüße"})
	if got := flushed(t, e, buf); got != `(NIL "Grüße" NIL NIL NIL NIL NIL NIL NIL NIL)` {
		t.Errorf("utf8: %s", got)
	}
	e.Envelope(nil)
	if got := flushed(t, e, buf); got != `(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)` {
		t.Errorf("nil: %s", got)
	}
}

// testPart builds a part with a body of n bytes.
func leaf(typ, sub string, size int64, lines int64) message.Part {
	return message.Part{Type: typ, Subtype: sub, BodyStart: 100, End: 100 + size, Lines: lines}
}

func TestBodyStructure(t *testing.T) {
	// RFC 9051 §8: a plain text message.
	p := leaf("text", "plain", 3028, 92)
	p.Params = []message.Param{{Name: "charset", Value: "US-ASCII"}}
	e, buf := newTestEncoder()
	e.BodyStructure(&p, false)
	if got, want := flushed(t, e, buf), `("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)`; got != want {
		t.Errorf("BODY\n got %s\nwant %s", got, want)
	}
	e.BodyStructure(&p, true)
	if got, want := flushed(t, e, buf), `("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92 NIL NIL NIL NIL)`; got != want {
		t.Errorf("BODYSTRUCTURE\n got %s\nwant %s", got, want)
	}

	// A multipart/mixed with a text part, an attachment with extension
	// data, and a message/rfc822 holding a multipart/alternative.
	text := leaf("text", "plain", 10, 1) // no charset: US-ASCII is added
	att := leaf("application", "pdf", 400, 0)
	att.Encoding = "base64"
	att.ID = "<id@x>"
	att.Description = "the report"
	att.MD5 = "Q2hlY2sgSW50ZWdyaXR5IQ=="
	att.Disposition = "attachment"
	att.DispositionParams = []message.Param{{Name: "filename", Value: "r.pdf"}}
	att.Language = []string{"en", "de"}
	att.Location = "http://example.org/r.pdf"
	inner := message.Part{Type: "multipart", Subtype: "alternative", Params: []message.Param{{Name: "boundary", Value: "in"}},
		Parts: []message.Part{leaf("text", "plain", 5, 1), leaf("text", "html", 20, 2)}}
	inner.Parts[1].Params = []message.Param{{Name: "charset", Value: "utf-8"}}
	inner.Parts[1].Encoding = "quoted-printable"
	inner.Parts[1].Language = []string{"fr"}
	msg := message.Part{Type: "message", Subtype: "rfc822", BodyStart: 0, End: 300, Lines: 12,
		Envelope: &message.Envelope{Subject: "inner", From: []message.Address{{Mailbox: "a", Host: "b"}}},
		Parts:    []message.Part{inner}}
	root := message.Part{Type: "multipart", Subtype: "mixed", Params: []message.Param{{Name: "boundary", Value: "XX"}},
		Disposition: "inline", Parts: []message.Part{text, att, msg}}

	wantBody := `(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 10 1)` +
		`("APPLICATION" "PDF" NIL "<id@x>" "the report" "BASE64" 400)` +
		`("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 300 ` +
		`(NIL "inner" ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) NIL NIL NIL NIL NIL) ` +
		`(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 5 1)("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 20 2) "ALTERNATIVE") ` +
		`12) "MIXED")`
	e.BodyStructure(&root, false)
	if got := flushed(t, e, buf); got != wantBody {
		t.Errorf("BODY\n got %s\nwant %s", got, wantBody)
	}
	wantStructure := `(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 10 1 NIL NIL NIL NIL)` +
		`("APPLICATION" "PDF" NIL "<id@x>" "the report" "BASE64" 400 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("ATTACHMENT" ("FILENAME" "r.pdf")) ("en" "de") "http://example.org/r.pdf")` +
		`("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 300 ` +
		`(NIL "inner" ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) NIL NIL NIL NIL NIL) ` +
		`(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 5 1 NIL NIL NIL NIL)("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 20 2 NIL NIL "fr" NIL) "ALTERNATIVE" ("BOUNDARY" "in") NIL NIL NIL) ` +
		`12 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "XX") ("INLINE" NIL) NIL NIL)`
	e.BodyStructure(&root, true)
	if got := flushed(t, e, buf); got != wantStructure {
		t.Errorf("BODYSTRUCTURE\n got %s\nwant %s", got, wantStructure)
	}

	// Malformed structures still produce valid syntax.
	empty := message.Part{Type: "multipart", Subtype: "mixed"}
	e.BodyStructure(&empty, false)
	if got, want := flushed(t, e, buf), `(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0) "MIXED")`; got != want {
		t.Errorf("empty multipart: %s", got)
	}
	bare := message.Part{Type: "message", Subtype: "rfc822"}
	e.BodyStructure(&bare, false)
	if got, want := flushed(t, e, buf), `("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 0 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0) 0)`; got != want {
		t.Errorf("message without body: %s", got)
	}
	// Deep nesting is cut off.
	deep := leaf("text", "plain", 1, 1)
	for i := 0; i < 200; i++ {
		deep = message.Part{Type: "multipart", Subtype: "mixed", Parts: []message.Part{deep}}
	}
	e.BodyStructure(&deep, true)
	if got := flushed(t, e, buf); len(got) > 20000 {
		t.Errorf("deep structure: %d bytes", len(got))
	}
}
