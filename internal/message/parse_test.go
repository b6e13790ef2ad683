package message

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parseChecked parses msg, checks the general invariants and that parsing
// byte by byte gives the same result.
func parseChecked(t *testing.T, msg []byte) *Summary {
	t.Helper()
	s, err := Parse(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	checkSummary(t, msg, s)
	s2, err := Parse(iotest.OneByteReader(bytes.NewReader(msg)))
	if err != nil {
		t.Fatalf("Parse one byte at a time: %v", err)
	}
	if !reflect.DeepEqual(s, s2) {
		t.Fatalf("parsing one byte at a time differs")
	}
	return s
}

// part returns the part at the given child indexes (0-based).
func part(s *Summary, path ...int) *Part {
	p := &s.Root
	for _, i := range path {
		p = &p.Parts[i]
	}
	return p
}

// wantPart describes what a part must look like: its exact header and
// body bytes (cut from the message by the offsets), and its type.
type wantPart struct {
	path         []int
	typ, subtype string
	header, body string
	lines        int64
	decodedSize  int64 // -1: not checked
	nparts       int
}

func checkWant(t *testing.T, msg []byte, s *Summary, want []wantPart) {
	t.Helper()
	for _, w := range want {
		p := part(s, w.path...)
		if p.Type != w.typ || p.Subtype != w.subtype {
			t.Errorf("part %v: type %s/%s, want %s/%s", w.path, p.Type, p.Subtype, w.typ, w.subtype)
		}
		if got := string(msg[p.HeaderStart:p.BodyStart]); got != w.header {
			t.Errorf("part %v: header\n got %q\nwant %q", w.path, got, w.header)
		}
		if got := string(msg[p.BodyStart:p.End]); got != w.body {
			t.Errorf("part %v: body\n got %q\nwant %q", w.path, got, w.body)
		}
		if p.Lines != w.lines {
			t.Errorf("part %v: lines %d, want %d", w.path, p.Lines, w.lines)
		}
		if w.decodedSize >= 0 && p.DecodedSize != w.decodedSize {
			t.Errorf("part %v: decoded size %d, want %d", w.path, p.DecodedSize, w.decodedSize)
		}
		if len(p.Parts) != w.nparts {
			t.Errorf("part %v: %d children, want %d", w.path, len(p.Parts), w.nparts)
		}
	}
}

func TestParsePlain(t *testing.T) {
	msg := readFixture(t, "plain.eml")
	s := parseChecked(t, msg)
	i := bytes.Index(msg, []byte("\r\n\r\n")) + 4
	checkWant(t, msg, s, []wantPart{{
		typ: "text", subtype: "plain",
		header: string(msg[:i]),
		body:   "Hi Bob,\r\n\r\nare we still on for lunch on Thursday?\r\n\r\nAlice\r\n",
		lines:  5, decodedSize: int64(len(msg) - i),
	}})
	if want := []Param{{"charset", "us-ascii"}, {"format", "flowed"}}; !reflect.DeepEqual(s.Root.Params, want) {
		t.Errorf("params %v, want %v", s.Root.Params, want)
	}
	env := s.Root.Envelope
	wantEnv := &Envelope{
		Date:    "Tue, 10 Sep 2024 09:14:58 +0200",
		Subject: "Lunch on Thursday?",
		From:    []Address{{Name: "Alice Example", Mailbox: "alice", Host: "example.org"}},
		To: []Address{
			{Name: "Bob", Mailbox: "bob", Host: "example.net"},
			{Mailbox: "carol", Host: "example.net"},
		},
		Cc:        []Address{{Name: "Dave, the Builder", Mailbox: "dave", Host: "example.com"}},
		InReplyTo: "<1234@example.net>",
		MessageID: "<20240910071458.4711@example.org>",
	}
	if !reflect.DeepEqual(env, wantEnv) {
		t.Errorf("envelope\n got %+v\nwant %+v", env, wantEnv)
	}
	if want := time.Date(2024, 9, 10, 7, 14, 58, 0, time.UTC); !s.Date.Equal(want) {
		t.Errorf("date %v, want %v", s.Date, want)
	}
	if want := []string{"1000@example.net", "1234@example.net"}; !reflect.DeepEqual(s.References, want) {
		t.Errorf("references %v, want %v", s.References, want)
	}
	if want := "Hi Bob, are we still on for lunch on Thursday? Alice"; s.Preview != want {
		t.Errorf("preview %q, want %q", s.Preview, want)
	}
}

func TestParseAlternative(t *testing.T) {
	msg := readFixture(t, "alternative.eml")
	s := parseChecked(t, msg)
	rootHdr := string(msg[:bytes.Index(msg, []byte("\r\n\r\n"))+4])
	checkWant(t, msg, s, []wantPart{
		{typ: "multipart", subtype: "alternative", header: rootHdr, body: string(msg[len(rootHdr):]),
			lines: 15, decodedSize: -1, nparts: 2},
		{path: []int{0}, typ: "text", subtype: "plain",
			header: "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
			body:   "Caf=C3=A9 autumn sale: everything 20% off until Sunday.=20\r\nSee you soon!",
			lines:  2, decodedSize: int64(len("Café autumn sale: everything 20% off until Sunday. \r\nSee you soon!"))},
		{path: []int{1}, typ: "text", subtype: "html",
			header: "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
			body:   "<html><head><style>p {color: red}</style></head><body><p>Caf=C3=A9 =\r\n<b>autumn</b> sale</p></body></html>",
			lines:  2, decodedSize: -1},
	})
	if want := "Café autumn sale: everything 20% off until Sunday. See you soon!"; s.Preview != want {
		t.Errorf("preview %q, want %q", s.Preview, want)
	}
}

func TestParseMixedAttachments(t *testing.T) {
	msg := readFixture(t, "mixed.eml")
	s := parseChecked(t, msg)
	if got := ParamValue(s.Root.Params, "boundary"); got != "----=_Part_0_12345" {
		t.Fatalf("boundary %q (folded Content-Type)", got)
	}
	if len(s.Root.Parts) != 3 {
		t.Fatalf("%d parts, want 3", len(s.Root.Parts))
	}
	txt, pdf, png := part(s, 0), part(s, 1), part(s, 2)
	if got := string(msg[txt.BodyStart:txt.End]); got != "Please find the report attached." {
		t.Errorf("text body %q", got)
	}
	if pdf.Type != "application" || pdf.Subtype != "pdf" || pdf.Encoding != "base64" ||
		pdf.Disposition != "attachment" || pdf.Description != "Quarterly report" ||
		pdf.MD5 != "Q2hlY2sgSW50ZWdyaXR5IQ==" || pdf.DecodedSize != 768 {
		t.Errorf("pdf part %+v", pdf)
	}
	if want := []Param{{"filename", "report.pdf"}, {"size", "768"}}; !reflect.DeepEqual(pdf.DispositionParams, want) {
		t.Errorf("pdf disposition params %v", pdf.DispositionParams)
	}
	if body := msg[pdf.BodyStart:pdf.End]; !bytes.HasPrefix(body, []byte("AAECAwQF")) || bytes.HasSuffix(body, []byte("\n")) {
		t.Errorf("pdf body %q...%q", body[:10], body[len(body)-10:])
	}
	if png.ID != "<logo@example.org>" || png.Disposition != "inline" || png.DecodedSize != 108 ||
		!reflect.DeepEqual(png.Language, []string{"en", "de"}) || png.Location != "http://example.org/logo.png" {
		t.Errorf("png part %+v", png)
	}
	if !bytes.HasSuffix(msg[png.BodyStart:png.End], []byte("AAAAAAAAAA\r\n")) {
		t.Errorf("png body ends %q", msg[png.End-12:png.End])
	}
	if s.Preview != "Please find the report attached." {
		t.Errorf("preview %q", s.Preview)
	}
}

func TestParseNestedMessage(t *testing.T) {
	msg := readFixture(t, "nested.eml")
	s := parseChecked(t, msg)
	inner := `From: Alice <alice@example.org>
Sender: list@example.org
Reply-To: team@example.org
To: Bob <bob@example.net>
Subject: Report
Date: Wed, 11 Sep 2024 10:00:00 +0200
Message-ID: <inner@example.org>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="inner"

`
	inner = strings.ReplaceAll(inner, "\n", "\r\n")
	innerBody := "--inner\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nInner text.\r\n" +
		"--inner\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<p>Inner text.</p>\r\n--inner--\r\n"
	checkWant(t, msg, s, []wantPart{
		{path: []int{0}, typ: "text", subtype: "plain", header: "Content-Type: text/plain\r\n\r\n",
			body: "See the forwarded message.\r\n", lines: 1, decodedSize: 28},
		{path: []int{1}, typ: "message", subtype: "rfc822",
			header: "Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n",
			body:   inner + innerBody, lines: 19, decodedSize: int64(len(inner + innerBody)), nparts: 1},
		{path: []int{1, 0}, typ: "multipart", subtype: "alternative", header: inner, body: innerBody,
			lines: 9, decodedSize: -1, nparts: 2},
		{path: []int{1, 0, 0}, typ: "text", subtype: "plain",
			header: "Content-Type: text/plain; charset=us-ascii\r\n\r\n", body: "Inner text.", lines: 1, decodedSize: 11},
		{path: []int{1, 0, 1}, typ: "text", subtype: "html",
			header: "Content-Type: text/html; charset=us-ascii\r\n\r\n", body: "<p>Inner text.</p>", lines: 1, decodedSize: 18},
	})
	if part(s, 0).Params != nil {
		t.Errorf("explicit text/plain without parameters got %v", part(s, 0).Params)
	}
	m := part(s, 1)
	if m.Envelope == nil || m.Envelope != m.Parts[0].Envelope {
		t.Fatalf("message/rfc822 envelope %p, encapsulated root %p", m.Envelope, m.Parts[0].Envelope)
	}
	want := &Envelope{
		Date:      "Wed, 11 Sep 2024 10:00:00 +0200",
		Subject:   "Report",
		From:      []Address{{Name: "Alice", Mailbox: "alice", Host: "example.org"}},
		Sender:    []Address{{Mailbox: "list", Host: "example.org"}},
		ReplyTo:   []Address{{Mailbox: "team", Host: "example.org"}},
		To:        []Address{{Name: "Bob", Mailbox: "bob", Host: "example.net"}},
		MessageID: "<inner@example.org>",
	}
	if !reflect.DeepEqual(m.Envelope, want) {
		t.Errorf("encapsulated envelope\n got %+v\nwant %+v", m.Envelope, want)
	}
	if s.Root.Envelope.Subject != "Fwd: Report" {
		t.Errorf("root subject %q", s.Root.Envelope.Subject)
	}
	if s.Preview != "See the forwarded message." {
		t.Errorf("preview %q (must not come from the forwarded message)", s.Preview)
	}
}

func TestParseRFC2231(t *testing.T) {
	msg := readFixture(t, "rfc2231.eml")
	s := parseChecked(t, msg)
	p1, p2 := part(s, 0), part(s, 1)
	if want := []Param{{"title", "This is even more ***fun*** isn't it!"}}; !reflect.DeepEqual(p1.Params, want) {
		t.Errorf("continued title: %q", p1.Params)
	}
	if want := []Param{{"filename", "€ rates.pdf"}}; !reflect.DeepEqual(p1.DispositionParams, want) {
		t.Errorf("UTF-8 filename: %q", p1.DispositionParams)
	}
	if want := []Param{{"name", "Grüße.txt"}, {"charset", "us-ascii"}}; !reflect.DeepEqual(p2.Params, want) {
		t.Errorf("ISO-8859-1 name: %q", p2.Params)
	}
	if want := []Param{{"filename", "über.txt"}}; !reflect.DeepEqual(p2.DispositionParams, want) {
		t.Errorf("mixed continuation with plain fallback: %q", p2.DispositionParams)
	}
	if s.Preview != "" {
		t.Errorf("preview %q from an attachment", s.Preview)
	}
}

func TestParseEncodedWords(t *testing.T) {
	msg := readFixture(t, "encoded-words.eml")
	s := parseChecked(t, msg)
	env := s.Root.Envelope
	if got := DecodeHeaderValue(env.Subject); got != "Grüße aus Köln" {
		t.Errorf("ISO-8859-1 subject %q", got)
	}
	if got := DecodeHeaderValue(env.From[0].Name); got != "山田太郎" || env.From[0].Mailbox != "yamada" {
		t.Errorf("Shift_JIS from %q (%+v)", got, env.From[0])
	}
	if got := DecodeHeaderValue(env.To[0].Name); got != "Zoë Ünal" {
		t.Errorf("UTF-8 to %q", got)
	}
	if s.Preview != "こんにちは、世界。テストです。" {
		t.Errorf("Shift_JIS preview %q", s.Preview)
	}
	if want := time.Date(2024, 9, 13, 3, 0, 0, 0, time.UTC); !s.Date.Equal(want) {
		t.Errorf("date %v", s.Date)
	}
}

func TestParseDigest(t *testing.T) {
	msg := readFixture(t, "digest.eml")
	s := parseChecked(t, msg)
	checkWant(t, msg, s, []wantPart{
		{path: []int{0}, typ: "message", subtype: "rfc822", header: "\r\n",
			body: "From: a@example.org\r\nSubject: first\r\n\r\nFirst message.", lines: 4, decodedSize: -1, nparts: 1},
		{path: []int{0, 0}, typ: "text", subtype: "plain", header: "From: a@example.org\r\nSubject: first\r\n\r\n",
			body: "First message.", lines: 1, decodedSize: 14},
		{path: []int{1}, typ: "text", subtype: "plain", header: "Content-Type: text/plain\r\n\r\n",
			body: "Not a message.", lines: 1, decodedSize: 14},
	})
	if part(s, 0).Params != nil {
		t.Errorf("digest default type got params %v", part(s, 0).Params)
	}
	if got := part(s, 0).Envelope.Subject; got != "first" {
		t.Errorf("digest message subject %q", got)
	}
}

func TestParseMalformed(t *testing.T) {
	t.Run("missing final boundary", func(t *testing.T) {
		msg := readFixture(t, "malformed-missing-final-boundary.eml")
		s := parseChecked(t, msg)
		checkWant(t, msg, s, []wantPart{
			{path: []int{0}, typ: "text", subtype: "plain", header: "Content-Type: text/plain\r\n\r\n",
				body: "part one", lines: 1, decodedSize: 8},
			{path: []int{1}, typ: "text", subtype: "plain", header: "Content-Type: text/plain\r\n\r\n",
				body: "part two, never closed\r\n", lines: 1, decodedSize: 24},
		})
	})
	t.Run("no boundary parameter", func(t *testing.T) {
		msg := readFixture(t, "malformed-no-boundary-param.eml")
		s := parseChecked(t, msg)
		if s.Root.Type != "multipart" || len(s.Root.Parts) != 0 {
			t.Errorf("root %s/%s with %d parts", s.Root.Type, s.Root.Subtype, len(s.Root.Parts))
		}
		if !bytes.HasPrefix(msg[s.Root.BodyStart:], []byte("--what\r\n")) {
			t.Errorf("body starts %q", msg[s.Root.BodyStart:])
		}
	})
	t.Run("no delimiter line", func(t *testing.T) {
		msg := readFixture(t, "malformed-no-delimiter.eml")
		s := parseChecked(t, msg)
		checkWant(t, msg, s, []wantPart{{typ: "multipart", subtype: "alternative",
			header: string(msg[:bytes.Index(msg, []byte("\r\n\r\n"))+4]),
			body:   "just text, no delimiter lines at all\r\n", lines: 1, decodedSize: -1}})
	})
	t.Run("no header separator", func(t *testing.T) {
		msg := readFixture(t, "malformed-no-separator.eml")
		s := parseChecked(t, msg)
		checkWant(t, msg, s, []wantPart{{typ: "text", subtype: "plain", header: string(msg), body: "", decodedSize: 0}})
		env := s.Root.Envelope
		if env.Subject != "only a header" || len(env.To) != 1 || env.To[0].Host != "example.net" {
			t.Errorf("envelope %+v", env)
		}
	})
	t.Run("bare LF", func(t *testing.T) {
		msg := readFixture(t, "malformed-bare-lf.eml")
		s := parseChecked(t, msg)
		checkWant(t, msg, s, []wantPart{
			{path: []int{0}, typ: "text", subtype: "plain", header: "Content-Type: text/plain\n\n",
				body: "line one\nline two", lines: 2, decodedSize: 17},
			{path: []int{1}, typ: "text", subtype: "plain", header: "\n", body: "second", lines: 1, decodedSize: 6},
		})
	})
	t.Run("NUL bytes", func(t *testing.T) {
		msg := readFixture(t, "malformed-nul.eml")
		s := parseChecked(t, msg)
		env := s.Root.Envelope
		if env.Subject != "nul\x00byte" || env.From[0].Host != "exa\x00mple.org" {
			t.Errorf("envelope %+v", env)
		}
		if got := string(msg[s.Root.BodyStart:s.Root.End]); got != "body\x00with\x00nuls\r\n" {
			t.Errorf("body %q", got)
		}
		if s.Preview != "bodywithnuls" {
			t.Errorf("preview %q", s.Preview)
		}
	})
	t.Run("8-bit headers", func(t *testing.T) {
		msg := readFixture(t, "malformed-8bit-headers.eml")
		s := parseChecked(t, msg)
		env := s.Root.Envelope
		if env.Subject != "Grüße aus Köln" {
			t.Errorf("raw UTF-8 subject %q", env.Subject)
		}
		if env.From[0].Name != "Jörg Müller" {
			t.Errorf("from %+v", env.From)
		}
		if got := DecodeHeaderValue(env.Cc[0].Name); got != "Frédéric" {
			t.Errorf("Latin-1 name decodes to %q", got)
		}
	})
	t.Run("bad Content-Type", func(t *testing.T) {
		msg := readFixture(t, "malformed-bad-content-type.eml")
		s := parseChecked(t, msg)
		if s.Root.Type != "text" || s.Root.Subtype != "plain" ||
			!reflect.DeepEqual(s.Root.Params, []Param{{"charset", "us-ascii"}}) {
			t.Errorf("type %s/%s %v, want the default", s.Root.Type, s.Root.Subtype, s.Root.Params)
		}
		if s.Root.Encoding != "quoted-printable" || s.Root.DecodedSize != 6 {
			t.Errorf("encoding %q, decoded size %d", s.Root.Encoding, s.Root.DecodedSize)
		}
		if s.Preview != "café" {
			t.Errorf("preview %q", s.Preview)
		}
	})
}

func TestParsePreviewHTML(t *testing.T) {
	s := parseChecked(t, readFixture(t, "html-only.eml"))
	if want := "Café & more Second line <ok>"; s.Preview != want {
		t.Errorf("preview %q, want %q", s.Preview, want)
	}
	s = parseChecked(t, readFixture(t, "base64-text.eml"))
	if want := "Grüße aus Berlin!"; s.Preview != want {
		t.Errorf("preview %q, want %q", s.Preview, want)
	}
}

func TestParsePreviewLength(t *testing.T) {
	body := strings.Repeat("ä  b\r\n", 300)
	s := parseChecked(t, []byte("Subject: long\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+body))
	want := strings.TrimSpace(strings.Repeat("ä b ", 50))
	if s.Preview != want {
		t.Errorf("preview %q, want %q", s.Preview, want)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, msg := range []string{"", "\r\n", "\n", "x", "\r\n\r\n", "Subject: x\r\n\r\n"} {
		parseChecked(t, []byte(msg))
	}
}

func TestParseLongLines(t *testing.T) {
	long := strings.Repeat("x", 3*readBufSize+17)
	t.Run("huge header field", func(t *testing.T) {
		subject := strings.Repeat("s", 1<<20)
		msg := "Subject: " + subject + "\r\nTo: a@b.c\r\n\r\nbody\r\n"
		s := parseChecked(t, []byte(msg))
		if got := len(s.Root.Envelope.Subject); got != maxFieldLen {
			t.Errorf("subject kept %d bytes, want %d", got, maxFieldLen)
		}
		if len(s.Root.Envelope.To) != 1 {
			t.Errorf("field after the huge one lost")
		}
		if string([]byte(msg)[s.Root.BodyStart:s.Root.End]) != "body\r\n" {
			t.Errorf("body offset wrong")
		}
	})
	t.Run("long body lines", func(t *testing.T) {
		msg := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n" + long + "\r\n--b\r\n" +
			"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + long + "=\r\n" + long + "\r\n--b--\r\n"
		s := parseChecked(t, []byte(msg))
		if len(s.Root.Parts) != 2 || s.Root.Parts[1].DecodedSize != int64(2*len(long)) {
			t.Fatalf("parts %+v", s.Root.Parts)
		}
	})
	t.Run("CR at buffer edge", func(t *testing.T) {
		// A line whose CR is the last byte of a full buffer and whose LF
		// comes in the next read.
		for _, n := range []int{readBufSize - 1, readBufSize - 2, readBufSize, 2*readBufSize - 1} {
			for _, enc := range []string{"7bit", "quoted-printable", "base64"} {
				msg := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: " + enc +
					"\r\n\r\n" + strings.Repeat("QUJD", n/4) + strings.Repeat("=", n%4) + "\r\n--b\r\n\r\n" +
					strings.Repeat("y", n) + "\r\n\r\n--b--"
				parseChecked(t, []byte(msg))
			}
		}
	})
	t.Run("long boundary line and header line", func(t *testing.T) {
		msg := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b" + long + "\r\n" +
			"X-Long: " + long + "\r\n\r\nbody\r\n--b--" + long + "\r\n"
		s := parseChecked(t, []byte(msg))
		if len(s.Root.Parts) != 1 || string([]byte(msg)[s.Root.Parts[0].BodyStart:s.Root.Parts[0].End]) != "body" {
			t.Fatalf("parts %+v", s.Root.Parts)
		}
	})
}

func TestParseLimits(t *testing.T) {
	t.Run("deep nesting", func(t *testing.T) {
		var b strings.Builder
		for i := 0; i < 2*MaxDepth; i++ {
			b.WriteString("Content-Type: multipart/mixed; boundary=\"b" + strings.Repeat("x", i) + "\"\r\n\r\n--b" + strings.Repeat("x", i) + "\r\n")
			if i%3 == 0 {
				b.WriteString("Content-Type: message/rfc822\r\n\r\n")
			}
		}
		b.WriteString("\r\ninnermost\r\n")
		s := parseChecked(t, []byte(b.String()))
		depth := 0
		for p := &s.Root; len(p.Parts) > 0; p = &p.Parts[0] {
			depth++
		}
		if depth != MaxDepth-1 {
			t.Errorf("depth %d, want %d", depth, MaxDepth-1)
		}
	})
	t.Run("many parts", func(t *testing.T) {
		msg := "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\n", MaxParts+500) + "--b--\r\n"
		s := parseChecked(t, []byte(msg))
		if len(s.Root.Parts) != MaxParts-1 {
			t.Errorf("%d parts, want %d", len(s.Root.Parts), MaxParts-1)
		}
	})
	t.Run("boundary prefixes", func(t *testing.T) {
		// The inner boundary starts with the outer one: the longest match
		// wins.
		msg := "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n" +
			"Content-Type: multipart/alternative; boundary=ab\r\n\r\n--ab\r\n\r\none\r\n--ab\r\n\r\ntwo\r\n--ab--\r\n" +
			"--a\r\n\r\nthree\r\n--a--\r\n"
		s := parseChecked(t, []byte(msg))
		if len(s.Root.Parts) != 2 || len(s.Root.Parts[0].Parts) != 2 {
			t.Fatalf("structure %+v", s.Root.Parts)
		}
	})
	t.Run("outer boundary ends inner parts", func(t *testing.T) {
		msg := "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n" +
			"Content-Type: multipart/alternative; boundary=z\r\n\r\n--z\r\nContent-Type: text/plain\r\n" +
			"--a\r\n\r\nlast\r\n--a--\r\n"
		s := parseChecked(t, []byte(msg))
		inner := &s.Root.Parts[0].Parts[0]
		if got := string([]byte(msg)[inner.HeaderStart:inner.End]); got != "Content-Type: text/plain" || inner.BodyStart != inner.End {
			t.Errorf("unfinished inner part %q", got)
		}
		if len(s.Root.Parts) != 2 {
			t.Errorf("%d parts", len(s.Root.Parts))
		}
	})
}

func TestParseRootMessageRFC822(t *testing.T) {
	msg := "Subject: outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nhi\r\n"
	s := parseChecked(t, []byte(msg))
	if s.Root.Envelope.Subject != "outer" || s.Root.Parts[0].Envelope.Subject != "inner" {
		t.Errorf("root %q, encapsulated %q", s.Root.Envelope.Subject, s.Root.Parts[0].Envelope.Subject)
	}
}

func TestParseEncodedMessageIsOpaque(t *testing.T) {
	msg := "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA0KDQp5DQo=\r\n"
	s := parseChecked(t, []byte(msg))
	if len(s.Root.Parts) != 0 || s.Root.DecodedSize != 17 {
		t.Errorf("parts %d, decoded size %d", len(s.Root.Parts), s.Root.DecodedSize)
	}
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("boom")
	r := iotest.TimeoutReader(strings.NewReader(strings.Repeat("Subject: x\r\n", 1000)))
	if _, err := Parse(r); err == nil {
		t.Fatal("no error from a failing reader")
	}
	if _, err := Parse(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Fatalf("error %v, want %v", err, boom)
	}
}

// TestParseFixturesReaders parses every fixture through readers that
// return little data at a time.
func TestParseFixturesReaders(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		msg := readFixture(t, filepath.Base(f))
		want := parseChecked(t, msg)
		got, err := Parse(iotest.HalfReader(bytes.NewReader(msg)))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: half reader gives a different result (%v)", f, err)
		}
	}
}

func TestParsePreviewChoice(t *testing.T) {
	tests := []struct{ name, msg, want string }{
		{"plain wins over earlier html",
			"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n" +
				"--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b--\r\n", "plain"},
		{"empty plain part is skipped",
			"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n  \r\n\r\n" +
				"--b\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--b--\r\n", "second"},
		{"only the first non-empty plain part",
			"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\n", "one"},
		{"html when there is no plain text",
			"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: image/png\r\n\r\nxx\r\n" +
				"--b\r\nContent-Type: text/html\r\n\r\n<p>a&lt;b</p>\r\n--b--\r\n", "a<b"},
		{"attachments are not previews",
			"Content-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\ntext\r\n", ""},
		{"no text at all", "Content-Type: application/octet-stream\r\n\r\n\x00\x01\r\n", ""},
		{"zero-width and control characters dropped",
			"Content-Type: text/plain; charset=utf-8\r\n\r\n\u200b\u200cHi\u00ad\x07 there\u00a0\u00a0you\r\n", "Hi there you"},
	}
	for _, tt := range tests {
		s := parseChecked(t, []byte(tt.msg))
		if s.Preview != tt.want {
			t.Errorf("%s: preview %q, want %q", tt.name, s.Preview, tt.want)
		}
	}
}

// repeatReader yields s n times without holding the result.
type repeatReader struct {
	s   string
	n   int
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := copy(p, r.s[r.off:])
	r.off += k
	if r.off == len(r.s) {
		r.off = 0
		r.n--
	}
	return k, nil
}

// TestParseBoundedMemory streams a 24 MB message through Parse and checks
// that what Parse allocates does not grow with the message.
func TestParseBoundedMemory(t *testing.T) {
	msg := func(scale int) io.Reader {
		return io.MultiReader(
			strings.NewReader("Subject: big\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"+
				"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"),
			&repeatReader{s: strings.Repeat("QUJD", 19) + "\r\n", n: 100000 * scale},
			strings.NewReader("--b\r\nContent-Type: application/octet-stream\r\n\r\n"),
			&repeatReader{s: strings.Repeat("x", 1000), n: 4000 * scale}, // one 4 MB line per scale
			strings.NewReader("\r\n--b--\r\n"),
		)
	}
	alloc := func(scale int) (uint64, *Summary) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s, err := Parse(msg(scale))
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		return after.TotalAlloc - before.TotalAlloc, s
	}
	small, _ := alloc(1)
	big, s := alloc(3)
	if big > small+64<<10 || big > 1<<20 {
		t.Errorf("Parse allocated %d bytes for 8 MB and %d for 24 MB", small, big)
	}
	if len(s.Root.Parts) != 2 || s.Root.Parts[0].DecodedSize != 300000*57 || s.Root.Parts[1].End-s.Root.Parts[1].BodyStart != 12e6 {
		t.Errorf("structure %+v", s.Root.Parts)
	}
	if s.Preview != strings.Repeat("ABC", 66)+"AB" {
		t.Errorf("preview %q", s.Preview)
	}
}
