package backup

import (
	"bytes"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
)

// readMbox reads every message of an mbox: header and body as one.
func readMbox(t *testing.T, data string, format MboxFormat) ([]string, []*mboxMessage, []string) {
	t.Helper()
	mr := newMboxReader(strings.NewReader(data), format)
	var out []string
	var msgs []*mboxMessage
	for {
		m, err := mr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(m.Header)+string(body))
		msgs = append(msgs, m)
	}
	return out, msgs, mr.Problems
}

func TestMboxVariants(t *testing.T) {
	rd := "From alice@example.org Thu Nov 29 18:15:02 2007\n" +
		"Subject: one\n\n" +
		">From the start\n" +
		">>From deeper\n" +
		"From here on this is not a From_ line\n" +
		"\n" +
		"From bob@example.org  Sat Jan  3 01:05:34 1996\n" +
		"Subject: two\n\n" +
		"last line\n\n\n"
	got, msgs, _ := readMbox(t, rd, MboxRD)
	want := []string{
		"Subject: one\n\nFrom the start\n>From deeper\nFrom here on this is not a From_ line\n",
		"Subject: two\n\nlast line\n\n",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("mboxrd: %q", got)
	}
	if msgs[0].Sender != "alice@example.org" || !msgs[0].Date.Equal(time.Date(2007, 11, 29, 18, 15, 2, 0, time.UTC)) ||
		!msgs[1].Date.Equal(time.Date(1996, 1, 3, 1, 5, 34, 0, time.UTC)) {
		t.Fatalf("From_ lines: %+v %+v", msgs[0], msgs[1])
	}
	got, _, _ = readMbox(t, rd, MboxO)
	if got[0] != "Subject: one\n\nFrom the start\n>>From deeper\nFrom here on this is not a From_ line\n" {
		t.Fatalf("mboxo: %q", got[0])
	}
	// mboxcl2: nothing quoted, Content-Length counts the body, even a
	// From_ line inside it.
	body := "From nobody Thu Nov 29 18:15:02 2007\nnot a new message\n"
	cl2 := "From a@b Thu Nov 29 18:15:02 2007\nContent-Length: " + itoa(len(body)) + "\n\n" + body + "\n" +
		"From c@d Thu Nov 29 18:15:03 2007\nSubject: x\n\nend\n"
	got, _, problems := readMbox(t, cl2, MboxCL2)
	if len(got) != 2 || !strings.HasSuffix(got[0], "\n\n"+body) || got[1] != "Subject: x\n\nend\n" || len(problems) != 0 {
		t.Fatalf("mboxcl2: %q %v", got, problems)
	}
	// A wrong Content-Length is noticed.
	bad := strings.Replace(cl2, "Content-Length: "+itoa(len(body)), "Content-Length: 5", 1)
	if _, _, problems := readMbox(t, bad, MboxCL2); len(problems) != 1 {
		t.Fatalf("a wrong Content-Length: %v", problems)
	}
	// CRLF files, a From_ line with a zone and "remote from", a missing
	// final newline.
	crlf := "From x@y Mon Dec  7 10:00:00 2026 +0100\r\nA: b\r\n\r\nbody\r\n\r\nFrom x@y Mon Dec  7 10:00:01 2026 remote from host\r\nA: c\r\n\r\nno newline"
	got, msgs, _ = readMbox(t, crlf, MboxRD)
	if !slices.Equal(got, []string{"A: b\r\n\r\nbody\r\n", "A: c\r\n\r\nno newline"}) || msgs[0].Date.Unix() != time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC).Unix() {
		t.Fatalf("CRLF: %q %v", got, msgs[0].Date)
	}
	if _, err := newMboxReader(strings.NewReader("Subject: no From_ line\n"), MboxRD).Next(); err != errNotMbox {
		t.Fatalf("not an mbox: %v", err)
	}
	if _, err := newMboxReader(strings.NewReader(""), MboxRD).Next(); err != io.EOF {
		t.Fatalf("empty file: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestMboxLongLines: a line longer than the reader's buffer passes
// through whole, and a message of many megabytes is read in bounded
// memory (the reader holds a line at most).
func TestMboxLongLines(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	data := "From a@b Thu Nov 29 18:15:02 2007\nSubject: long\n\n" + long + "\nFrom the body\n\nFrom a@b Thu Nov 29 18:15:02 2007\n\nshort\n"
	got, _, _ := readMbox(t, data, MboxRD)
	if len(got) != 2 || got[0] != "Subject: long\n\n"+long+"\nFrom the body\n" || got[1] != "\nshort\n" {
		t.Fatalf("long lines: %d messages", len(got))
	}
}

func TestMboxHeaderFlags(t *testing.T) {
	hdr := "Subject: s\nStatus: RO\nX-Status: AF\nX-Keywords: $Work, Important\n  Later\nX-Mozilla-Status: 0005\nTo: x\n\n"
	out, flags, expunged := mboxHeaderFlags([]byte(hdr), false)
	if string(out) != "Subject: s\nTo: x\n\n" || expunged {
		t.Fatalf("stripped header %q", out)
	}
	if !slices.Equal(flags, mail.NewFlags(mail.FlagSeen, mail.FlagAnswered, mail.FlagFlagged, "$Work", "Important", "Later")) {
		t.Fatalf("flags %v", flags)
	}
	if _, _, expunged := mboxHeaderFlags([]byte("X-Mozilla-Status: 0009\n\n"), false); !expunged {
		t.Fatal("Thunderbird's expunged bit not seen")
	}
	// What the exporter writes, the importer reads back.
	fl := mail.NewFlags(mail.FlagSeen, mail.FlagDraft, mail.FlagDeleted, "$Label1")
	if _, back, _ := mboxHeaderFlags(append(mboxStatusFields(fl), "\n"...), false); !slices.Equal(back, fl) {
		t.Fatalf("round trip %v -> %v", fl, back)
	}
}

func TestMaildirNames(t *testing.T) {
	kw := map[byte]string{'a': "$Work", 'c': "Later"}
	for name, want := range map[string]mail.Flags{
		"1700000000.M1P2.host:2,FRS":     mail.NewFlags(mail.FlagFlagged, mail.FlagAnswered, mail.FlagSeen),
		"1700000000.M1P2.host:2,DTac":    mail.NewFlags(mail.FlagDraft, mail.FlagDeleted, "$Work", "Later"),
		"name with spaces;2,S":           mail.NewFlags(mail.FlagSeen),
		"windows!2,Sb":                   mail.NewFlags(mail.FlagSeen),
		"no info at all":                 nil,
		"colon:in:name:2,P":              nil,
		"ünïcödé:2,S":                    mail.NewFlags(mail.FlagSeen),
		"1.2.host,S=12,W=13:2,S":         mail.NewFlags(mail.FlagSeen),
		"1.2.host:2,":                    nil,
		"1.2.host:1,S (experimental v1)": nil,
	} {
		if got := maildirFlags(maildirInfo(name), kw); !slices.Equal(got, want) {
			t.Errorf("%q: flags %v, want %v", name, got, want)
		}
	}
	if got := maildirPPFolder(".Work.&AOQ-rger.a%2Eb"); !slices.Equal(got, []string{"Work", "ärger", "a.b"}) {
		t.Fatalf("Maildir++ folder: %q", got)
	}
	for _, s := range []string{".", "..", ".hidden", "50%", "a.b"} {
		if e := escapeName(s, true); unescapeName(e) != s || strings.HasPrefix(e, ".") || strings.Contains(e, ".") {
			t.Errorf("escapeName(%q) = %q", s, e)
		}
	}
	if !bytes.Equal([]byte(unescapeName("plain")), []byte("plain")) {
		t.Fatal("unescapeName changed a plain name")
	}
}
