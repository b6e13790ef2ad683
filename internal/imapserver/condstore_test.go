package imapserver

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/store/sqlite"
)

// selectState returns UIDVALIDITY and HIGHESTMODSEQ from SELECT lines.
func selectState(t *testing.T, lines []string) (uv, hms string) {
	t.Helper()
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "* OK [UIDVALIDITY "); ok {
			uv, _, _ = strings.Cut(v, "]")
		}
		if v, ok := strings.CutPrefix(l, "* OK [HIGHESTMODSEQ "); ok {
			hms, _, _ = strings.Cut(v, "]")
		}
	}
	if uv == "" || hms == "" {
		t.Fatalf("select: %q", lines)
	}
	return uv, hms
}

func TestCondStore(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	for i := range 3 {
		ts.deliver(acct, "INBOX", msg("m"+strconv.Itoa(i), "x"))
	}
	c := ts.login("alice@example.org")
	// SELECT (CONDSTORE) enables CONDSTORE (RFC 7162 §3.1.8).
	_, hms := selectState(t, c.ok("a1 SELECT INBOX (CONDSTORE)"))
	m0, _ := strconv.ParseUint(hms, 10, 64)
	c.expect("a2 FETCH 1 (MODSEQ)", "* 1 FETCH (MODSEQ (…))", "a2 OK FETCH completed")
	lines := c.ok(`a3 STORE 1 +FLAGS (\Seen)`)
	var m1 uint64
	if _, err := fmtSscan(lines[0], `* 1 FETCH (UID 1 FLAGS (\Seen \Recent) MODSEQ (%d))`, &m1); err != nil || m1 <= m0 {
		t.Fatalf("store: %q (m0 %d)", lines, m0)
	}
	// UNCHANGEDSINCE: message 1 changed after m0, so it fails.
	c.expect("a4 STORE 1:2 (UNCHANGEDSINCE "+hms+") +FLAGS.SILENT (\\Flagged)",
		"* 2 FETCH (UID 2 MODSEQ (…))",
		"a4 OK [MODIFIED 1] Conditional STORE failed")
	c.expect("a5 UID STORE 1,3 (UNCHANGEDSINCE "+hms+") -FLAGS (\\Seen)",
		`* 3 FETCH (UID 3 FLAGS (\Recent) MODSEQ (…))`,
		"a5 OK [MODIFIED 1] Conditional STORE failed")
	c.expect("a6 STORE 3 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)", "a6 OK [MODIFIED 3] Conditional STORE failed")
	// FETCH CHANGEDSINCE returns only what changed, with MODSEQ.
	c.expect("a7 FETCH 1:* (FLAGS) (CHANGEDSINCE "+strconv.FormatUint(m1, 10)+")",
		`* 2 FETCH (MODSEQ (…) FLAGS (\Flagged \Recent))`,
		"a7 OK FETCH completed")
	c.expect("a8 STATUS INBOX (HIGHESTMODSEQ)", "* STATUS INBOX (HIGHESTMODSEQ …)", "a8 OK STATUS completed")
	c.expect("a9 FETCH 1 (UID) (VANISHED)", "a9 BAD VANISHED requires UID FETCH")
}

