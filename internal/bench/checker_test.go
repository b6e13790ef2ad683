package bench

import (
	"bufio"
	"bytes"
	"maps"
	"strings"
	"testing"
)

// feed plays a transcript into c: "C: tag command" is a command sent,
// "S: * ..." an untagged response, "S: tag OK|NO|BAD text" a tagged
// result. Lines are as IMAPClient delivers them: literal contents removed.
func feed(t *testing.T, c *Checker, transcript string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(transcript), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "C: "):
			tag, cmd, _ := strings.Cut(line[3:], " ")
			c.Command(tag, cmd)
		case strings.HasPrefix(line, "S: * "):
			c.Untagged([]byte(line[3:]))
		case strings.HasPrefix(line, "S: "):
			tag, rest, _ := strings.Cut(line[3:], " ")
			st, text, _ := strings.Cut(rest, " ")
			c.Tagged(tag, Status(st), []byte(text))
		default:
			t.Fatalf("bad transcript line %q", line)
		}
	}
}

// selected is the start of most transcripts: a mailbox of three
// messages, UIDs 10 to 12, keywords $Label1 and $Forwarded announced.
const selected = `
C: a1 SELECT INBOX
S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 $Forwarded)
S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 $Forwarded \*)] ok
S: * 3 EXISTS
S: * 0 RECENT
S: * OK [UIDVALIDITY 7] ok
S: a1 OK [READ-WRITE] selected
C: a2 UID FETCH 1:* (FLAGS)
S: * 1 FETCH (UID 10 FLAGS (\Seen))
S: * 2 FETCH (FLAGS ($Label1) UID 11)
S: * 3 FETCH (UID 12 FLAGS ())
S: a2 OK done
`

// TestCheckerClean plays transcripts a correct server may produce under
// concurrent sessions: no violation may come out of them.
func TestCheckerClean(t *testing.T) {
	cases := map[string]string{
		"selected": selected,
		"others' changes between commands": selected + `
C: a3 NOOP
S: * 2 EXPUNGE
S: * 4 EXISTS
S: * 3 FETCH (UID 13 FLAGS (\Recent))
S: * 1 FETCH (FLAGS (\Seen \Flagged))
S: a3 OK done
C: a4 FETCH 1:3 (UID FLAGS)
S: * 1 FETCH (UID 10 FLAGS (\Seen \Flagged))
S: * 2 FETCH (UID 12 FLAGS ())
S: * 3 FETCH (UID 13 FLAGS ())
S: a4 OK done`,
		"a new keyword announced before use": selected + `
C: a3 UID STORE 12 +FLAGS ($Label9)
S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 $Forwarded $Label9)
S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 $Forwarded $Label9 \*)] ok
S: * 3 FETCH (UID 12 FLAGS ($label9))
S: a3 OK done`,
		"expunge during UID commands and IDLE": selected + `
C: a3 UID FETCH 12 (FLAGS)
S: * 1 EXPUNGE
S: * 2 FETCH (UID 12 FLAGS ())
S: a3 OK done
C: a4 UID STORE 11 +FLAGS (\Seen)
S: * 1 EXPUNGE
S: a4 OK done
C: a5 IDLE
S: * 1 EXPUNGE
S: * 0 EXISTS
S: a5 OK done
C: a6 SEARCH ALL
S: * SEARCH
S: a6 OK done`,
		"literals and tricky strings": selected + `
C: a3 UID FETCH 11 (UID ENVELOPE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)] BODY[]<0>)
S: * 2 FETCH (UID 11 ENVELOPE ("date" "UID 99 FLAGS (Bogus) \"x)" (("a" NIL "b" "c")) NIL NIL NIL NIL NIL NIL "<id>") BODY[HEADER.FIELDS (FROM SUBJECT)] {45} BODY[]<0> {12} FLAGS (\Seen $Forwarded))
S: a3 OK done
C: a4 FETCH 3 (BODYSTRUCTURE UID)
S: * 3 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 12 1 NIL NIL NIL NIL) "MIXED") UID 12)
S: a4 OK done
C: a5 UID FETCH 12 (BINARY.PEEK[1])
S: * 3 FETCH (UID 12 BINARY[1] ~{300})
S: a5 OK done`,
		"search, sort and thread answers in the view": selected + `
C: a3 SEARCH UNSEEN
S: * SEARCH 2 3
S: a3 OK done
C: a4 UID SORT (DATE) UTF-8 ALL
S: * SORT 12 10 11
S: a4 OK done
C: a5 UID THREAD REFERENCES UTF-8 ALL
S: * THREAD (10 (11)(12))
S: a5 OK done`,
		"VANISHED with QRESYNC": selected + `
C: a3 NOOP
S: * VANISHED 11
S: * VANISHED (EARLIER) 3:5
S: * 2 FETCH (UID 12 FLAGS ())
S: a3 OK done`,
		"SELECT starts a new view": selected + `
C: a3 SELECT INBOX
S: * FLAGS (\Seen)
S: * 1 EXISTS
S: a3 OK done
C: a4 FETCH 1 (UID)
S: * 1 FETCH (UID 12)
S: a4 OK done`,
	}
	for name, tr := range cases {
		t.Run(name, func(t *testing.T) {
			c := &Checker{Session: "t", QResync: strings.Contains(name, "QRESYNC")}
			feed(t, c, tr)
			r := c.Report()
			if n := r.ViolationCount(); n != 0 {
				var b bytes.Buffer
				r.Write(&b)
				t.Fatalf("%d violations in a clean transcript:\n%s", n, b.String())
			}
			if r.Responses == 0 {
				t.Fatal("no response checked")
			}
		})
	}
}

