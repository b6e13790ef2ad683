package message

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchMessage is a 50 KB multipart/mixed message: text and HTML
// alternatives and a base64 attachment, the shape of typical mail.
func benchMessage() []byte {
	var b bytes.Buffer
	b.WriteString("Return-Path: <alice@example.org>\r\n")
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&b, "Received: from mx%d.example.org (mx%d.example.org [192.0.2.%d])\r\n\tby mail.example.net with ESMTPS id %d\r\n\tfor <bob@example.net>; Tue, 10 Sep 2024 09:15:02 +0200\r\n", i, i, i, i)
	}
	b.WriteString("From: Alice Example <alice@example.org>\r\nTo: Bob <bob@example.net>, Carol <carol@example.net>\r\n" +
		"Subject: =?utf-8?q?Quarterly_report_=E2=80=93_draft?=\r\nDate: Tue, 10 Sep 2024 09:14:58 +0200\r\n" +
		"Message-ID: <20240910071458.4711@example.org>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n" +
		"Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	for i := 0; i < 60; i++ {
		b.WriteString("Hello Bob, this is line of the report text with a few w=C3=B6rds in it.\r\n")
	}
	b.WriteString("--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<html><body>")
	for i := 0; i < 60; i++ {
		b.WriteString("<p>Hello Bob, this is line of the <b>report</b> text with a few w=C3=B6rds.</p>\r\n")
	}
	b.WriteString("</body></html>\r\n--alt--\r\n--outer\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n" +
		"Content-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	att := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("%PDF-1.4 binary data \x00\x01\x02"), 1100))
	for len(att) > 76 {
		b.WriteString(att[:76] + "\r\n")
		att = att[76:]
	}
	b.WriteString(att + "\r\n--outer--\r\n")
	return b.Bytes()
}

func BenchmarkParse(b *testing.B) {
	msg := benchMessage()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(msg)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSmall(b *testing.B) {
	msg := readFixtureB(b, "plain.eml")
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(msg)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	s, err := Parse(bytes.NewReader(benchMessage()))
	if err != nil {
		b.Fatal(err)
	}
	enc, _ := s.MarshalBinary()
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		var d Summary
		if err := d.UnmarshalBinary(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	s, err := Parse(bytes.NewReader(benchMessage()))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaseSubject(b *testing.B) {
	for b.Loop() {
		BaseSubject("Re: [list] Fwd: =?utf-8?q?Quarterly_report_=E2=80=93_draft?= (fwd)")
	}
}

func TestBenchMessage(t *testing.T) {
	msg := benchMessage()
	if len(msg) < 45000 || len(msg) > 55000 {
		t.Fatalf("bench message is %d bytes", len(msg))
	}
	s := parseChecked(t, msg)
	if len(s.Root.Parts) != 2 || !strings.HasPrefix(s.Preview, "Hello Bob") {
		t.Fatalf("unexpected structure: %d parts, preview %q", len(s.Root.Parts), s.Preview)
	}
}

func readFixtureB(b *testing.B, name string) []byte {
	b.Helper()
	msg, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		b.Fatal(err)
	}
	return msg
}

// BenchmarkBase64Size counts the decoded size of a base64 attachment body
// the way the parser does for a leaf it does not decode: a run of 64 KiB.
func BenchmarkBase64Size(b *testing.B) {
	raw := bytes.Repeat([]byte("%PDF-1.4 binary data \x00\x01\x02\xff"), 2000)
	var body bytes.Buffer
	for att := base64.StdEncoding.EncodeToString(raw); len(att) > 0; {
		n := min(76, len(att))
		body.WriteString(att[:n] + "\r\n")
		att = att[n:]
	}
	run := body.Bytes()[:64<<10]
	b.SetBytes(int64(len(run)))
	for b.Loop() {
		d := transferDecoder{kind: cteBase64}
		if d.base64Size(run) == 0 {
			b.Fatal("no size")
		}
	}
}
