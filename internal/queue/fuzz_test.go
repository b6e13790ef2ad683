package queue

import (
	"bufio"
	"bytes"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/message"
)

// FuzzReply: the SMTP reply parser never panics, and what it accepts has
// a code in range and at most maxReplyLines lines.
func FuzzReply(f *testing.F) {
	for _, s := range []string{
		"250 ok\r\n",
		"250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
		"550 5.1.1 no such user\r\n",
		"451-4.3.0 a\r\n451 4.3.0 b\r\n",
		"250-a\r\n251 b\r\n",
		"25\r\n",
		"999 x\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &client{br: bufio.NewReaderSize(bytes.NewReader(data), 4096)}
		r, err := c.readReply()
		if err != nil {
			return
		}
		if r.Code < 200 || r.Code > 599 || len(r.Lines) == 0 || len(r.Lines) > maxReplyLines+1 {
			t.Fatalf("accepted reply %+v", r)
		}
		if r.Enhanced != "" && !isEnhanced(r.Enhanced, r.Code) {
			t.Fatalf("enhanced code %q for %d", r.Enhanced, r.Code)
		}
	})
}

// FuzzSTSPolicy: the MTA-STS policy parser never panics, and an accepted
// policy has a known mode and mx patterns unless its mode is none.
func FuzzSTSPolicy(f *testing.F) {
	for _, s := range []string{
		"version: STSv1\r\nmode: enforce\r\nmx: mail.example.org\r\nmx: *.example.net\r\nmax_age: 604800\r\n",
		"version: STSv1\nmode: none\nmax_age: 0\n",
		"version: STSv1\nmode: testing\nmax_age: 99999999999\nmx: a\n",
		"mode: enforce\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseSTSPolicy(bytes.NewReader(data))
		if err != nil {
			return
		}
		if p.mode != "none" && p.mode != "enforce" && p.mode != "testing" || p.mode != "none" && len(p.mx) == 0 {
			t.Fatalf("accepted policy %+v", p)
		}
		p.matches("mail.example.org")
	})
}

// FuzzTo7Bit: the conversion never panics; what it makes of a message is
// 7-bit outside headers that were 8-bit already, parses with the same
// part structure, and its converted text parts decode to the original.
func FuzzTo7Bit(f *testing.F) {
	for _, s := range []string{
		"Subject: x\r\n\r\nGrüße\r\n",
		"Content-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: 8bit\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nÄ\r\n--b\r\nContent-Type: image/png\r\n\r\n\x89PNG\x00\r\n--b--\r\n",
		"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nünner\r\n",
		"\r\n" + strings.Repeat("x", 1200) + "\r\n",
		"Content-Transfer-Encoding: base64\r\n\r\nw7w=\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := To7Bit(data)
		if err != nil {
			return
		}
		before, err1 := message.Parse(bytes.NewReader(data))
		after, err2 := message.Parse(bytes.NewReader(out))
		if err1 != nil || err2 != nil {
			t.Fatalf("parse: %v, %v", err1, err2)
		}
		if count(&before.Root) != count(&after.Root) {
			t.Fatalf("parts %d before, %d after:\n%q\n%q", count(&before.Root), count(&after.Root), data, out)
		}
		checkParts(t, data, out, &before.Root, &after.Root)
	})
}

func count(p *message.Part) int {
	n := 1
	for i := range p.Parts {
		n += count(&p.Parts[i])
	}
	return n
}

// checkParts compares converted leaf bodies with the originals.
func checkParts(t *testing.T, in, out []byte, a, b *message.Part) {
	if len(a.Parts) != len(b.Parts) {
		t.Fatalf("children %d vs %d", len(a.Parts), len(b.Parts))
	}
	for i := range a.Parts {
		checkParts(t, in, out, &a.Parts[i], &b.Parts[i])
	}
	if len(a.Parts) > 0 {
		return
	}
	orig := in[a.BodyStart:a.End]
	conv := out[b.BodyStart:b.End]
	switch b.Encoding {
	case "quoted-printable":
		if a.Encoding == "quoted-printable" {
			return
		}
		dec, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(conv)))
		if err != nil {
			t.Fatalf("converted part does not decode: %v", err)
		}
		// quoted-printable makes every line ending CRLF.
		norm := bytes.ReplaceAll(bytes.ReplaceAll(orig, []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n"))
		got := bytes.ReplaceAll(dec, []byte("\r\n"), []byte("\n"))
		if !bytes.Equal(bytes.TrimRight(got, "\n"), bytes.TrimRight(norm, "\n")) && !bytes.ContainsAny(norm, "\r") {
			t.Fatalf("quoted-printable part decodes to %q, was %q", dec, orig)
		}
	case "", "7bit":
		if Needs8Bit(conv) || longLines(conv) {
			t.Fatalf("7bit part still has 8-bit data or long lines: %q", conv)
		}
	}
}
