package imapserver

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// kwWatch follows what one session is told (RFC 9051 §7.3.5): the
// keywords of the last FLAGS response, and every FETCH that shows a
// keyword the client was not told of is an error.
type kwWatch struct {
	t        testing.TB
	name     string
	announce map[string]bool
	flagsN   int // FLAGS responses seen
}

var (
	flagsResp = regexp.MustCompile(`^\* FLAGS \(([^)]*)\)$`)
	fetchResp = regexp.MustCompile(`^\* \d+ FETCH \(.*?\bFLAGS \(([^)]*)\)`)
)

func newKWWatch(t testing.TB, name string) *kwWatch {
	return &kwWatch{t: t, name: name, announce: map[string]bool{}}
}

// see checks one response line.
func (w *kwWatch) see(line string) {
	w.t.Helper()
	if i := strings.IndexByte(line, '{'); i >= 0 {
		line = line[:i] // no literal data
	}
	if m := flagsResp.FindStringSubmatch(line); m != nil {
		w.flagsN++
		w.announce = map[string]bool{}
		for _, f := range strings.Fields(m[1]) {
			w.announce[strings.ToLower(f)] = true
		}
		return
	}
	if m := fetchResp.FindStringSubmatch(line); m != nil {
		for _, f := range strings.Fields(m[1]) {
			if f[0] != '\\' && !w.announce[strings.ToLower(f)] {
				w.t.Errorf("session %s: %q shows %s before a FLAGS response listed it", w.name, line, f)
			}
		}
	}
}

// do runs a command and checks its responses.
func (w *kwWatch) do(c *client, cmd string) []string {
	w.t.Helper()
	lines := c.do(cmd)
	for _, l := range lines {
		w.see(l)
	}
	return lines
}

// TestKeywordsAnnouncedBeforeUse: a keyword that one session creates is
// announced to every other session with FLAGS (and PERMANENTFLAGS)
// before any FETCH there shows it, whatever the path: the updates after
// a command (NOOP), IDLE, the session's own STORE, FETCH of messages
// other sessions appended or copied with new keywords, a new SELECT, a
// QRESYNC SELECT, and NOTIFY's MessageNew fetch (RFC 3501 §7.2.6, RFC
// 9051 §7.3.5).
func TestKeywordsAnnouncedBeforeUse(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("one", "x"))
	ts.deliver(acct, "INBOX", msg("two", "x"))
	ts.deliver(acct, "Archive", msg("archived", "x"), "$Archived")

	a, wa := ts.login("alice@example.org"), newKWWatch(t, "a")
	b, wb := ts.login("alice@example.org"), newKWWatch(t, "b")
	c, wc := ts.login("alice@example.org"), newKWWatch(t, "c")
	wa.do(a, "a1 SELECT INBOX")
	wb.do(b, "b1 SELECT INBOX")
	wc.do(c, "c1 SELECT INBOX")

	// After a command: B's NOOP sees C's new keyword.
	wc.do(c, `c2 STORE 1 +FLAGS.SILENT ($Label1)`)
	want := []string{
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1)`,
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 \*)] Flags permitted`,
		`* 1 FETCH (UID 1 FLAGS ($Label1))`,
		"b2 OK NOOP completed",
	}
	b.expect("b2 NOOP", want...)
	for _, l := range want {
		wb.see(l)
	}
	wa.do(a, "a2 NOOP")

	// IDLE: pushed in that order.
	a.send("a3 IDLE")
	a.expectLine("+ idling")
	wc.do(c, `c3 STORE 2 +FLAGS.SILENT ($Label2)`)
	for _, want := range []string{
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 $Label2)`,
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 $Label2 \*)] Flags permitted`,
		`* 2 FETCH (UID 2 FLAGS ($Label2 \Recent))`,
	} {
		a.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		l := a.line()
		wa.see(l)
		if l != want {
			t.Fatalf("IDLE: got %q, want %q", l, want)
		}
	}
	a.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	a.send("DONE")
	for _, l := range a.until("a3") {
		wa.see(l)
	}

	// The session's own STORE.
	wb.do(b, `b3 STORE 1 +FLAGS ($Own)`)
	// FETCH of messages others appended or copied with new keywords.
	wc.do(c, "c4 APPEND INBOX ($Appended) {3+}\r\nnew")
	wc.do(c, "c5 SELECT Archive")
	wc.do(c, "c6 COPY 1 INBOX")
	wb.do(b, "b4a NOOP")
	lines := wb.do(b, "b4 FETCH 1:* (UID FLAGS)")
	if wb.flagsN < 3 || !wb.announce["$appended"] || !wb.announce["$archived"] || !wb.announce["$own"] {
		t.Fatalf("b was not told of the new keywords: %q", lines)
	}
	// Once told, not again.
	if lines := wb.do(b, "b5 FETCH 1:* (FLAGS)"); strings.Contains(strings.Join(lines, "\n"), "* FLAGS") {
		t.Fatalf("FLAGS sent again: %q", lines)
	}

	// A new SELECT lists the keywords in use.
	wa.do(a, "a4 SELECT INBOX")
	wa.do(a, "a5 FETCH 1:* (FLAGS)")
	// QRESYNC catch-up at SELECT.
	q, wq := ts.login("alice@example.org"), newKWWatch(t, "q")
	wq.do(q, "q1 ENABLE QRESYNC")
	lines = wq.do(q, "q2 SELECT INBOX")
	uv := regexp.MustCompile(`UIDVALIDITY (\d+)`).FindStringSubmatch(strings.Join(lines, "\n"))[1]
	wq.do(q, "q3 UNSELECT")
	wc.do(c, "c7 SELECT INBOX")
	wc.do(c, `c8 STORE 1 +FLAGS.SILENT ($AfterQ)`)
	lines = wq.do(q, "q4 SELECT INBOX (QRESYNC ("+uv+" 1))")
	if !wq.announce["$afterq"] {
		t.Fatalf("QRESYNC SELECT: %q", lines)
	}

	// NOTIFY with MessageNew fetch attributes.
	wb.do(b, "b6 NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge))")
	wc.do(c, "c9 APPEND INBOX ($Notified) {3+}\r\nabc")
	deadline := time.Now().Add(10 * time.Second)
	for !wb.announce["$notified"] {
		b.c.SetReadDeadline(deadline)
		wb.see(b.line())
	}
	b.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		l := b.line()
		wb.see(l)
		if strings.Contains(l, "$Notified") && strings.Contains(l, "FETCH") {
			break
		}
	}
	wb.do(b, "b7 NOTIFY NONE")
}

