package message

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// addFixtures adds every testdata/*.eml message to the fuzz corpus.
func addFixtures(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParse checks that Parse never fails or panics on any input and that
// its result is always consistent (see checkSummary: offsets in range and
// nested, line counts and decoded sizes recomputed independently, a clean
// preview, a lossless binary round trip).
func FuzzParse(f *testing.F) {
	addFixtures(f)
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\n--a--"))
	f.Add([]byte("Content-Type: message/rfc822\n\nContent-Type: multipart/digest; boundary=x\n\n--x\n\nSubject: y\n\n--x--"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, err := Parse(bytes.NewReader(msg))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		checkSummary(t, msg, s)
	})
}

// FuzzDecodeHeaderValue checks that decoding never panics and always
// gives valid UTF-8 on one line.
func FuzzDecodeHeaderValue(f *testing.F) {
	for _, s := range []string{
		"=?utf-8?q?caf=C3=A9?=", "=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=", "=?utf-8?b?w6Q=?= =?utf-8?b?w7Y=?=",
		"=?Shift_JIS?B?jlKTYw==?=", "=?ISO-2022-JP?B?GyRCJEgkaiQiJCgkOhsoQg==?=", "Gr\xfc\xdfe", "=?x?q??=",
		"=?utf-16?b?AGEAYg==?=", "folded\r\n text", "=?utf-8?q?=?=", "=?=?utf-8?q?x?=?=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := DecodeHeaderValue(raw)
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 %q", got)
		}
		if strings.ContainsAny(got, "\r\n") && !strings.ContainsAny(raw, "=") {
			t.Fatalf("line break left in %q", got)
		}
		BaseSubject(raw)
	})
}

// FuzzUnmarshalBinary checks that decoding garbage never panics, that
// what it allocates is bounded by the input size, and that what it
// accepts encodes back to the same bytes.
func FuzzUnmarshalBinary(f *testing.F) {
	for _, name := range []string{"plain.eml", "nested.eml", "mixed.eml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		s, err := Parse(bytes.NewReader(b))
		if err != nil {
			f.Fatal(err)
		}
		enc, _ := s.MarshalBinary()
		f.Add(enc)
	}
	full, _ := fullSummary().MarshalBinary()
	f.Add(full)
	f.Add([]byte{binaryVersion})
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var s Summary
		err := s.UnmarshalBinary(data)
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > uint64(32*len(data)+4096) {
			t.Fatalf("decoding %d bytes allocated %d", len(data), n)
		}
		if err != nil {
			return
		}
		enc, _ := s.MarshalBinary()
		var again Summary
		if err := again.UnmarshalBinary(enc); err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		enc2, _ := again.MarshalBinary()
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable")
		}
	})
}

// FuzzParseAddressList checks that address parsing never panics, that
// group markers are balanced, and that no host keeps whitespace or a
// comment (RFC 5322 §3.2.2, §4.4). FuzzAddressComment checks the names
// taken from comments.
func FuzzParseAddressList(f *testing.F) {
	for _, s := range []string{
		`"Doe, John" <j@x>, k@y`, "A Group:Ed <c@a>,joe@w;", "<@r1,@r2:u@h>", "a@b (c), <d@e", `"unterminated`,
		"g: a@b; c@d", "=?utf-8?q?x,y?= <a@b>", "Pete(A \\) chap) <pete(x)@silly.test(y)>", ":;:;<>@@,,",
		// Names from comments, obsolete forms.
		"kim@example.net (Kim Lee)", "kim@example.net (Kim (the boss) Lee) (second)", `k@x (a \(b\) \\)`,
		"jo@example.de (=?UTF-8?Q?J=C3=B6rg?=)", "<user (c)@ (c) domain.org> (x)", "john . doe @ example . org (J)",
		"< @a , ,@b : u@h >", "g: a@b (A), c@d;, e@f (E)", "g:(x);", "k@ (K)", "a@b\r\n\t(folded\r\n name)",
		"a@b (unterminated", `"q l"@x (Q)`, "a@[1.2.3.4] (lit)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		open := false
		for _, a := range ParseAddressList(raw) {
			switch {
			case a.IsGroupStart:
				if open {
					t.Fatalf("nested group in %q", raw)
				}
				open = true
			case a.IsGroupEnd:
				if !open {
					t.Fatalf("group end without start in %q", raw)
				}
				open = false
			}
			if strings.ContainsAny(a.Host, " \t\r\n") {
				t.Fatalf("%q: host %q has whitespace", raw, a.Host)
			}
			if !strings.HasPrefix(a.Host, "[") && strings.Contains(a.Host, "(") {
				t.Fatalf("%q: host %q keeps a comment", raw, a.Host)
			}
		}
		if open {
			t.Fatalf("unclosed group in %q", raw)
		}
	})
}

