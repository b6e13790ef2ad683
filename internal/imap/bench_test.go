package imap

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
)

// repeatReader serves the same command forever.
type repeatReader struct {
	cmd string
	pos int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.cmd[r.pos:])
		n += c
		r.pos = (r.pos + c) % len(r.cmd)
	}
	return n, nil
}

func benchmarkParse(b *testing.B, cmd string) {
	r := NewReader(bufio.NewReader(&repeatReader{cmd: cmd}), nil, Options{})
	b.SetBytes(int64(len(cmd)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ReadCommand(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseFetch(b *testing.B) {
	benchmarkParse(b, "a0012 FETCH 1:100 (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)\r\n")
}

func BenchmarkParseUIDFetch(b *testing.B) {
	benchmarkParse(b, "a0013 UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE 4711)\r\n")
}

func BenchmarkParseUIDFetchBodyPeek(b *testing.B) {
	benchmarkParse(b, "a0014 UID FETCH 4711 (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID)])\r\n")
}

func BenchmarkParseSearch(b *testing.B) {
	benchmarkParse(b, "a0015 UID SEARCH RETURN (ALL) UNDELETED SINCE 1-Jan-2024 OR FROM alice SUBJECT report\r\n")
}

// BenchmarkEncodeFetchFlags writes "* n FETCH (UID u FLAGS (...))", the
// response of UID FETCH 1:* (FLAGS) a client sends on every resync.
func BenchmarkEncodeFetchFlags(b *testing.B) {
	e := NewEncoder(bufio.NewWriter(io.Discard))
	flags := mail.NewFlags(`\Seen`, `\Answered`, "$Forwarded")
	b.ReportAllocs()
	var seq uint32
	for b.Loop() {
		seq++
		e.Untagged().Number(seq).Atom("FETCH").BeginList().
			Atom("UID").Number(seq + 1000).Atom("FLAGS").Flags(flags).
			EndList().End()
	}
	if err := e.Flush(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEncodeFetchEnvelope writes a FETCH response with ENVELOPE and
// BODYSTRUCTURE, as a client listing a mailbox asks for.
func BenchmarkEncodeFetchEnvelope(b *testing.B) {
	e := NewEncoder(bufio.NewWriter(io.Discard))
	env := &message.Envelope{
		Date:      "Wed, 17 Jul 1996 02:23:25 -0700 (PDT)",
		Subject:   "IMAP4rev2 WG mtg summary and minutes",
		From:      []message.Address{{Name: "Terry Gray", Mailbox: "gray", Host: "cac.washington.edu"}},
		To:        []message.Address{{Mailbox: "imap", Host: "cac.washington.edu"}},
		Cc:        []message.Address{{Mailbox: "minutes", Host: "CNRI.Reston.VA.US"}, {Name: "John Klensin", Mailbox: "KLENSIN", Host: "MIT.EDU"}},
		MessageID: "<B27397-0100000@cac.washington.ed>",
	}
	root := message.Part{Type: "multipart", Subtype: "alternative", Params: []message.Param{{Name: "boundary", Value: "b1"}},
		Parts: []message.Part{
			{Type: "text", Subtype: "plain", Params: []message.Param{{Name: "charset", Value: "utf-8"}}, Encoding: "quoted-printable", BodyStart: 10, End: 2000, Lines: 40},
			{Type: "text", Subtype: "html", Params: []message.Param{{Name: "charset", Value: "utf-8"}}, Encoding: "base64", BodyStart: 2100, End: 9000, Lines: 90},
		}}
	date := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	flags := mail.Flags{`\Seen`}
	b.ReportAllocs()
	for b.Loop() {
		e.Untagged().Number(1).Atom("FETCH").BeginList().
			Atom("UID").Number(4711).Atom("FLAGS").Flags(flags).
			Atom("INTERNALDATE").DateTime(date).Atom("RFC822.SIZE").Number(9100).
			Atom("ENVELOPE").Envelope(env).Atom("BODYSTRUCTURE").BodyStructure(&root, true).
			EndList().End()
	}
	if err := e.Flush(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkMatchList(b *testing.B) {
	name := "Archive/2024/Projects/postfach/" + strings.Repeat("x", 30)
	b.ReportAllocs()
	for b.Loop() {
		MatchList("Archive/%/Projects/*", name)
	}
}
