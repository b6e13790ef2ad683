package imap

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/postfach/postfach/internal/message"
)

// stringSource is a MessageSource over a string.
type stringSource struct{ *strings.Reader }

func (s stringSource) Size() int64 { return s.Reader.Size() }

func source(s string) MessageSource { return stringSource{strings.NewReader(s)} }

const testMessage = "From: a@example.org\r\n" +
	"To: b@example.org\r\n" +
	"Subject: test\r\n" +
	"Content-Type: multipart/mixed; boundary=\"XX\"\r\n" +
	"\r\n" +
	"preamble\r\n" +
	"--XX\r\n" +
	"Content-Type: text/plain\r\n" +
	"\r\n" +
	"Hello\r\n" +
	"--XX\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"\r\n" +
	"Subject: inner\r\n" +
	"X-A: 1\r\n" +
	" continued\r\n" +
	"Content-Type: text/plain\r\n" +
	"\r\n" +
	"Inner body\r\n" +
	"--XX\r\n" +
	"Content-Type: application/octet-stream\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"aGVsbG8gd29y\r\n" +
	"bGQ=\r\n" +
	"--XX\r\n" +
	"Content-Type: text/plain\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"caf=C3=A9 =\r\n" +
	"au lait  \r\n" +
	"--XX\r\n" +
	"Content-Type: text/plain\r\n" +
	"Content-Transfer-Encoding: x-uuencode\r\n" +
	"\r\n" +
	"begin\r\n" +
	"--XX--\r\n"

// part describes a part by the text its header starts with and the text
// of its body, located in testMessage from position from.
func locate(t *testing.T, from int64, header, body string) message.Part {
	t.Helper()
	hs := strings.Index(testMessage[from:], header)
	if hs < 0 {
		t.Fatalf("header %q not found", header)
	}
	h := from + int64(hs)
	bs := strings.Index(testMessage[h:], "\r\n\r\n")
	b := h + int64(bs) + 4
	if !strings.HasPrefix(testMessage[b:], body) {
		t.Fatalf("body %q not at %d", body, b)
	}
	return message.Part{HeaderStart: h, BodyStart: b, End: b + int64(len(body)), Type: "text", Subtype: "plain"}
}

func testSummary(t *testing.T) *message.Summary {
	root := locate(t, 0, "From:", "preamble")
	root.Type, root.Subtype = "multipart", "mixed"
	root.End = int64(len(testMessage))
	p1 := locate(t, 0, "Content-Type: text/plain", "Hello")
	p2 := locate(t, p1.End, "Content-Type: message/rfc822", "Subject: inner")
	p2.Type, p2.Subtype = "message", "rfc822"
	inner := locate(t, p2.BodyStart, "Subject: inner", "Inner body")
	p2.End = inner.End
	p2.Parts = []message.Part{inner}
	p3 := locate(t, p2.End, "Content-Type: application", "aGVsbG8gd29y\r\nbGQ=")
	p3.Type, p3.Subtype, p3.Encoding = "application", "octet-stream", "base64"
	p4 := locate(t, p3.End, "Content-Type: text/plain", "caf=C3=A9 =\r\nau lait  ")
	p4.Encoding = "quoted-printable"
	p5 := locate(t, p4.End, "Content-Type: text/plain", "begin")
	p5.Encoding = "x-uuencode"
	root.Parts = []message.Part{p1, p2, p3, p4, p5}
	return &message.Summary{Root: root}
}

func TestFindPart(t *testing.T) {
	sum := testSummary(t)
	tests := []struct {
		path []uint32
		want *message.Part
	}{
		{nil, &sum.Root},
		{[]uint32{1}, &sum.Root.Parts[0]},
		{[]uint32{2}, &sum.Root.Parts[1]},
		{[]uint32{2, 1}, &sum.Root.Parts[1].Parts[0]}, // body of a non-multipart encapsulated message
		{[]uint32{2, 2}, nil},
		{[]uint32{1, 1}, nil}, // a leaf has no parts
		{[]uint32{6}, nil},
		{[]uint32{0}, nil},
	}
	for _, tc := range tests {
		if got := FindPart(&sum.Root, tc.path); got != tc.want {
			t.Errorf("FindPart(%v) = %p, want %p", tc.path, got, tc.want)
		}
	}
	// In a message that is not multipart, part 1 is the message body.
	single := message.Part{Type: "text", Subtype: "plain"}
	if FindPart(&single, []uint32{1}) != &single || FindPart(&single, []uint32{2}) != nil || FindPart(&single, []uint32{1, 1}) != nil {
		t.Error("single part numbering wrong")
	}
}