// FuzzAddressComment checks the display name taken from a comment (what
// Dovecot and Cyrus do; RFC 5322 §3.2.2 comments): any text written as a
// comment after a bare addr-spec, with its specials quoted, comes back as
// the name with whitespace collapsed; inside angle brackets, or after a
// phrase, it names nothing and never leaks into the address.
func FuzzAddressComment(f *testing.F) {
	for _, s := range []string{"Kim Lee", "Kim (the boss) Lee", `back\slash`, "=?UTF-8?Q?J=C3=B6rg?=", "a\r\n b", " ", "))((", "x, y; z: <w>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		var b strings.Builder
		for i := 0; i < len(text); i++ {
			if c := text[i]; c == '(' || c == ')' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(text[i])
		}
		comment := "(" + b.String() + ")"
		want := strings.Join(strings.FieldsFunc(text, func(r rune) bool {
			return r == ' ' || r == '\t' || r == '\r' || r == '\n'
		}), " ")
		addr := Address{Name: want, Mailbox: "kim", Host: "example.net"}
		check := func(raw string, want []Address) {
			t.Helper()
			if got := ParseAddressList(raw); !reflect.DeepEqual(got, want) {
				t.Fatalf("ParseAddressList(%q)\n got %+v\nwant %+v", raw, got, want)
			}
		}
		check("kim@example.net "+comment, []Address{addr})
		check("kim@example.net"+comment+", lou@example.com", []Address{addr, {Mailbox: "lou", Host: "example.com"}})
		check("team: kim@ example.net "+comment+";", []Address{{Mailbox: "team", IsGroupStart: true}, addr, {IsGroupEnd: true}})
		check("<kim "+comment+"@example.net> "+comment, []Address{{Mailbox: "kim", Host: "example.net"}})
		check("Kim <kim@example.net> "+comment, []Address{{Name: "Kim", Mailbox: "kim", Host: "example.net"}})
	})
}

// FuzzParseDate checks that date parsing never panics and returns UTC
// times in range.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{
		"Tue, 10 Sep 2024 09:14:58 +0200", "Mon Jan  2 15:04:05 2006", "2006-01-02T15:04:05Z",
		"Tue, 02-Jan-2006 15:04:05 GMT", "Jan 2, 2006 3:04 PM", "31 Feb 99 99:99:99 +9999", "(((",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseDate(s)
		if ok && (d.Year() < 0 || d.Year() > 10000) {
			t.Fatalf("%q: year %d", s, d.Year())
		}
	})
}

// FuzzParseContentType checks that parameter parsing never panics and
// gives lower-case names and valid UTF-8 for RFC 2231 values.
func FuzzParseContentType(f *testing.F) {
	for _, s := range []string{
		`multipart/mixed; boundary="a b;c"`, "application/x; title*0*=us-ascii'en'a%20; title*1=\"b\"",
		"text/plain; name*=utf-8''%E2%82%AC", `text/plain; a="\"`, "text/plain; a*999*=x; a*0=y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _, params, _ := parseContentType(s)
		if len(params) > maxParams {
			t.Fatalf("%d params", len(params))
		}
		for _, p := range params {
			if p.Name != strings.ToLower(p.Name) {
				t.Fatalf("name %q not lower-case", p.Name)
			}
		}
	})
}

// FuzzReadHeader checks that the fields' raw bytes are exactly the header
// section, and that ParseHeader agrees with ReadHeader.
func FuzzReadHeader(f *testing.F) {
	f.Add([]byte(sampleHeader))
	f.Add([]byte("A: b\n c\n\nbody"))
	f.Add([]byte(" x\r\n\r"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ReadHeader(bytes.NewReader(b), 0)
		if err != nil {
			t.Fatal(err)
		}
		var raw []byte
		for _, fl := range h.Fields {
			raw = append(raw, fl.Raw...)
		}
		if !bytes.HasPrefix(b, raw) {
			t.Fatalf("raw fields are not a prefix of the input")
		}
		h2 := ParseHeader(b)
		if len(h2.Fields) != len(h.Fields) || h2.Terminated != h.Terminated {
			t.Fatalf("ParseHeader and ReadHeader disagree")
		}
		h.AppendFields(nil, []string{"a"}, true)
	})
}

// FuzzBinaryReader checks the transfer decoders: streaming in small reads
// gives the same bytes as one pass, and NewCRLFReader turns every bare LF
// and bare CR into CRLF and changes nothing else.
func FuzzBinaryReader(f *testing.F) {
	f.Add([]byte("SGVsbG8s\r\nIHdvcmxkIQ==\r\n"), true)
	f.Add([]byte("Caf=C3=A9 =\r\nx  \r\n=4"), false)
	f.Fuzz(func(t *testing.T, in []byte, b64 bool) {
		enc := "quoted-printable"
		if b64 {
			enc = "base64"
		}
		r, err := NewBinaryReader(bytes.NewReader(in), enc)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := io.ReadAll(r)
		d := transferDecoder{kind: parseCTE(enc)}
		var got []byte
		for _, c := range in {
			got = d.decode(got, []byte{c})
		}
		got = d.flush(got)
		if !bytes.Equal(got, want) {
			t.Fatalf("byte-wise decoding differs: %q vs %q", got, want)
		}
		out, _ := io.ReadAll(NewCRLFReader(iotest.OneByteReader(bytes.NewReader(in))))
		if n := bytes.Count(out, []byte("\r\n")); bytes.Count(out, []byte("\n")) != n || bytes.Count(out, []byte("\r")) != n {
			t.Fatalf("bare LF or CR left in %q", out)
		}
		lines := func(b []byte) []byte {
			b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
			return bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
		}
		if !bytes.Equal(lines(out), lines(in)) {
			t.Fatalf("CRLF conversion changed more than line endings: %q to %q", in, out)
		}
		if whole, _ := io.ReadAll(NewCRLFReader(bytes.NewReader(in))); !bytes.Equal(whole, out) {
			t.Fatalf("CRLF conversion in one read %q, byte by byte %q", whole, out)
		}
		if b64 {
			// Counting the decoded size, in two pieces, gives the size
			// decoding gives.
			c := transferDecoder{kind: cteBase64}
			half := len(in) / 2
			n := c.base64Size(in[:half]) + c.base64Size(in[half:]) + int64(len(c.flush(nil)))
			if n != int64(len(want)) {
				t.Fatalf("base64 size counted %d, decoded %d", n, len(want))
			}
		}
	})
}