// TestKeywordsConcurrentSessions: three sessions on one mailbox over
// real sockets, one in IDLE, one polling, one storing new keywords and
// appending: no session ever sees a keyword in a FETCH before a FLAGS
// response listed it.
func TestKeywordsConcurrentSessions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	for i := range 5 {
		ts.deliver(acct, "INBOX", msg(fmt.Sprintf("m%d", i), "x"))
	}
	idler, wi := ts.login("alice@example.org"), newKWWatch(t, "idler")
	poller, wp := ts.login("alice@example.org"), newKWWatch(t, "poller")
	writer, ww := ts.login("alice@example.org"), newKWWatch(t, "writer")
	for _, s := range []struct {
		c *client
		w *kwWatch
	}{{idler, wi}, {poller, wp}, {writer, ww}} {
		s.w.do(s.c, "s1 SELECT INBOX")
	}
	idler.send("i1 IDLE")
	idler.expectLine("+ idling")
	var wg sync.WaitGroup
	var idleLines []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			l, err := idler.r.ReadString('\n')
			if err != nil {
				return
			}
			l = strings.TrimSuffix(l, "\r\n")
			idleLines = append(idleLines, l)
			if strings.HasPrefix(l, "i1 ") {
				return
			}
		}
	}()
	const rounds = 25
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := range rounds {
			ww.do(writer, fmt.Sprintf(`w%d STORE %d +FLAGS.SILENT ($K%d)`, i, i%5+1, i))
			if i%5 == 0 {
				ww.do(writer, fmt.Sprintf("x%d APPEND INBOX ($New%d) {3+}\r\nabc", i, i))
			}
		}
	}()
	for i := 0; ; i++ {
		wp.do(poller, fmt.Sprintf("p%d NOOP", i))
		wp.do(poller, fmt.Sprintf("q%d FETCH 1:* (FLAGS)", i))
		select {
		case <-done:
		default:
			continue
		}
		break
	}
	wp.do(poller, "z1 NOOP")
	lines := wp.do(poller, "z2 FETCH 1:* (FLAGS)")
	idler.send("DONE")
	wg.Wait()
	for _, l := range idleLines {
		wi.see(l)
	}
	for i := range rounds {
		if !wp.announce[strings.ToLower(fmt.Sprintf("$K%d", i))] {
			t.Fatalf("poller never told of $K%d: %q", i, lines)
		}
	}
	if len(idleLines) == 0 || !strings.HasPrefix(idleLines[len(idleLines)-1], "i1 OK") {
		t.Fatalf("IDLE ended with %q", idleLines)
	}
}