func TestOpenSection(t *testing.T) {
	sum := testSummary(t)
	msg := source(testMessage)
	rootHeader := testMessage[:strings.Index(testMessage, "\r\n\r\n")+4]
	tests := []struct {
		sec  string
		p    Partial
		want string
	}{
		{"BODY[]", Partial{}, testMessage},
		{"BODY[]", Partial{5, 10}, testMessage[5:15]},
		{"BODY[]", Partial{int64(len(testMessage)) - 3, 100}, testMessage[len(testMessage)-3:]},
		{"BODY[HEADER]", Partial{}, rootHeader},
		{"BODY[TEXT]", Partial{}, testMessage[len(rootHeader):]},
		{"BODY[1]", Partial{}, "Hello"},
		{"BODY[1.MIME]", Partial{}, "Content-Type: text/plain\r\n\r\n"},
		{"BODY[2]", Partial{}, "Subject: inner\r\nX-A: 1\r\n continued\r\nContent-Type: text/plain\r\n\r\nInner body"},
		{"BODY[2.HEADER]", Partial{}, "Subject: inner\r\nX-A: 1\r\n continued\r\nContent-Type: text/plain\r\n\r\n"},
		{"BODY[2.TEXT]", Partial{}, "Inner body"},
		{"BODY[2.1]", Partial{}, "Inner body"},
		{"BODY[2.MIME]", Partial{}, "Content-Type: message/rfc822\r\n\r\n"},
		{"BODY[2.HEADER.FIELDS (x-a)]", Partial{}, "X-A: 1\r\n continued\r\n\r\n"},
		{"BODY[2.HEADER.FIELDS.NOT (X-A SUBJECT)]", Partial{}, "Content-Type: text/plain\r\n\r\n"},
		{"BODY[HEADER.FIELDS (Subject From)]", Partial{}, "From: a@example.org\r\nSubject: test\r\n\r\n"},
		{"BODY[HEADER.FIELDS.NOT (To Content-Type)]", Partial{}, "From: a@example.org\r\nSubject: test\r\n\r\n"},
		{"BODY[HEADER.FIELDS (subject)]", Partial{0, 5}, "Subje"},
		{"BODY[HEADER.FIELDS (subject)]", Partial{9, 100}, "test\r\n\r\n"},
		{"BODY[HEADER.FIELDS (subject)]", Partial{100, 5}, ""},
		{"BODY[HEADER.FIELDS (X-None)]", Partial{}, "\r\n"},
		{"BODY[3]", Partial{100, 5}, ""},
		{"BODY[7]", Partial{}, ""},
		{"BODY[1.1]", Partial{}, ""},
		{"BODY[1.HEADER]", Partial{}, ""}, // not a message/rfc822 part
		{"BODY[3.TEXT]", Partial{}, ""},
	}
	for _, tc := range tests {
		r, _ := newTestReader("a FETCH 1 "+tc.sec+"\r\n", Options{})
		cmd, err := r.ReadCommand()
		if err != nil {
			t.Fatalf("%s: %v", tc.sec, err)
		}
		sec := cmd.(*Fetch).Items[0].Section
		rd, n, err := OpenSection(msg, sum, &sec, tc.p)
		if err != nil {
			t.Fatalf("%s: %v", tc.sec, err)
		}
		b, err := io.ReadAll(rd)
		if err != nil {
			t.Fatalf("%s: %v", tc.sec, err)
		}
		if string(b) != tc.want || n != int64(len(b)) {
			t.Errorf("%s %v: %q (size %d), want %q", tc.sec, tc.p, b, n, tc.want)
		}
	}
}

