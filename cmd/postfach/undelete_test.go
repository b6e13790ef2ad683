package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestUndelete: an expunged message and the messages of a deleted folder
// are listed by `postfach undelete --list` and come back through the
// running server; an IMAP client (go-imap's imapclient) that has INBOX
// selected sees the message as new (a new UID, with its flags but not
// \Deleted), and the folder made again with its messages. Without a
// server the command works on the store.
func TestUndelete(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, testStoreConfig(t))
	cfgText, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(cfgText), `imap = ""`, `imap = "127.0.0.1:0"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, code int, args ...string) result {
		t.Helper()
		r := runBin(t, stdin, append(args, "--config", cfg)...)
		if r.code != code {
			t.Fatalf("%v: exit %d, want %d; stdout %s; stderr %s", args, r.code, code, r.stdout, r.stderr)
		}
		return r
	}
	srv := startServe(t, cfg)
	const user = "alice@example.org"
	run("pw-alice-1\n", 0, "user", "add", user, "--password-stdin")
	for i, subj := range []string{"Quarterly numbers", "Lunch", "Holiday plans"} {
		run(fmt.Sprintf("From: Bob <bob@example.net>\nTo: %s\nSubject: %s\nMessage-ID: <m%d@example.net>\n\nbody %d\n", user, subj, i, i), 0,
			"deliver", "--to", user)
	}
	c, err := imapclient.DialInsecure(srv.Addr("imap"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, "pw-alice-1").Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 3 {
		t.Fatalf("INBOX has %d messages, want 3", sel.NumMessages)
	}
	uidNext := sel.UIDNext
	if err := c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
		Flags: []imap.Flag{imap.FlagSeen, imap.FlagDeleted, "$Work"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	// A folder with two messages, deleted.
	if err := c.Create("Projects/Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		raw := fmt.Sprintf("From: carol@example.com\r\nTo: %s\r\nSubject: plan %d\r\n\r\nstep %d\r\n", user, i, i)
		ac := c.Append("Projects/Work", int64(len(raw)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagFlagged},
			Time: time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)})
		ac.Write([]byte(raw))
		ac.Close()
		if _, err := ac.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Delete("Projects/Work").Wait(); err != nil {
		t.Fatal(err)
	}

	list := run("", 0, "undelete", user, "--list").stdout
	if !strings.Contains(list, "3 deleted messages kept") || !strings.Contains(list, `"INBOX" uid=1 size=`) ||
		!strings.Contains(list, `subject="Quarterly numbers"`) || strings.Count(list, `"Projects/Work" uid=`) != 2 ||
		!strings.Contains(list, "(mailbox deleted)") {
		t.Fatalf("undelete --list:\n%s", list)
	}
	if out := run("", 0, "undelete", user, "--list", "--match", "QUARTERLY").stdout; strings.Count(out, "uid=") != 1 {
		t.Fatalf("--match: %s", out)
	}
	if out := run("", 0, "undelete", user, "--list", "--match", "carol@").stdout; strings.Count(out, "uid=") != 2 {
		t.Fatalf("--match on From: %s", out)
	}
	if out := run("", 0, "undelete", user, "--list", "--since", "7d", "--mailbox", "Projects").stdout; strings.Count(out, "uid=") != 2 {
		t.Fatalf("--since 7d --mailbox Projects: %s", out)
	}
	if out := run("", 0, "undelete", user, "--list", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)).stdout; strings.Contains(out, "uid=") {
		t.Fatalf("--since in the future: %s", out)
	}
	run("", 2, "undelete", user, "--since", "yesterday")
	if r := run("", 1, "undelete", "nobody@example.org", "--list"); !strings.Contains(r.stderr, "no such account") {
		t.Fatalf("unknown account: %s", r.stderr)
	}

	// The expunged message comes back into INBOX: the selected client
	// sees it as a new message.
	out := run("", 0, "undelete", user, "--mailbox", "INBOX").stdout
	if !strings.Contains(out, "brought back 1 of 1 messages") || !strings.Contains(out, fmt.Sprintf(`-> "INBOX" uid=%d`, uidNext)) {
		t.Fatalf("undelete --mailbox INBOX: %s", out)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(1, uidNext), &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].UID != uidNext || msgs[0].Envelope == nil || msgs[0].Envelope.Subject != "Quarterly numbers" ||
		!slices.Contains(msgs[0].Flags, imap.FlagSeen) || !slices.Contains(msgs[0].Flags, "$Work") || slices.Contains(msgs[0].Flags, imap.FlagDeleted) {
		t.Fatalf("after the undelete INBOX shows %+v", msgs)
	}
	if st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait(); err != nil || *st.NumMessages != 3 {
		t.Fatalf("STATUS INBOX: %+v, %v", st, err)
	}
	srv.stop()

	// Without a server, on the store: the folder is made again.
	out = run("", 0, "undelete", user).stdout
	if !strings.Contains(out, "mailbox Projects/Work created again") || !strings.Contains(out, "brought back 2 of 2 messages") {
		t.Fatalf("undelete without a server: %s", out)
	}
	if out := run("", 0, "undelete", user).stdout; !strings.Contains(out, "no deleted messages kept that match") {
		t.Fatalf("a second undelete: %s", out)
	}
	srv = startServe(t, cfg)
	defer srv.stop()
	c2, err := imapclient.DialInsecure(srv.Addr("imap"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Login(user, "pw-alice-1").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Select("Projects/Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err = c2.Fetch(imap.UIDSetNum(1, 2), &imap.FetchOptions{UID: true, Flags: true, Envelope: true, InternalDate: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || !slices.Contains(msgs[0].Flags, imap.FlagFlagged) || msgs[1].Envelope.Subject != "plan 1" ||
		!msgs[1].InternalDate.Equal(time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)) {
		t.Fatalf("Projects/Work after the undelete: %+v", msgs)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"7d":                   now.Add(-7 * 24 * time.Hour),
		"2w":                   now.Add(-14 * 24 * time.Hour),
		"36h":                  now.Add(-36 * time.Hour),
		"1.5d":                 now.Add(-36 * time.Hour),
		"2026-12-01":           time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		"2026-12-01T08:00:00Z": time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC),
	} {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-3d", "yesterday", "7x", "1e9d"} {
		if _, err := parseSince(in, now); err == nil {
			t.Errorf("parseSince(%q) accepted", in)
		}
	}
}
