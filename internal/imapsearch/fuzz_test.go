package imapsearch

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
)

// FuzzSearch parses random search programs with the IMAP parser, compiles
// them and evaluates them over the test messages. It checks that nothing
// panics or fails, that a program loads no more than its Need says, and
// that NOT gives the complement.
func FuzzSearch(f *testing.F) {
	for _, s := range []string{
		"ALL",
		"UNSEEN",
		"OR SEEN (FLAGGED KEYWORD $work)",
		"NOT OR 1:2 UID 20:*",
		"$ NOT $",
		`FROM "alice" SUBJECT report`,
		`HEADER X-Custom ""`,
		`BODY "мир" OR TEXT deepword NEW`,
		"SENTSINCE 1-Sep-2024 SAVEDBEFORE 1-Jan-2030 ON 12-Sep-2024",
		"MODSEQ 7 LARGER 100 SMALLER 1000 YOUNGER 86400 OLDER 5",
		"EMAILID Mabc THREADID T1 SAVEDATESUPPORTED",
		"CHARSET ISO-8859-1 BODY {3}\r\nK\xf6l",
		"CHARSET KOI8-R OR BODY x SUBJECT y",
		"(OR (OR (NOT 1) 2) (3:* BCC dave)) RECENT OLD",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, program string) {
		s, err := parseSearch("a SEARCH " + program + "\r\n")
		if err != nil {
			return
		}
		opt := Options{Charset: s.Charset, NumMessages: 5, MaxUID: 21, Saved: mail.NewUIDSet(11, 21),
			Now: date("2024-09-15T00:00:00Z")}
		prog, err := Compile(s.Key, opt)
		if err != nil {
			return
		}
		notProg, err := Compile(imap.SearchKey{Op: imap.SearchNot, Keys: []imap.SearchKey{s.Key}}, opt)
		if err != nil {
			return // one level deeper than allowed
		}
		fx := fixtures(t)
		got := run(t, prog, fx)
		for i, f := range fx {
			switch {
			case prog.Need() == NeedMeta && f.src.summaryCalls+f.src.bodyCalls > 0:
				t.Fatalf("%q: Need meta but message %d loaded data", program, i+1)
			case prog.Need() < NeedHeader && f.src.bodyCalls > 0:
				t.Fatalf("%q: Need %v but message %d opened its body", program, prog.Need(), i+1)
			case f.src.summaryCalls > 1 || f.src.bodyCalls > 1:
				t.Fatalf("%q: message %d loaded twice", program, i+1)
			}
		}
		notGot := run(t, notProg, fixtures(t))
		for seq := uint32(1); seq <= 5; seq++ {
			if slices.Contains(got, seq) == slices.Contains(notGot, seq) {
				t.Fatalf("%q: message %d matches both or neither of the program and its NOT (%v, %v)", program, seq, got, notGot)
			}
		}
		// A program that does not depend on positions matches the same
		// messages when others arrive or go: other sequence numbers and
		// a larger mailbox (what a search context relies on, RFC 5267).
		if !prog.DependsOnPositions() {
			moved := opt
			moved.NumMessages, moved.MaxUID = 9, 40
			p2, err := Compile(s.Key, moved)
			if err != nil {
				t.Fatalf("%q: compiles for 5 messages, not for 9: %v", program, err)
			}
			for i, f := range fixtures(t) {
				m := Message{Seq: uint32(i + 4), Meta: &f.meta, Recent: f.recent, ThreadID: f.threadID, Source: f.src}
				ok, err := p2.Match(context.Background(), &m)
				if err != nil {
					t.Fatalf("%q: %v", program, err)
				}
				if ok != slices.Contains(got, uint32(i+1)) {
					t.Fatalf("%q: message %d matches differently at sequence number %d", program, i+1, i+4)
				}
			}
		}
		// Another zone changes date results, never the ability to run.
		opt.Location = time.FixedZone("far", 14*3600)
		if p2, err := Compile(s.Key, opt); err == nil {
			run(t, p2, fixtures(t))
		}
	})
}
