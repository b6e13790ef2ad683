package message

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

func encodeBinary(t testing.TB, in []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(EncodeBinaryParts(iotest.OneByteReader(bytes.NewReader(in))))
	if err != nil {
		t.Fatalf("EncodeBinaryParts: %v", err)
	}
	fast, err := io.ReadAll(EncodeBinaryParts(bytes.NewReader(in)))
	if err != nil || !bytes.Equal(fast, out) {
		t.Fatalf("EncodeBinaryParts depends on how it is read: %q vs %q (%v)", fast, out, err)
	}
	return out
}

func TestEncodeBinaryParts(t *testing.T) {
	tests := []struct{ in, want string }{
		{ // A single part, as Dovecot converts it.
			"From: a@b\r\nContent-Transfer-Encoding: binary\r\nSubject: x\r\n\r\nab\x00cd\r\n",
			"From: a@b\r\nContent-Transfer-Encoding: base64\r\nSubject: x\r\n\r\nYWIAY2QNCg==",
		},
		{ // No line ending at the end; LF line endings.
			"Content-Transfer-Encoding: Binary (raw)\n\n\x00\x01\x02\x03",
			"Content-Transfer-Encoding: base64\n\nAAECAw==",
		},
		{ // The line ending before a delimiter stays the delimiter's.
			"Content-Type: multipart/mixed; boundary=XX\r\n\r\npre\r\n--XX\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\r\n\x00\r\n--XX\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xff\x00\r\n--XX--\r\nepi\r\n",
			"Content-Type: multipart/mixed; boundary=XX\r\n\r\npre\r\n--XX\r\nContent-Transfer-Encoding: base64\r\n\r\nAA0KAA==\r\n--XX\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xff\x00\r\n--XX--\r\nepi\r\n",
		},
		{ // Nested: inside message/rfc822 and a nested multipart; an empty binary part.
			"Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: message/rfc822\n\nContent-Type: multipart/alternative; boundary=ab\n\n--ab\ncontent-transfer-encoding:binary\n\n\x00\x00\x00\n--ab\nContent-Transfer-Encoding: binary\n\n--ab--\n--a--\n",
			"Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: message/rfc822\n\nContent-Type: multipart/alternative; boundary=ab\n\n--ab\nContent-Transfer-Encoding: base64\n\nAAAA\n--ab\nContent-Transfer-Encoding: base64\n\n--ab--\n--a--\n",
		},
		{ // Folded field; multipart and message parts are not converted.
			"Content-Transfer-Encoding:\r\n binary\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: binary\r\n\r\nSubject: x\r\n\r\n\x00\r\n--z--\r\n",
			"Content-Transfer-Encoding:\r\n binary\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: binary\r\n\r\nSubject: x\r\n\r\n\x00\r\n--z--\r\n",
		},
		{ // A folded field is replaced as a whole.
			"Content-Transfer-Encoding:\r\n binary\r\nX: y\r\n\r\n\xff",
			"Content-Transfer-Encoding: base64\r\nX: y\r\n\r\n/w==",
		},
		{ // A header without its blank line has no body to convert.
			"Content-Transfer-Encoding: binary\r\nX: \x00",
			"Content-Transfer-Encoding: binary\r\nX: \x00",
		},
		{ // Nothing to convert: unchanged.
			"Subject: plain\r\n\r\nhello\r\n.\r\n", "Subject: plain\r\n\r\nhello\r\n.\r\n",
		},
	}
	for _, tc := range tests {
		if got := encodeBinary(t, []byte(tc.in)); string(got) != tc.want {
			t.Errorf("EncodeBinaryParts(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
		checkBinaryEncoded(t, []byte(tc.in))
	}
}

// TestEncodeBinaryPartsLines: long content gives 76-character lines with
// the header's line ending, and no line ending after the last.
func TestEncodeBinaryPartsLines(t *testing.T) {
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i)
	}
	for _, eol := range []string{"\r\n", "\n"} {
		in := "Content-Transfer-Encoding: binary" + eol + eol + string(data)
		out := string(encodeBinary(t, []byte(in)))
		_, body, _ := strings.Cut(out, eol+eol)
		want := base64.StdEncoding.EncodeToString(data)
		var lines []string
		for len(want) > base64Line {
			lines = append(lines, want[:base64Line])
			want = want[base64Line:]
		}
		lines = append(lines, want)
		if body != strings.Join(lines, eol) {
			t.Fatalf("%q: body %q", eol, body)
		}
	}
}

// TestEncodeBinaryPartsRandom checks the property of FuzzEncodeBinaryParts
// on generated MIME messages.
func TestEncodeBinaryPartsRandom(t *testing.T) {
	rnd := rand.New(rand.NewPCG(12, 3))
	for range 2000 {
		var b bytes.Buffer
		genMIME(rnd, &b, 0, "")
		checkBinaryEncoded(t, b.Bytes())
	}
}

