package bench

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
)

func TestCorpusDeterministic(t *testing.T) {
	a := GenerateCorpus(42, 60)
	b := GenerateCorpus(42, 30)
	for i := range b.Msgs {
		if !bytes.Equal(a.Msgs[i], b.Msgs[i]) || a.Kinds[i] != b.Kinds[i] {
			t.Fatalf("message %d differs between a corpus of 60 and one of 30", i)
		}
	}
	c := GenerateCorpus(43, 30)
	same := 0
	for i := range c.Msgs {
		if bytes.Equal(c.Msgs[i], b.Msgs[i]) {
			same++
		}
	}
	if same > 0 {
		t.Fatalf("%d messages identical across seeds", same)
	}
	dir := t.TempDir()
	if err := b.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	back, err := LoadCorpus(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b.Msgs {
		if !bytes.Equal(back.Msgs[i], b.Msgs[i]) {
			t.Fatalf("message %d changed on disk", i)
		}
	}
	if _, err := LoadCorpus(t.TempDir()); err == nil {
		t.Fatal("an empty directory should be an error")
	}
}

func TestCorpusMix(t *testing.T) {
	c := GenerateCorpus(1, 400)
	counts := map[string]int{}
	for _, k := range c.Kinds {
		for _, w := range strings.Fields(k) {
			counts[w]++
		}
	}
	// The mix the issue asks for: mostly small, some large, a few huge;
	// every structure and charset present.
	if counts["small"] < 240 || counts["large"] < 10 || counts["huge"] < 1 {
		t.Errorf("size classes %v", counts)
	}
	for _, k := range []string{"text/plain", "multipart/alternative", "multipart/mixed", "multipart/related", "message/rfc822", "utf-8", "iso-8859-1", "shift_jis", "us-ascii"} {
		if counts[k] == 0 {
			t.Errorf("no %s message in %v", k, counts)
		}
	}
	for i, m := range c.Msgs {
		size := len(m)
		switch cls := strings.Fields(c.Kinds[i])[0]; cls {
		case "small":
			if size > 40_000 {
				t.Errorf("message %d (%s) is %d bytes", i, c.Kinds[i], size)
			}
		case "huge":
			if size < 900_000 {
				t.Errorf("message %d (%s) is %d bytes", i, c.Kinds[i], size)
			}
		}
	}
	if !strings.Contains(c.Summary(), "400 messages") {
		t.Errorf("summary: %s", c.Summary())
	}
}

// TestCorpusWellFormed parses every message with the standard library:
// CRLF line ends, no line over 998 bytes (RFC 5322 §2.1.1), decodable
// header words, MIME structure, transfer encodings and charsets.
func TestCorpusWellFormed(t *testing.T) {
	c := GenerateCorpus(9, 150)
	for i, m := range c.Msgs {
		for n, line := range bytes.Split(m, []byte("\r\n")) {
			if len(line) > 998 {
				t.Fatalf("message %d line %d has %d bytes", i, n, len(line))
			}
			if bytes.ContainsAny(line, "\r\n") {
				t.Fatalf("message %d line %d has a bare CR or LF", i, n)
			}
		}
		if err := checkEntity(m, 0); err != nil {
			t.Fatalf("message %d (%s): %v", i, c.Kinds[i], err)
		}
	}
}

var wordDecoder = &mime.WordDecoder{CharsetReader: func(charset string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "iso-8859-1":
		return charmap.ISO8859_1.NewDecoder().Reader(r), nil
	case "shift_jis":
		return japanese.ShiftJIS.NewDecoder().Reader(r), nil
	}
	return nil, fmt.Errorf("charset %s", charset)
}}

func checkEntity(raw []byte, depth int) error {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if depth == 0 {
		for _, h := range []string{"From", "To", "Subject", "Date", "Message-Id"} {
			if msg.Header.Get(h) == "" {
				return fmt.Errorf("no %s header", h)
			}
		}
		if _, err := msg.Header.AddressList("From"); err != nil {
			return fmt.Errorf("from: %w", err)
		}
		if _, err := msg.Header.Date(); err != nil {
			return fmt.Errorf("date: %w", err)
		}
	}
	subj, err := wordDecoder.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || !utf8.ValidString(subj) || strings.Contains(subj, "=?") {
		return fmt.Errorf("subject %q: %v", msg.Header.Get("Subject"), err)
	}
	return checkPart(mail.Header(msg.Header), msg.Body, depth)
}

func checkPart(h mail.Header, body io.Reader, depth int) error {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content-type %q: %w", ct, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		parts := 0
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", mt, err)
			}
			parts++
			if err := checkPart(mail.Header(p.Header), p, depth); err != nil {
				return fmt.Errorf("%s part %d: %w", mt, parts, err)
			}
		}
		if parts == 0 {
			return fmt.Errorf("%s without parts", mt)
		}
		return nil
	}
	if mt == "message/rfc822" {
		inner, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		return checkEntity(inner, depth+1)
	}
	var r io.Reader = body
	switch cte := strings.ToLower(h.Get("Content-Transfer-Encoding")); cte {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "", "7bit", "8bit":
	default:
		return fmt.Errorf("transfer encoding %q", cte)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("%s: decode: %w", mt, err)
	}
	if !strings.HasPrefix(mt, "text/") {
		if len(data) == 0 {
			return fmt.Errorf("empty %s", mt)
		}
		return nil
	}
	text := string(data)
	switch cs := strings.ToLower(params["charset"]); cs {
	case "iso-8859-1":
		text, err = charmap.ISO8859_1.NewDecoder().String(text)
	case "shift_jis":
		text, err = japanese.ShiftJIS.NewDecoder().String(text)
	case "utf-8", "us-ascii":
	default:
		return fmt.Errorf("charset %q", cs)
	}
	if err != nil || !utf8.ValidString(text) || strings.ContainsRune(text, utf8.RuneError) {
		return fmt.Errorf("%s in %s does not decode: %v", mt, params["charset"], err)
	}
	return nil
}
