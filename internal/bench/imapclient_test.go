package bench

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestIMAPClientTranscript(t *testing.T) {
	body := "Subject: hi\r\n\r\nbody with {5}\r\nand more\r\n"
	addr := serveScript(t, func(s *scriptConn) {
		s.send("* OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS IDLE] ready")
		s.expect(`a1 LOGIN "u@example.org" "p\"w\\d"`)
		s.send("a1 OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ UIDPLUS IDLE COMPRESS=DEFLATE] logged in")
		s.expect("a2 SELECT INBOX")
		s.send("* 3 EXISTS", "* OK [UIDVALIDITY 7] x", "a2 OK [READ-WRITE] done")
		s.expect("a3 UID FETCH 1:* (FLAGS)")
		s.send(`* 1 FETCH (UID 10 FLAGS (\Seen))`, `* 2 FETCH (FLAGS () UID 11)`, `* 3 FETCH (UID 12 FLAGS (\Answered))`, "a3 OK done")
		s.expect("a4 UID FETCH 11 (BODY[])")
		// A literal whose content looks like a literal and a tagged line.
		s.send("* 2 FETCH (UID 11 BODY[] {" + strconv.Itoa(len(body)) + "}")
		io.WriteString(s.w, body)
		s.send(")", "a4 OK done")
		s.expect("a5 FETCH 1 (ENVELOPE)")
		s.send(`* 1 FETCH (ENVELOPE (NIL {3}`, `a5 NIL NIL NIL NIL NIL NIL NIL NIL NIL))`, "a5 NO [SERVERBUG] sorry")
		s.expect("a6 APPEND INBOX (\\Seen) {4+}")
		s.expect("abcd")
		s.send("a6 OK [APPENDUID 7 13] appended")
		s.expect("a7 LOGOUT")
		s.send("* BYE bye", "a7 OK done")
	})
	c, err := DialIMAP(context.Background(), &Dialer{}, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Caps["LITERAL+"] || !c.Caps["IDLE"] || c.Caps["COMPRESS=DEFLATE"] {
		t.Errorf("greeting capabilities %v", c.Caps)
	}
	if err := c.Login("u@example.org", `p"w\d`); err != nil {
		t.Fatal(err)
	}
	if !c.Caps["COMPRESS=DEFLATE"] || !c.Caps["IMAP4REV2"] {
		t.Errorf("capabilities after login %v", c.Caps)
	}
	var exists uint32
	st, _, err := c.Cmd("SELECT INBOX", func(l []byte) {
		if n, w, ok := untaggedNum(l); ok && string(w) == "EXISTS" {
			exists = n
		}
	})
	if err != nil || st != OK || exists != 3 {
		t.Fatalf("select: %v %v exists %d", st, err, exists)
	}
	var uids []uint32
	if _, _, err := c.Cmd("UID FETCH 1:* (FLAGS)", func(l []byte) {
		if u, ok := fetchUID(l); ok {
			uids = append(uids, u)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if len(uids) != 3 || uids[0] != 10 || uids[1] != 11 || uids[2] != 12 {
		t.Fatalf("uids %v", uids)
	}
	var lines []string
	st, _, err = c.Cmd("UID FETCH 11 (BODY[])", func(l []byte) { lines = append(lines, string(l)) })
	if err != nil || st != OK {
		t.Fatalf("fetch body: %v %v", st, err)
	}
	if c.LiteralBytes != int64(len(body)) || len(lines) != 1 || lines[0] != "* 2 FETCH (UID 11 BODY[] {"+strconv.Itoa(len(body))+"})" {
		t.Fatalf("literal bytes %d, lines %q", c.LiteralBytes, lines)
	}
	st, text, err := c.Cmd("FETCH 1 (ENVELOPE)", nil)
	if err != nil || st != NO || !strings.Contains(string(text), "SERVERBUG") {
		t.Fatalf("want NO: %v %q %v", st, text, err)
	}
	st, text, err = c.Append("INBOX", `(\Seen)`, []byte("abcd"))
	if err != nil || st != OK || appendUID(text) != 13 {
		t.Fatalf("append: %v %q %v", st, text, err)
	}
	if err := c.Logout(); err != nil {
		t.Fatal(err)
	}
}

func TestIMAPClientSyncLiteral(t *testing.T) {
	addr := serveScript(t, func(s *scriptConn) {
		s.send("* OK IMAP4rev1 ready")
		s.expect("a1 CAPABILITY")
		s.send("* CAPABILITY IMAP4rev1 UIDPLUS", "a1 OK done")
		s.expect("a2 APPEND INBOX {5}")
		s.send("+ go ahead")
		s.expect("hello")
		s.send("a2 OK [APPENDUID 1 2] done")
		s.expect("a3 APPEND INBOX {3}")
		s.send("a3 NO [TOOBIG] no")
	})
	c, err := DialIMAP(context.Background(), &Dialer{}, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Caps["UIDPLUS"] || c.Caps["LITERAL+"] {
		t.Fatalf("capabilities %v", c.Caps)
	}
	if st, text, err := c.Append("INBOX", "", []byte("hello")); err != nil || st != OK || appendUID(text) != 2 {
		t.Fatalf("append: %v %q %v", st, text, err)
	}
	if st, _, err := c.Append("INBOX", "", []byte("abc")); err != nil || st != NO {
		t.Fatalf("refused append: %v %v", st, err)
	}
}

// TestIMAPClientIdleAndAppendFunc: a brief IDLE ends at the first update
// or after its wait, a refused IDLE returns the refusal, and AppendFunc
// hands over the untagged responses around a synchronizing literal.
func TestIMAPClientIdleAndAppendFunc(t *testing.T) {
	addr := serveScript(t, func(s *scriptConn) {
		s.send("* OK [CAPABILITY IMAP4rev1 IDLE] ready")
		s.expect("a1 IDLE")
		s.send("+ idling", "* 5 EXISTS")
		s.expect("DONE")
		s.send("* 1 FETCH (FLAGS (\\Seen))", "a1 OK done")
		s.expect("a2 IDLE")
		s.send("+ idling")
		s.expect("DONE")
		s.send("a2 OK done")
		s.expect("a3 IDLE")
		s.send("a3 NO not now")
		s.expect("a4 APPEND INBOX () {5}")
		s.send("* 6 EXISTS", "+ go ahead")
		s.expect("hello")
		s.send("* 7 EXISTS", "a4 OK [APPENDUID 1 7] done")
	})
	c, err := DialIMAP(context.Background(), &Dialer{}, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var seen []string
	on := func(l []byte) { seen = append(seen, string(l)) }
	if c.NextTag() != "a1" {
		t.Fatalf("next tag %q", c.NextTag())
	}
	// Ends at the first update, long before its wait.
	if st, _, err := c.Idle(time.Minute, on); err != nil || st != OK {
		t.Fatalf("idle: %v %v", st, err)
	}
	if c.LastTag() != "a1" || strings.Join(seen, "|") != "* 5 EXISTS|* 1 FETCH (FLAGS (\\Seen))" {
		t.Fatalf("tag %q, untagged %q", c.LastTag(), seen)
	}
	// Nothing arrives: DONE after the wait.
	if st, _, err := c.Idle(20*time.Millisecond, on); err != nil || st != OK {
		t.Fatalf("quiet idle: %v %v", st, err)
	}
	if st, text, err := c.Idle(time.Minute, on); err != nil || st != NO || string(text) != "not now" {
		t.Fatalf("refused idle: %v %q %v", st, text, err)
	}
	seen = nil
	if st, text, err := c.AppendFunc("INBOX", "()", []byte("hello"), on); err != nil || st != OK || appendUID(text) != 7 {
		t.Fatalf("append: %v %q %v", st, text, err)
	}
	if strings.Join(seen, "|") != "* 6 EXISTS|* 7 EXISTS" {
		t.Fatalf("untagged during APPEND %q", seen)
	}
}

func TestIMAPClientCompress(t *testing.T) {
	addr := serveScript(t, func(s *scriptConn) {
		s.send("* OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] ready")
		s.expect("a1 COMPRESS DEFLATE")
		s.send("a1 OK compressing")
		// RFC 4978: raw deflate from here on, both ways.
		s.r = bufio.NewReader(flate.NewReader(s.c))
		fw, _ := flate.NewWriter(s.c, flate.BestSpeed)
		s.w = flushWriter{fw}
		s.expect("a2 NOOP")
		s.send("* 4 EXISTS", "a2 OK "+strings.Repeat("compressible ", 200))
	})
	c, err := DialIMAP(context.Background(), &Dialer{}, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, err := c.Compress(); !ok || err != nil {
		t.Fatalf("compress: %v %v", ok, err)
	}
	var exists uint32
	st, _, err := c.Cmd("NOOP", func(l []byte) { exists, _, _ = untaggedNum(l) })
	if err != nil || st != OK || exists != 4 {
		t.Fatalf("noop over deflate: %v %v %d", st, err, exists)
	}
}

type flushWriter struct{ w *flate.Writer }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.w.Flush()
	}
	return n, err
}

func TestStoredDeflate(t *testing.T) {
	var buf bytes.Buffer
	w := &storedDeflate{w: &buf}
	big := bytes.Repeat([]byte("0123456789"), 10000) // more than one block
	for _, p := range [][]byte{[]byte("a1 IDLE\r\n"), big, {}} {
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, 9+len(big))
	if _, err := io.ReadFull(flate.NewReader(&buf), got); err != nil {
		t.Fatal(err)
	}
	if want := append([]byte("a1 IDLE\r\n"), big...); !bytes.Equal(got, want) {
		t.Fatalf("inflated %d bytes, want %d", len(got), len(want))
	}
}

func TestResponseHelpers(t *testing.T) {
	num := []struct {
		in   string
		n    uint32
		word string
		ok   bool
	}{
		{"* 12 EXISTS", 12, "EXISTS", true},
		{"* 3 FETCH (UID 4)", 3, "FETCH", true},
		{"* OK done", 0, "", false},
		{"* 99999999999 EXISTS", 0, "", false},
		{"* 5", 0, "", false},
		{"a1 OK", 0, "", false},
	}
	for _, tt := range num {
		n, w, ok := untaggedNum([]byte(tt.in))
		if n != tt.n || string(w) != tt.word || ok != tt.ok {
			t.Errorf("untaggedNum(%q) = %d %q %v", tt.in, n, w, ok)
		}
	}
	uid := []struct {
		in  string
		uid uint32
		ok  bool
	}{
		{"* 1 FETCH (UID 10 FLAGS ())", 10, true},
		{"* 1 FETCH (FLAGS (\\Seen) UID 7)", 7, true},
		{"* 1 FETCH (XUID 3 UID 9)", 9, true},
		{"* 1 FETCH (FLAGS ())", 0, false},
	}
	for _, tt := range uid {
		if u, ok := fetchUID([]byte(tt.in)); u != tt.uid || ok != tt.ok {
			t.Errorf("fetchUID(%q) = %d %v", tt.in, u, ok)
		}
	}
	lit := []struct {
		in string
		n  int64
		ok bool
	}{
		{"* 1 FETCH (BODY[] {42}", 42, true},
		{"* 1 FETCH (BINARY[] ~{7}", 7, true},
		{"* OK {x}", 0, false},
		{"* OK {}", 0, false},
		{"* OK }", 0, false},
		{"* OK {1234567890123456}", 0, false},
	}
	for _, tt := range lit {
		if n, ok := literalSize([]byte(tt.in)); n != tt.n || ok != tt.ok {
			t.Errorf("literalSize(%q) = %d %v", tt.in, n, ok)
		}
	}
	for in, want := range map[string]uint32{"[APPENDUID 38505 3955] done": 3955, "done": 0, "[APPENDUID 1] x": 0, "[APPENDUID 1 x]": 0} {
		if got := appendUID([]byte(in)); got != want {
			t.Errorf("appendUID(%q) = %d, want %d", in, got, want)
		}
	}
	if q := quote(`a"b\c`); q != `"a\"b\\c"` {
		t.Errorf("quote: %s", q)
	}
}