// TestCheckerViolations plays one transcript per rule: each must be
// counted once under its kind and come with an example that shows the
// offending response.
func TestCheckerViolations(t *testing.T) {
	cases := []struct {
		kind, transcript, offending string
	}{
		{VFetchBeyondExists, selected + `
C: a3 FETCH 1:3 (FLAGS)
S: * 4 FETCH (FLAGS (\Seen))
S: a3 OK done`, "* 4 FETCH"},
		{VFetchBeyondExists, selected + `
C: a3 NOOP
S: * 3 EXPUNGE
S: * 3 FETCH (FLAGS ())
S: a3 OK done`, "* 3 FETCH"},
		{VFetchExpunged, selected + `
C: a3 NOOP
S: * 2 EXPUNGE
S: a3 OK done
C: a4 UID FETCH 11:12 (FLAGS)
S: * 1 FETCH (UID 11 FLAGS ())
S: a4 OK done`, "UID 11"},
		{VUIDChanged, selected + `
C: a3 UID FETCH 10 (FLAGS)
S: * 1 FETCH (UID 9 FLAGS ())
S: a3 OK done`, "UID 9"},
		{VUIDOrder, selected + `
C: a3 NOOP
S: * 4 EXISTS
S: a3 OK done
C: a4 FETCH 4 (UID)
S: * 4 FETCH (UID 12)
S: a4 OK done`, "* 4 FETCH (UID 12)"},
		{VKeywordNotAnnounced, selected + `
C: a3 UID STORE 12 +FLAGS ($Label4)
S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 $Forwarded $Label4 \*)] ok
S: * 3 FETCH (UID 12 FLAGS ($Label4))
S: a3 OK done`, "$Label4"},
		{VKeywordNotAnnounced, selected + `
C: a3 NOOP
S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
S: * 2 FETCH (FLAGS ($Label1))
S: a3 OK done`, "$Label1"},
		{VExistsBackwards, selected + `
C: a3 NOOP
S: * 2 EXISTS
S: a3 OK done`, "* 2 EXISTS"},
		{VExpungeBeyondExists, selected + `
C: a3 NOOP
S: * 4 EXPUNGE
S: a3 OK done`, "* 4 EXPUNGE"},
		{VExpungeDuringSeqCommand, selected + `
C: a3 FETCH 1 (FLAGS)
S: * 1 FETCH (FLAGS (\Seen))
S: * 3 EXPUNGE
S: a3 OK done`, "* 3 EXPUNGE"},
		{VExpungeDuringSeqCommand, selected + `
C: a3 STORE 1 +FLAGS (\Seen)
S: * 2 EXPUNGE
S: a3 OK done`, "* 2 EXPUNGE"},
		{VSearchBeyondExists, selected + `
C: a3 SEARCH ALL
S: * SEARCH 1 2 3 4
S: a3 OK done`, "* SEARCH 1 2 3 4"},
		{VSearchExpunged, selected + `
C: a3 UID EXPUNGE 11
S: * 2 EXPUNGE
S: a3 OK done
C: a4 UID SEARCH ALL
S: * SEARCH 10 11 12
S: a4 OK done`, "* SEARCH 10 11 12"},
		{VSearchExpunged, selected + `
C: a3 NOOP
S: * 1 EXPUNGE
S: a3 OK done
C: a4 UID THREAD REFERENCES UTF-8 ALL
S: * THREAD (10 (11)(12))
S: a4 OK done`, "* THREAD"},
		{VVanishedWithoutQResync, selected + `
C: a3 NOOP
S: * VANISHED 11
S: a3 OK done`, "* VANISHED 11"},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			c := &Checker{Session: "t"}
			feed(t, c, tc.transcript)
			r := c.Report()
			if !maps.Equal(r.Violations, map[string]int64{tc.kind: 1}) {
				var b bytes.Buffer
				r.Write(&b)
				t.Fatalf("violations %v, want one %s\n%s", r.Violations, tc.kind, b.String())
			}
			if len(r.Examples) != 1 || r.Examples[0].Kind != tc.kind || r.Examples[0].Session != "t" {
				t.Fatalf("examples %+v", r.Examples)
			}
			tr := r.Examples[0].Transcript
			if len(tr) == 0 || !strings.Contains(tr[len(tr)-1], tc.offending) && !strings.Contains(strings.Join(tr, "\n"), tc.offending) {
				t.Errorf("example lacks %q:\n%s", tc.offending, strings.Join(tr, "\n"))
			}
		})
	}
}