func fmtSscan(s, format string, v *uint64) (int, error) {
	i := strings.Index(format, "%d")
	if !strings.HasPrefix(s, format[:i]) || !strings.HasSuffix(s, format[i+2:]) {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.ParseUint(s[i:len(s)-len(format[i+2:])], 10, 64)
	*v = n
	return 1, err
}

func TestQResync(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	for i := range 6 {
		ts.deliver(acct, "INBOX", msg("m"+strconv.Itoa(i), "x"))
	}
	a := ts.login("alice@example.org")
	a.expect("a1 ENABLE QRESYNC", "* ENABLED QRESYNC", "a1 OK ENABLE completed")
	uv, hms := selectState(t, a.ok("a2 SELECT INBOX"))
	// QRESYNC without ENABLE is a client bug.
	b := ts.login("alice@example.org")
	b.expect("b1 SELECT INBOX (QRESYNC ("+uv+" "+hms+"))", "b1 BAD [CLIENTBUG] QRESYNC is not enabled")
	// B changes things while A's device is "offline".
	b.ok("b2 SELECT INBOX")
	b.ok(`b3 STORE 2,4 +FLAGS.SILENT (\Deleted)`)
	b.ok("b4 EXPUNGE")
	b.ok(`b5 STORE 2 +FLAGS (\Seen)`) // UID 3
	ts.deliver(acct, "INBOX", msg("new", "y"))
	// A, in a QRESYNC session, gets VANISHED instead of EXPUNGE.
	a.expect("a3 NOOP",
		`* 3 FETCH (UID 3 FLAGS (\Seen \Recent) MODSEQ (…))`,
		"* 7 EXISTS",
		"* 7 RECENT",
		"* VANISHED 2,4",
		"a3 OK NOOP completed")
	// A fresh QRESYNC session catches up from hms: only the changes.
	c := ts.login("alice@example.org")
	c.ok("c1 ENABLE QRESYNC")
	c.expect("c2 SELECT INBOX (QRESYNC ("+uv+" "+hms+" 1:6))",
		"* FLAGS …", "* OK [PERMANENTFLAGS …", "* 5 EXISTS", "* 0 RECENT", "* OK [UNSEEN 1] First unseen", "* OK [UIDVALIDITY "+uv+"] UIDs valid",
		"* OK [UIDNEXT 8] Predicted next UID", "* OK [HIGHESTMODSEQ …", "* OK [MAILBOXID …",
		"* VANISHED (EARLIER) 2,4",
		`* 2 FETCH (UID 3 FLAGS (\Seen) MODSEQ (…))`,
		`* 5 FETCH (UID 7 FLAGS () MODSEQ (…))`,
		"c2 OK [READ-WRITE] SELECT completed")
	// Selecting again closes the mailbox with [CLOSED].
	c.expect("c3 EXAMINE INBOX (QRESYNC (1 "+hms+"))",
		"* OK [CLOSED] Previous mailbox closed", "* FLAGS …", "* OK [PERMANENTFLAGS …", "* 5 EXISTS", "* 0 RECENT",
		"* OK [UNSEEN 1] First unseen", "* OK [UIDVALIDITY …", "* OK [UIDNEXT 8] Predicted next UID", "* OK [HIGHESTMODSEQ …", "* OK [MAILBOXID …",
		"c3 OK [READ-ONLY] EXAMINE completed")
	// UID FETCH ... (CHANGEDSINCE n VANISHED) (RFC 7162 §3.2.6).
	c.expect("c4 UID FETCH 1:* (FLAGS) (CHANGEDSINCE "+hms+" VANISHED)",
		"* VANISHED (EARLIER) 2,4",
		`* 2 FETCH (UID 3 MODSEQ (…) FLAGS (\Seen))`,
		`* 5 FETCH (UID 7 MODSEQ (…) FLAGS ())`,
		"c4 OK UID FETCH completed")

	// The tombstones are swept: the answer must still be right (RFC 7162
	// §3.2.5.2 fallback), from known-uids and the sequence match data.
	if err := ts.st.Sweep(context.Background(), time.Now().Add(sqlite.DefaultRetention+time.Hour)); err != nil {
		t.Fatal(err)
	}
	d := ts.login("alice@example.org")
	d.ok("d1 ENABLE QRESYNC")
	d.expect("d2 SELECT INBOX (QRESYNC ("+uv+" "+hms+" 1:6 (1,3 1,3)))",
		"* FLAGS …", "* OK [PERMANENTFLAGS …", "* 5 EXISTS", "* 0 RECENT", "* OK [UNSEEN 1] First unseen", "* OK [UIDVALIDITY "+uv+"] UIDs valid",
		"* OK [UIDNEXT 8] Predicted next UID", "* OK [HIGHESTMODSEQ …", "* OK [MAILBOXID …",
		"* VANISHED (EARLIER) 2,4",
		`* 2 FETCH (UID 3 FLAGS (\Seen) MODSEQ (…))`,
		`* 5 FETCH (UID 7 FLAGS () MODSEQ (…))`,
		"d2 OK [READ-WRITE] SELECT completed")
	d.expect("d3 UID FETCH 1:5 (FLAGS) (CHANGEDSINCE "+hms+" VANISHED)",
		"* VANISHED (EARLIER) 2,4",
		`* 2 FETCH (UID 3 MODSEQ (…) FLAGS (\Seen))`,
		"d3 OK UID FETCH completed")
}
