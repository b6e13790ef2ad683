package backup

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
)

// FuzzMboxReader reads arbitrary bytes as each mbox variant: it never
// panics, ends, and never makes more bytes than it was given (unquoting
// only takes away).
func FuzzMboxReader(f *testing.F) {
	f.Add([]byte("From a@b Thu Nov 29 18:15:02 2007\nSubject: x\n\n>From y\n\nFrom c@d Thu Nov 29 18:15:02 2007\n\nz\n"))
	f.Add([]byte("From a@b Thu Nov 29 18:15:02 2007\nContent-Length: 3\n\nabc\nFrom c@d Thu Nov 29 18:15:02 2007\n\n"))
	f.Add([]byte("From \n\n\nFrom x\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range []MboxFormat{MboxRD, MboxO, MboxCL2} {
			mr := newMboxReader(bytes.NewReader(data), format)
			total := 0
			for n := 0; ; n++ {
				if n > len(data)+1 {
					t.Fatalf("%s: more messages than bytes", format)
				}
				m, err := mr.Next()
				if err != nil {
					break
				}
				b, err := io.ReadAll(m.Body)
				if err != nil {
					t.Fatal(err)
				}
				total += len(m.Header) + len(b)
			}
			if total > len(data) {
				t.Fatalf("%s: %d bytes out of %d", format, total, len(data))
			}
		}
	})
}

// FuzzMboxRoundTrip: a message the exporter writes as mboxrd is read
// back the same, with its flags, whatever its lines (From_ lines, ">From"
// lines, blank lines at the end).
func FuzzMboxRoundTrip(f *testing.F) {
	f.Add("Subject: a\n", "From me\n>From you\n\n\n", "From x Thu Nov 29 18:15:02 2007\n")
	f.Add("", "x", "")
	f.Fuzz(func(t *testing.T, hdr, body, second string) {
		if strings.Contains(hdr, "\n\n") || strings.ContainsAny(hdr+body+second, "\r") {
			return
		}
		hdr = strings.TrimSuffix(hdr, "\n")
		if hdr != "" {
			hdr += "\n"
		}
		if fields, _, _ := mboxHeaderFlags([]byte(hdr), false); len(fields) != len(hdr) || strings.HasPrefix(hdr, " ") ||
			strings.HasPrefix(hdr, "\t") {
			return // bookkeeping fields of its own
		}
		msgs := []string{hdr + "\n" + body, hdr + "\n" + second}
		flags := mail.NewFlags(mail.FlagSeen, "$Work")
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		for _, m := range msgs {
			if err := writeMboxMessage(w, time.Unix(1e9, 0), flags, bufio.NewReader(strings.NewReader(m))); err != nil {
				t.Fatal(err)
			}
		}
		w.Flush()
		got, parsed, _ := readMbox(t, buf.String(), MboxRD)
		if len(got) != 2 {
			t.Fatalf("%d messages back from %q", len(got), buf.String())
		}
		for i, m := range msgs {
			if !strings.HasSuffix(m, "\n") {
				m += "\n"
			}
			out, fl, _ := mboxHeaderFlags(parsed[i].Header, false)
			back := string(out) + got[i][len(parsed[i].Header):]
			if back != m || !parsed[i].Date.Equal(time.Unix(1e9, 0)) || len(fl) != 2 {
				t.Fatalf("message %d: %q back as %q (flags %v)", i, m, back, fl)
			}
		}
	})
}

// FuzzMaildirName reads arbitrary file and folder names: no panic, and
// a folder's levels never hold "/" unless the name encoded one.
func FuzzMaildirName(f *testing.F) {
	f.Add("1700000000.M1P2.host:2,DFRST", ".Work.&AOQ-rger")
	f.Add("x;2,abc", ".a%2Eb.%25")
	f.Fuzz(func(t *testing.T, file, folder string) {
		maildirFlags(maildirInfo(file), map[byte]string{'a': "$A"})
		for _, l := range maildirPPFolder(folder) {
			_ = l
		}
		if e := escapeName(folder, true); unescapeName(e) != folder || strings.HasPrefix(e, ".") {
			t.Fatalf("escapeName(%q) = %q", folder, e)
		}
	})
}