// FuzzEncodeBinaryParts: for any input, Parse finds the same parts in the
// result; a converted part is base64 of the original part's bytes, every
// other part is unchanged.
func FuzzEncodeBinaryParts(f *testing.F) {
	addFixtures(f)
	f.Add([]byte("Content-Transfer-Encoding: binary\r\n\r\n\x00\r"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Transfer-Encoding: binary\n\n\r\n\r\r\n--a--"))
	f.Add([]byte("Content-Type: multipart/digest; boundary=d\n\n--d\n\nContent-Transfer-Encoding: binary\n\nx\n--d--\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkBinaryEncoded(t, in)
	})
}

// checkBinaryEncoded checks EncodeBinaryParts on one message against
// Parse.
func checkBinaryEncoded(t testing.TB, in []byte) {
	t.Helper()
	out := encodeBinary(t, in)
	sin, err := Parse(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	sout, err := Parse(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	converted := 0
	var walk func(a, b *Part, path string)
	walk = func(a, b *Part, path string) {
		if a.Type != b.Type || a.Subtype != b.Subtype || len(a.Parts) != len(b.Parts) {
			t.Fatalf("%q: part %s is %s/%s with %d parts, was %s/%s with %d\nout %q",
				in, path, b.Type, b.Subtype, len(b.Parts), a.Type, a.Subtype, len(a.Parts), out)
		}
		for i := range a.Parts {
			walk(&a.Parts[i], &b.Parts[i], fmt.Sprintf("%s.%d", path, i+1))
		}
		if len(a.Parts) > 0 {
			return
		}
		orig, now := in[a.BodyStart:a.End], out[b.BodyStart:b.End]
		if a.Encoding == "binary" && a.Type != "multipart" && b.Encoding == "base64" {
			converted++
			text := string(now)
			for _, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
				if len(line) > base64Line {
					t.Fatalf("%q: part %s has a base64 line of %d characters", in, path, len(line))
				}
			}
			dec, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(text))
			if err != nil || !bytes.Equal(dec, orig) {
				t.Fatalf("%q: part %s decodes to %q (%v), was %q\nout %q", in, path, dec, err, orig, out)
			}
			if a.DecodedSize != int64(len(orig)) || b.DecodedSize != int64(len(orig)) {
				t.Fatalf("%q: part %s decoded size %d, then %d, want %d", in, path, a.DecodedSize, b.DecodedSize, len(orig))
			}
			return
		}
		if a.Encoding == "binary" && a.Type != "multipart" && len(orig) > 0 {
			t.Fatalf("%q: part %s with a binary body was not converted\nout %q", in, path, out)
		}
		if a.Encoding != b.Encoding || !bytes.Equal(orig, now) {
			t.Fatalf("%q: part %s changed: %q %q, was %q %q", in, path, b.Encoding, now, a.Encoding, orig)
		}
	}
	walk(&sin.Root, &sout.Root, "0")
	if converted == 0 && !bytes.Equal(in, out) {
		t.Fatalf("%q: nothing to convert, yet changed to %q", in, out)
	}
}

// genMIME writes a random MIME entity: headers with random line endings
// and encodings, multiparts (sometimes without their close delimiter),
// message/rfc822 parts, and bodies of random bytes.
func genMIME(rnd *rand.Rand, b *bytes.Buffer, depth int, boundary string) {
	eol := []string{"\r\n", "\n"}[rnd.IntN(2)]
	ctes := []string{"binary", "Binary", "8bit", "", "7bit", "binary (x)"}
	cte := ctes[rnd.IntN(len(ctes))]
	kind := rnd.IntN(10)
	if depth >= 3 {
		kind = 9
	}
	if cte != "" {
		fmt.Fprintf(b, "Content-Transfer-Encoding: %s%s", cte, eol)
	}
	switch {
	case kind < 2:
		inner := fmt.Sprintf("b%d%d", depth, rnd.IntN(100))
		fmt.Fprintf(b, "Content-Type: multipart/mixed; boundary=%q%s%s", inner, eol, eol)
		if rnd.IntN(2) == 0 {
			b.WriteString("preamble" + eol)
		}
		for range 1 + rnd.IntN(3) {
			b.WriteString("--" + inner + eol)
			genMIME(rnd, b, depth+1, inner)
			b.WriteString(eol)
		}
		if rnd.IntN(4) > 0 {
			b.WriteString("--" + inner + "--" + eol)
		}
	case kind < 3:
		b.WriteString("Content-Type: message/rfc822" + eol + eol)
		genMIME(rnd, b, depth+1, boundary)
	default:
		if rnd.IntN(2) == 0 {
			b.WriteString("Content-Type: application/octet-stream" + eol)
		}
		if rnd.IntN(10) > 0 {
			b.WriteString(eol)
		}
		alphabet := []string{"\x00", "\r", "\n", "\r\n", "a", "-", "--", "\xff", "=", "."}
		for range rnd.IntN(40) {
			b.WriteString(alphabet[rnd.IntN(len(alphabet))])
		}
	}
}
