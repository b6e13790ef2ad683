package message

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestNewBinaryReader(t *testing.T) {
	tests := []struct {
		name, enc, in, want string
	}{
		{"identity", "7bit", "a\r\nb", "a\r\nb"},
		{"empty encoding", "", "x", "x"},
		{"binary", "BINARY", "\x00\xff", "\x00\xff"},
		{"base64", "base64", "SGVsbG8s\r\nIHdvcmxkIQ==\r\n", "Hello, world!"},
		{"base64 upper case name", "Base64", "SGk=", "Hi"},
		{"base64 no padding", "base64", "SGk", "Hi"},
		{"base64 garbage skipped", "base64", "S*G!k=\r\n", "Hi"},
		{"base64 concatenated", "base64", "SGk=SGk=", "HiHi"},
		{"base64 lone char", "base64", "SGkx\r\nQ", "Hi1"},
		{"qp", "quoted-printable", "Caf=C3=A9 =3D ok", "Café = ok"},
		{"qp soft break", "quoted-printable", "long=\r\nline\r\n", "longline\r\n"},
		{"qp soft break bare LF", "quoted-printable", "long=\nline", "longline"},
		{"qp soft break with trailing space", "quoted-printable", "long= \t\r\nline", "longline"},
		{"qp trailing space removed", "quoted-printable", "a  \r\nb\t\r\n", "a\r\nb\r\n"},
		{"qp inner space kept", "quoted-printable", "a  b", "a  b"},
		{"qp lower-case hex", "quoted-printable", "=c3=a9", "é"},
		{"qp invalid escape kept", "quoted-printable", "a=ZZb=4", "a=ZZb=4"},
		{"qp equals at end", "quoted-printable", "end=", "end"},
		{"qp trailing space at end", "quoted-printable", "end  ", "end"},
		{"qp equals space then text", "quoted-printable", "a= b", "a= b"},
		{"qp lone CR after soft break", "quoted-printable", "a=\rb", "ab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, wrap := range []func(io.Reader) io.Reader{
				func(r io.Reader) io.Reader { return r }, iotest.OneByteReader, iotest.DataErrReader,
			} {
				r, err := NewBinaryReader(wrap(strings.NewReader(tt.in)), tt.enc)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tt.want {
					t.Errorf("got %q, want %q", got, tt.want)
				}
			}
		})
	}
}

func TestNewBinaryReaderUnknown(t *testing.T) {
	for _, enc := range []string{"x-uuencode", "x-token", "base 64"} {
		if _, err := NewBinaryReader(strings.NewReader(""), enc); !errors.Is(err, ErrUnknownEncoding) {
			t.Errorf("%q: error %v, want ErrUnknownEncoding", enc, err)
		}
	}
}

func TestNewTextReader(t *testing.T) {
	tests := []struct {
		name, enc, charset, in, want string
	}{
		{"utf-8", "8bit", "utf-8", "Grüße", "Grüße"},
		{"latin-1 qp", "quoted-printable", "ISO-8859-1", "Gr=FC=DFe", "Grüße"},
		{"windows-1252 quotes", "", "windows-1252", "\x93hi\x94", "“hi”"},
		{"shift_jis base64", "base64", "Shift_JIS", "gqKCoIKk", "いあう"},
		{"iso-2022-jp", "7bit", "iso-2022-jp", "\x1b$B$3$s$K$A$O\x1b(B", "こんにちは"},
		{"koi8-r", "8bit", "koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", "Привет"},
		{"gb2312 as gbk", "", "gb2312", "\xc4\xe3\xba\xc3", "你好"},
		{"unknown charset, utf-8 bytes", "", "x-klingon", "Grüße", "Grüße"},
		{"us-ascii with 8-bit", "", "us-ascii", "caf\xe9", "café"},
		{"no charset, mixed", "", "", "ok é \xe9", "ok é é"},
		{"unknown encoding passes through", "x-uue", "utf-8", "abc", "abc"},
		{"quoted charset name", "", `"UTF-8"`, "ü", "ü"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := io.ReadAll(NewTextReader(iotest.OneByteReader(strings.NewReader(tt.in)), tt.enc, tt.charset))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewCRLFReader(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a", "a"},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\rb\r", "a\r\nb\r\n"},
		{"\r\r\n\n", "\r\n\r\n\r\n"},
		{"mixed\r\nlf\ncr\rend", "mixed\r\nlf\r\ncr\r\nend"},
		{"\n\n", "\r\n\r\n"},
		{"\r", "\r\n"},
		{"\r\n", "\r\n"},
		{"\n\r", "\r\n\r\n"},
		{"a\r\rb", "a\r\n\r\nb"},
		{"x\r\n\ry\r.\r\n", "x\r\n\r\ny\r\n.\r\n"},
	}
	for _, tt := range tests {
		for _, wrap := range []func(io.Reader) io.Reader{
			func(r io.Reader) io.Reader { return r }, iotest.OneByteReader, iotest.HalfReader,
		} {
			got, err := io.ReadAll(wrap(NewCRLFReader(wrap(strings.NewReader(tt.in)))))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
			}
		}
	}
	// Large input crosses internal buffer boundaries.
	in := strings.Repeat("line\n", 5000) + strings.Repeat("x\r", 3000) + strings.Repeat("y\r\n", 9000)
	got, err := io.ReadAll(NewCRLFReader(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("line\r\n", 5000) + strings.Repeat("x\r\n", 3000) + strings.Repeat("y\r\n", 9000)
	if !bytes.Equal(got, []byte(want)) {
		t.Errorf("large input converted wrongly")
	}
	if err := iotest.TestReader(NewCRLFReader(strings.NewReader("a\nb\r\nc")), []byte("a\r\nb\r\nc")); err != nil {
		t.Error(err)
	}
}

func TestBinaryReaderIsReader(t *testing.T) {
	r, err := NewBinaryReader(strings.NewReader("SGVsbG8sIHdvcmxkIQ=="), "base64")
	if err != nil {
		t.Fatal(err)
	}
	if err := iotest.TestReader(r, []byte("Hello, world!")); err != nil {
		t.Error(err)
	}
}

// TestBase64Size: counting gives what decoding produces, whatever the
// input and however it is split.
func TestBase64Size(t *testing.T) {
	for _, in := range []string{
		"", "QQ==", "QUI=", "QUJD", "QUJDRA==\r\nRUY=", "Q", "QQ", "QQ=", "Q=Q=", "QU JD\r\n!!RA", "QQ==QUI=QUJD", strings.Repeat("QUJDREVG\r\n", 100) + "QQ",
		// Bytes outside the alphabet at every position of the 8-byte
		// words the padding-free count reads at once.
		"QUJD REVG\r\n!QUJD\tREVGSElK\x00\xffQUJDREVGSE\x80lKS0xNTk9Q-UVJTVFVW*V1hZWmFi",
	} {
		for split := 0; split <= len(in); split++ {
			var d, c transferDecoder
			d.kind, c.kind = cteBase64, cteBase64
			out := d.decode(nil, []byte(in[:split]))
			out = d.decode(out, []byte(in[split:]))
			out = d.flush(out)
			n := c.base64Size([]byte(in[:split]))
			n += c.base64Size([]byte(in[split:]))
			n += int64(len(c.flush(nil)))
			if n != int64(len(out)) {
				t.Fatalf("%q split at %d: counted %d, decoded %d", in, split, n, len(out))
			}
		}
	}
}
