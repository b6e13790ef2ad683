package message

import (
	"bytes"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

// parseBothWays parses msg line by line and with bulk runs, through
// readers that hand it over in different pieces (so the runs bulk sees
// differ), and fails unless every summary is the same.
func parseBothWays(t *testing.T, msg []byte) {
	t.Helper()
	want, err := parse(bytes.NewReader(msg), true)
	if err != nil {
		t.Fatalf("line by line: %v", err)
	}
	wantBin, err := want.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	readers := map[string]func() io.Reader{
		"whole":   func() io.Reader { return bytes.NewReader(msg) },
		"half":    func() io.Reader { return iotest.HalfReader(bytes.NewReader(msg)) },
		"onebyte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(msg)) },
		"odd":     func() io.Reader { return &oddReader{b: msg} },
	}
	for name, r := range readers {
		got, err := parse(r(), false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		gotBin, _ := got.MarshalBinary()
		if !bytes.Equal(gotBin, wantBin) || got.Preview != want.Preview {
			t.Fatalf("%s: the bulk parse differs from the line-by-line parse\nbulk: %+v\nlines: %+v", name, got.Root, want.Root)
		}
	}
}

// oddReader returns 1, 2, 3, ... 97, 1, 2, ... bytes per read.
type oddReader struct {
	b []byte
	n int
}

func (o *oddReader) Read(p []byte) (int, error) {
	if len(o.b) == 0 {
		return 0, io.EOF
	}
	o.n = o.n%97 + 1
	k := copy(p[:min(len(p), o.n)], o.b)
	o.b = o.b[k:]
	return k, nil
}

// TestParseBulk: the bulk path gives the summary of the line-by-line
// path for the fixtures and for large base64 and plain parts, with CRLF,
// bare LF, padding in the middle, lines that begin with "-" or "--", long
// lines, preambles, epilogues and parts beyond MaxParts.
func TestParseBulk(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			msg, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			parseBothWays(t, msg)
		})
	}
	data := make([]byte, 100<<10)
	for i := range data {
		data[i] = byte(i * 31)
	}
	enc := base64.StdEncoding.EncodeToString(data)
	var lines []string
	for len(enc) > 76 {
		lines = append(lines, enc[:76])
		enc = enc[76:]
	}
	lines = append(lines, enc)
	b64 := strings.Join(lines, "\r\n")
	padded := base64.StdEncoding.EncodeToString([]byte("ab")) + "\r\n" + base64.StdEncoding.EncodeToString([]byte("c")) + "\r\n" + b64
	plain := strings.Repeat("a line of text\r\n-a line with a dash\r\n- -\r\n\r\n", 3000)
	long := strings.Repeat("x", 9000) + "\r\n" + strings.Repeat("y", 4095) + "\r\n" + strings.Repeat("z\r", 3000) + "\r\n"
	mixed := func(eol, body, cte string) string {
		s := "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\npreamble\r\n-- not a delimiter\r\n--bb not this one either\r\n" +
			"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n" + body + "\r\n" +
			"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\nepilogue\r\n" + plain
		return strings.ReplaceAll(s, "\r\n", eol)
	}
	cases := map[string]string{
		"base64":        mixed("\r\n", b64, "base64"),
		"base64-lf":     mixed("\n", b64, "base64"),
		"padded":        mixed("\r\n", padded, "base64"),
		"binary":        mixed("\r\n", plain, "7bit"),
		"long-lines":    mixed("\r\n", long, "base64"),
		"long-lines-7":  mixed("\r\n", long, "7bit"),
		"single":        "Content-Transfer-Encoding: base64\r\nContent-Type: image/png\r\n\r\n" + b64 + "\r\n",
		"single-noeol":  "Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64,
		"dash-at-start": "Content-Type: application/zip\r\n\r\n--x\r\n" + plain,
	}
	var many strings.Builder
	many.WriteString("Content-Type: multipart/mixed; boundary=m\r\n\r\n")
	for range MaxParts + 3 {
		many.WriteString("--m\r\nContent-Transfer-Encoding: base64\r\n\r\nYWJj\r\nZGVm\r\n")
	}
	many.WriteString("--m--\r\n")
	cases["beyond-max-parts"] = many.String()
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) { parseBothWays(t, []byte(msg)) })
	}
}

// FuzzParseBulk: for any input, the bulk parse is the line-by-line parse.
func FuzzParseBulk(f *testing.F) {
	addFixtures(f)
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Transfer-Encoding: base64\r\n\r\nYWJj\r\n-YW\r\n--a--\r\nx\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\n\npre\n--a\nContent-Transfer-Encoding: base64\n\nYQ==\nYWI=\n--a\n\n--a--"))
	f.Fuzz(func(t *testing.T, msg []byte) { parseBothWays(t, msg) })
}

// BenchmarkParseLineByLine is BenchmarkParse without the bulk path.
func BenchmarkParseLineByLine(b *testing.B) {
	msg := benchMessage()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parse(bytes.NewReader(msg), true); err != nil {
			b.Fatal(err)
		}
	}
}