// TestCheckerKeywordRule is the keyword rule of issue 11 item 8 on its
// own: a keyword another session created reaches this session's FETCH
// before any FLAGS response names it. PERMANENTFLAGS with \* allows
// keywords but announces none; a later FLAGS that lists it makes its use
// correct.
func TestCheckerKeywordRule(t *testing.T) {
	c := &Checker{Session: "t"}
	feed(t, c, `
C: a1 SELECT INBOX
S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] ok
S: * 2 EXISTS
S: a1 OK [READ-WRITE] selected
C: a2 NOOP
S: * 1 FETCH (FLAGS (\Seen $Label4))
S: a2 OK done
C: a3 FETCH 2 (FLAGS)
S: * 2 FETCH (FLAGS ($Label4 $Forwarded))
S: a3 OK done
C: a4 NOOP
S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label4 $Forwarded)
S: * 1 FETCH (FLAGS ($label4 $FORWARDED))
S: a4 OK done`)
	r := c.Report()
	if got := r.Violations[VKeywordNotAnnounced]; got != 2 || len(r.Violations) != 1 {
		t.Fatalf("violations %v, want 2 of %s", r.Violations, VKeywordNotAnnounced)
	}
	if c.Keywords() != 2 {
		t.Errorf("keywords after FLAGS: %d", c.Keywords())
	}
	ex := r.Examples[0]
	if !strings.Contains(ex.Detail, "$Label4") || !strings.Contains(ex.Detail, `* FLAGS (\Answered`) {
		t.Errorf("detail %q", ex.Detail)
	}
	if !strings.Contains(ex.Transcript[len(ex.Transcript)-1], "* 1 FETCH (FLAGS (\\Seen $Label4))") {
		t.Errorf("transcript ends %q", ex.Transcript[len(ex.Transcript)-1])
	}
}

// TestCheckerView follows the sequence-number view through EXISTS,
// EXPUNGE and VANISHED.
func TestCheckerView(t *testing.T) {
	c := &Checker{QResync: true}
	feed(t, c, selected+`
C: a3 NOOP
S: * 5 EXISTS
S: * 4 FETCH (UID 20 FLAGS ())
S: * 2 EXPUNGE
S: a3 OK done`)
	want := []uint32{10, 12, 20, 0}
	if c.Count() != 4 {
		t.Fatalf("count %d", c.Count())
	}
	for i, u := range want {
		if got := c.UID(uint32(i + 1)); got != u {
			t.Errorf("UID(%d) = %d, want %d", i+1, got, u)
		}
	}
	if c.UID(0) != 0 || c.UID(5) != 0 {
		t.Error("UID outside the view")
	}
	// VANISHED of known UIDs; the unknown one makes the view uncertain.
	feed(t, c, `
C: a4 NOOP
S: * VANISHED 10,20:25
S: a4 OK done`)
	if c.Count() != 2 || c.UID(1) != 12 || !c.lost {
		t.Fatalf("after VANISHED: count %d uid1 %d lost %v", c.Count(), c.UID(1), c.lost)
	}
	if n := c.Report().ViolationCount(); n != 0 {
		t.Fatalf("%d violations", n)
	}
}

