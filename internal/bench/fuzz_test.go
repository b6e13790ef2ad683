package bench

import (
	"bufio"
	"bytes"
	"testing"
	"time"
)

// FuzzIMAPResponses feeds arbitrary server output to the response reader
// and the scanners the workloads use: no panic, no endless loop.
func FuzzIMAPResponses(f *testing.F) {
	f.Add([]byte("* OK [CAPABILITY IMAP4rev1 IDLE] hi\r\na1 OK done\r\n"))
	f.Add([]byte("* 1 FETCH (UID 5 BODY[] {5}\r\nhello)\r\na2 OK [APPENDUID 1 2] x\r\n"))
	f.Add([]byte("* 3 EXISTS\r\n* 1 FETCH (ENVELOPE (NIL {3}\r\na5 NIL))\r\n+ idling\r\n"))
	f.Add([]byte("* 1 FETCH (BINARY[] ~{99999999999}\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &IMAPClient{r: bufio.NewReaderSize(bytes.NewReader(data), 16), Caps: map[string]bool{}, timeout: time.Second}
		tag := []byte("a1")
		for range len(data) + 1 {
			line, err := c.readResponse()
			if err != nil {
				return
			}
			c.noteCaps(line)
			untaggedNum(line)
			fetchUID(line)
			literalSize(line)
			if _, text, ok := taggedStatus(line, tag); ok {
				appendUID(text)
			}
		}
		t.Fatalf("reader did not finish %d bytes", len(data))
	})
}

// FuzzLMTPReply checks the reply line parser.
func FuzzLMTPReply(f *testing.F) {
	for _, s := range []string{"250-PIPELINING\r\n", "250 ok\r\n", "354\r\n", "5", "999 x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		code, more, text, ok := parseReplyLine(line)
		if !ok {
			return
		}
		if code < 0 || code > 999 {
			t.Fatalf("code %d", code)
		}
		if more && len(text) == 0 && len(bytes.TrimRight(line, "\r\n")) > 4 {
			t.Fatalf("lost text of %q", line)
		}
	})
}

// FuzzPOP3Multi feeds arbitrary bytes to the multi-line reader.
func FuzzPOP3Multi(f *testing.F) {
	f.Add([]byte("a\r\n..b\r\n.\r\n"))
	f.Add([]byte(".\r\n"))
	f.Add([]byte("line without end"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &POP3Client{r: bufio.NewReaderSize(bytes.NewReader(data), 16)}
		_, n, _ := c.readMulti(nil)
		if n > int64(len(data)) {
			t.Fatalf("counted %d bytes of %d", n, len(data))
		}
	})
}

// FuzzSMTPData checks the DATA encoding: CRLF only, the terminator only at
// the end, and undoing the dot-stuffing gives the input back with its
// line ends made CRLF.
func FuzzSMTPData(f *testing.F) {
	for _, s := range []string{"a\r\nb", ".\r\n", "\r\r\n\n.", "..\n.x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := SMTPData(in)
		if !bytes.HasSuffix(out, []byte(".\r\n")) {
			t.Fatalf("no terminator: %q", out)
		}
		body := out[:len(out)-3]
		for i, b := range body {
			if b == '\n' && (i == 0 || body[i-1] != '\r') {
				t.Fatalf("bare LF in %q", out)
			}
			if b == '\r' && (i+1 >= len(body) || body[i+1] != '\n') {
				t.Fatalf("bare CR in %q", out)
			}
		}
		var unstuffed, want bytes.Buffer
		for _, l := range bytes.SplitAfter(body, []byte("\r\n")) {
			if string(l) == ".\r\n" {
				t.Fatalf("terminator inside the data: %q", out)
			}
			unstuffed.Write(bytes.TrimPrefix(l, []byte(".")))
		}
		norm := bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
		norm = bytes.ReplaceAll(norm, []byte("\r"), []byte("\n"))
		norm = bytes.ReplaceAll(norm, []byte("\n"), []byte("\r\n"))
		want.Write(norm)
		if len(norm) > 0 && !bytes.HasSuffix(norm, []byte("\r\n")) {
			want.WriteString("\r\n")
		}
		if !bytes.Equal(unstuffed.Bytes(), want.Bytes()) {
			t.Fatalf("SMTPData(%q) unstuffs to %q, want %q", in, unstuffed.Bytes(), want.Bytes())
		}
	})
}