func TestHeaderFilterSmallReads(t *testing.T) {
	// Long lines and continuation lines, read one byte at a time.
	hdr := "Subject: " + strings.Repeat("s", 10000) + "\r\n" +
		"X-Long: a\r\n\t" + strings.Repeat("b", 9000) + "\r\n" +
		"NoColonLine\r\n" +
		strings.Repeat("N", 300) + ": long name\r\n" +
		"To: x\r\n\r\n"
	f := &fieldFilter{fields: []string{"x-long", "TO"}}
	b, err := io.ReadAll(iotest.OneByteReader(newHeaderFilter(strings.NewReader(hdr), f)))
	want := "X-Long: a\r\n\t" + strings.Repeat("b", 9000) + "\r\nTo: x\r\n\r\n"
	if err != nil || string(b) != want {
		t.Errorf("filter: %v, %d bytes", err, len(b))
	}
	f.not = true
	b, _ = io.ReadAll(newHeaderFilter(strings.NewReader(hdr), f))
	want = "Subject: " + strings.Repeat("s", 10000) + "\r\nNoColonLine\r\n" + strings.Repeat("N", 300) + ": long name\r\n\r\n"
	if string(b) != want {
		t.Errorf("filter NOT: %d bytes", len(b))
	}
}

func TestOpenBinary(t *testing.T) {
	sum := testSummary(t)
	msg := source(testMessage)
	tests := []struct {
		part []uint32
		p    Partial
		want string
	}{
		{[]uint32{3}, Partial{}, "hello world"},
		{[]uint32{3}, Partial{6, 5}, "world"},
		{[]uint32{3}, Partial{20, 5}, ""},
		{[]uint32{4}, Partial{}, "café au lait"},
		{[]uint32{1}, Partial{}, "Hello"},
		{[]uint32{2}, Partial{}, "Subject: inner\r\nX-A: 1\r\n continued\r\nContent-Type: text/plain\r\n\r\nInner body"},
		{nil, Partial{0, 4}, "From"},
		{[]uint32{9}, Partial{}, ""},
	}
	for _, tc := range tests {
		rd, n, err := OpenBinary(msg, sum, tc.part, tc.p)
		if err != nil {
			t.Fatalf("%v: %v", tc.part, err)
		}
		b, _ := io.ReadAll(rd)
		if string(b) != tc.want || n != int64(len(b)) {
			t.Errorf("BINARY%v%v = %q (%d), want %q", tc.part, tc.p, b, n, tc.want)
		}
		size, err := BinarySize(msg, sum, tc.part)
		if tc.p == (Partial{}) && (err != nil || size != int64(len(tc.want))) {
			t.Errorf("BINARY.SIZE%v = %d, %v", tc.part, size, err)
		}
	}
	if _, _, err := OpenBinary(msg, sum, []uint32{5}, Partial{}); !errors.Is(err, ErrUnknownCTE) {
		t.Errorf("x-uuencode: %v", err)
	}
	if _, err := BinarySize(msg, sum, []uint32{5}); !errors.Is(err, ErrUnknownCTE) {
		t.Errorf("x-uuencode size: %v", err)
	}
}

func FuzzHeaderFilter(f *testing.F) {
	f.Add([]byte("From: a\r\nTo: b\r\n c\r\nSubject: x\r\n\r\nbody"), "to,subject", false)
	f.Add([]byte("X:1\r\n\r\n"), "x", true)
	f.Add([]byte(" lead\r\nNoColon\r\n:x\r\nA : b\r\n\tcont\r\n\nZ: z"), "a,noColon", true)
	f.Add([]byte("To: x"), "to", false)
	f.Add([]byte("\r\rA: b\r\n\r"), "a", false)
	f.Fuzz(func(t *testing.T, hdr []byte, names string, not bool) {
		var fields []string
		for _, n := range strings.Split(names, ",") {
			if validFieldName(n) {
				fields = append(fields, n)
			}
		}
		// The reference: the message package's in-memory header
		// parser, which FETCH semantics were specified against.
		want := message.ParseHeader(hdr).AppendFields(nil, fields, not)
		var src io.Reader = newHeaderFilter(bytes.NewReader(hdr), &fieldFilter{fields, not})
		if len(hdr)%2 == 1 {
			src = iotest.OneByteReader(src)
		}
		got, err := io.ReadAll(src)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("header %q fields %q not=%v:\n got %q\nwant %q", hdr, fields, not, got, want)
		}
	})
}