// TestCheckerRefusals counts NO and BAD by command and reason.
func TestCheckerRefusals(t *testing.T) {
	c := &Checker{Session: "t", MaxExamples: 2}
	feed(t, c, selected+`
C: a3 FETCH 2 (FLAGS)
S: a3 NO [EXPUNGEISSUED] Some of the requested messages no longer exist
C: a4 UID STORE 5 +FLAGS (\Seen)
S: a4 NO [EXPUNGEISSUED] gone
C: a5 FETCH 3 (FLAGS)
S: a5 NO [EXPUNGEISSUED] again
C: a6 UID SORT (DATE) ALL
S: a6 BAD missing charset in the sort command that the server did not understand at all
C: a7 NOOP
S: a7 OK done`)
	r := c.Report()
	want := map[string]int64{
		"FETCH NO [EXPUNGEISSUED]":                                      2,
		"UID STORE NO [EXPUNGEISSUED]":                                  1,
		"UID SORT BAD missing charset in the sort command that the ser": 1,
	}
	if !maps.Equal(r.Refusals, want) {
		t.Fatalf("refusals %v", r.Refusals)
	}
	if r.RefusalCount() != 4 || r.ViolationCount() != 0 {
		t.Fatalf("counts %d %d", r.RefusalCount(), r.ViolationCount())
	}
	var all CheckReport
	all.Merge(r, 1)
	all.Merge(r, 1)
	if all.Refusals["FETCH NO [EXPUNGEISSUED]"] != 4 || all.Responses != 2*r.Responses || len(all.Examples) != 3 {
		t.Fatalf("merged %+v", all)
	}
	var b bytes.Buffer
	all.Write(&b)
	for _, s := range []string{"refused FETCH NO [EXPUNGEISSUED]: 4", "example refused UID STORE NO [EXPUNGEISSUED] (t): [EXPUNGEISSUED] gone", "C: a4 UID STORE 5 +FLAGS (\\Seen)"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, b.String())
		}
	}
}

func TestScanFetch(t *testing.T) {
	cases := []struct {
		in     string
		uid    uint32
		hasUID bool
		flags  string
	}{
		{`(UID 5 FLAGS (\Seen $a))`, 5, true, `\Seen $a`},
		{`(FLAGS () UID 7)`, 7, true, ``},
		{`(BODY[HEADER.FIELDS (UID FLAGS)] {20} UID 9)`, 9, true, ""},
		{`(ENVELOPE ("x" "UID 3" NIL) FLAGS (\Draft))`, 0, false, `\Draft`},
		{`(RFC822.SIZE 44 BODY[]<0> {10} FLAGS (k))`, 0, false, "k"},
		{`(UID 5 BODY ("a`, 5, true, ""},
		{`garbage`, 0, false, ""},
	}
	for _, tc := range cases {
		var fi fetchItems
		scanFetch([]byte(" "+tc.in), &fi)
		if fi.uid != tc.uid || fi.hasUID != tc.hasUID || string(bytes.Join(fi.flags, []byte(" "))) != tc.flags {
			t.Errorf("%s: uid %d %v flags %q", tc.in, fi.uid, fi.hasUID, bytes.Join(fi.flags, []byte(" ")))
		}
	}
}

// FuzzChecker feeds arbitrary server output through the reader into a
// checker: no panic, whatever the server says.
func FuzzChecker(f *testing.F) {
	f.Add([]byte("* 3 EXISTS\r\n* FLAGS (\\Seen $a)\r\n* 2 FETCH (UID 5 FLAGS ($a $b) BODY[] {3}\r\nabc)\r\n* 9 EXPUNGE\r\n"))
	f.Add([]byte("* SEARCH 1 2 99\r\n* THREAD (1 (2)(3 4))\r\n* VANISHED 1:3,7\r\n* VANISHED (EARLIER) 9\r\n* 0 EXISTS\r\n"))
	f.Add([]byte("* 4294967295 EXISTS\r\n* 7 EXPUNGE\r\n* 5 FETCH (UID 3)\r\n* VANISHED 1:*\r\n"))
	f.Add([]byte("* 1 FETCH (ENVELOPE (\"a\\\"b\" {4}\r\nabcd NIL) UID 4294967295 FLAGS (\\Recent)\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &IMAPClient{r: bufioReader(data), Caps: map[string]bool{}}
		chk := &Checker{}
		cmds := []string{"SELECT INBOX", "FETCH 1 (FLAGS)", "UID SEARCH ALL", "SEARCH ALL", "NOOP"}
		for i := range len(data) + 1 {
			if i%3 == 0 {
				chk.Command("a1", cmds[i%len(cmds)])
			}
			line, err := c.readResponse()
			if err != nil {
				return
			}
			chk.Untagged(line)
			if i%5 == 4 {
				chk.Tagged("a1", NO, line)
			}
			if !chk.lost && chk.Count() != uint32(len(chk.uids)) {
				t.Fatalf("count %d, view %d", chk.Count(), len(chk.uids))
			}
		}
		t.Fatalf("reader did not finish %d bytes", len(data))
	})
}

func bufioReader(data []byte) *bufio.Reader { return bufio.NewReaderSize(bytes.NewReader(data), 16) }
