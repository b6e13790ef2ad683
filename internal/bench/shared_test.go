package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestRunIMAPSharedAgainstMemServer runs the shared workload against
// go-imap's in-memory server (no SORT or THREAD there: the sessions search
// instead), two sessions on each of three accounts, without and with
// keywords. With keywords the checker must find the keyword rule broken:
// that server never lists keywords in its FLAGS response (go-imap v2 as
// pinned in go.mod), as postfach did not before issue 11 item 8. Zero
// violations are not asserted here: now and then that server answers a
// concurrent APPEND with "* 0 FETCH", which the checker rightly counts
// (fetch-beyond-exists). The zero is asserted against postfach, in
// cmd/postfach-bench.
func TestRunIMAPSharedAgainstMemServer(t *testing.T) {
	ms := startMemServer(t, 3, 25)
	for _, keywords := range [][]string{nil, {"$Label1", "$Forwarded"}} {
		res, err := RunIMAPShared(context.Background(), SharedOptions{
			Common:     Common{Addr: ms.imapAddr, Label: "mem"},
			Users:      Users{Format: testUsers, First: 1, Count: 3, Password: "pw"},
			PerAccount: 2, Ops: 120, Duration: time.Minute, IdleWait: 5 * time.Millisecond,
			Keywords: keywords, Corpus: GenerateCorpus(3, 20), Seed: 1,
		})
		if err != nil {
			t.Fatalf("%v (%+v)", err, res)
		}
		var buf bytes.Buffer
		res.WriteTable(&buf)
		if res.Case != "imap-shared-a3x2" || res.Params["sessions"] != 6 || res.Params["accounts_shared"] != 3 {
			t.Errorf("case %q params %v", res.Case, res.Params)
		}
		if res.Checks == nil || res.Checks.Responses == 0 {
			t.Fatalf("nothing checked: %+v", res.Checks)
		}
		got := map[string]int64{}
		for _, o := range res.Ops {
			got[o.Op] = o.Count
		}
		for _, op := range []string{opStore, opFetchFlags, opFetchEnv, opFetchStruct, opFetchSection, opSearch, opAppend, opExpunge, opCopy, opNoop, opIdle} {
			if got[op] == 0 {
				t.Errorf("keywords %v: no %s completed: %v", keywords, op, got)
			}
		}
		v := res.Checks.Violations
		if keywords == nil && v[VKeywordNotAnnounced] != 0 || keywords != nil && v[VKeywordNotAnnounced] == 0 {
			t.Errorf("keywords %v: violations %v\n%s", keywords, v, buf.String())
		}
		if m, _ := res.Metric("violations"); m.Value != float64(res.Checks.ViolationCount()) {
			t.Errorf("violations metric %v, checks %d", m.Value, res.Checks.ViolationCount())
		}
		if !strings.Contains(buf.String(), "consistency:") {
			t.Errorf("table lacks the consistency line:\n%s", buf.String())
		}
		// APPEND and EXPUNGE held the mailboxes near their 25 messages.
		for name, u := range ms.users {
			st, err := u.Status("INBOX", &imap.StatusOptions{NumMessages: true})
			if err != nil {
				t.Fatal(err)
			}
			if n := *st.NumMessages; n < 12 || n > 50 {
				t.Errorf("%s has %d messages after the run, started with 25", name, n)
			}
		}
	}
}

// TestRunIMAPSharedAssignment checks how sessions are spread: at random
// with some accounts shared, or a fixed number per account.
func TestRunIMAPSharedAssignment(t *testing.T) {
	ms := startMemServer(t, 4, 3)
	res, err := RunIMAPShared(context.Background(), SharedOptions{
		Common:   Common{Addr: ms.imapAddr, Label: "mem"},
		Users:    Users{Format: testUsers, First: 1, Count: 4, Password: "pw"},
		Sessions: 8, Ops: 5, Duration: time.Minute, Corpus: GenerateCorpus(3, 5), Seed: 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Case != "imap-shared-s8-a4" || res.Params["sessions"] != 8 || res.Params["accounts_shared"].(int) < 1 {
		t.Errorf("case %q params %v", res.Case, res.Params)
	}
	if _, err := RunIMAPShared(context.Background(), SharedOptions{Common: Common{Addr: ms.imapAddr},
		Users: Users{Format: testUsers, Count: 4}, Sessions: 1, Duration: time.Millisecond,
		Keywords: []string{"bad word"}, Corpus: GenerateCorpus(3, 5)}); err == nil {
		t.Error("a keyword with a space was accepted")
	}
}
