package imapserver

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// TestSyncScenarioSent is issue 4's scenario 2: a message sent from the
// office (appended to Sent by device A) is visible on the phone. Device B
// uses NOTIFY and is told at once, without polling; device C polls with
// STATUS, as clients without NOTIFY do. Both then fetch it.
func TestSyncScenarioSent(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice@example.org")
	sent := "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: minutes\r\n\r\nAs discussed.\r\n"

	b := ts.login("alice@example.org")
	b.ok("b1 SELECT INBOX")
	b.ok("b2 NOTIFY SET (selected (MessageNew MessageExpunge)) (personal (MessageNew MessageExpunge MailboxName))")
	c := ts.login("alice@example.org")
	c.expect("c1 STATUS Sent (MESSAGES UIDNEXT)", "* STATUS Sent (MESSAGES 0 UIDNEXT 1)", "c1 OK STATUS completed")

	a := ts.login("alice@example.org")
	a.expect(fmt.Sprintf("a1 APPEND Sent (\\Seen) {%d+}\r\n%s", len(sent), sent),
		"a1 OK [APPENDUID … 1] APPEND completed")

	// B: pushed while it sits between commands.
	b.pushed("* STATUS Sent (MESSAGES 1 UIDNEXT 2 UIDVALIDITY … UNSEEN 0)")
	b.ok("b3 EXAMINE Sent")
	b.expect("b4 UID FETCH 1:* (FLAGS BODY.PEEK[])", fmt.Sprintf("* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) BODY[] {%d}\r\n%s)", len(sent), sent), "b4 OK UID FETCH completed")

	// C: its next poll shows UIDNEXT moved; it fetches from its old
	// UIDNEXT on.
	c.expect("c2 STATUS Sent (MESSAGES UIDNEXT)", "* STATUS Sent (MESSAGES 1 UIDNEXT 2)", "c2 OK STATUS completed")
	c.ok("c3 EXAMINE Sent")
	c.expect("c4 UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])", "* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {20}\r\nSubject: minutes\r\n\r\n)", "c4 OK UID FETCH completed")
}

// TestSyncScenarioNewDevice is issue 4's scenario 5: a brand-new device
// (go-imap v2's client, which nobody here wrote) logs in and gets every
// folder, nested and non-ASCII names included, and every message with
// its flags, exactly as stored.
func TestSyncScenarioNewDevice(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ctx := context.Background()
	for _, name := range []string{"Archive/2023", "Büro", "Lists", "Lists/go"} {
		if _, err := ts.st.CreateMailbox(ctx, acct, name, nil); err != nil {
			t.Fatal(err)
		}
	}
	type m struct {
		mailbox string
		flags   []string
	}
	for i, x := range []m{
		{"INBOX", nil}, {"INBOX", []string{`\Seen`}}, {"INBOX", []string{`\Seen`, `\Answered`}},
		{"INBOX", []string{`\Flagged`, "$Forwarded"}}, {"Sent", []string{`\Seen`}}, {"Drafts", []string{`\Draft`}},
		{"Archive/2023", []string{`\Seen`}}, {"Archive/2023", nil}, {"Büro", []string{"$Label1"}}, {"Lists/go", nil},
	} {
		ts.deliver(acct, x.mailbox, msg(fmt.Sprintf("message %d", i), strings.Repeat("line\n", i+1)), x.flags...)
	}
	// What the store holds, per mailbox: "flags|body" of every message.
	want := map[string][]string{}
	mbs, err := ts.st.Mailboxes(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	for _, mb := range mbs {
		uids, _, err := ts.st.UIDs(ctx, acct, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		want[mb.Name] = []string{}
		for msg, err := range ts.st.Messages(ctx, acct, mb.ID, uids, store.ListOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			body, err := ts.st.OpenBody(ctx, msg.BlobID)
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(io.NewSectionReader(body, 0, body.Size()))
			body.Close()
			if err != nil {
				t.Fatal(err)
			}
			want[mb.Name] = append(want[mb.Name], flagKey(msg.Flags)+"|"+string(data))
		}
	}

	// The new device.
	c, err := imapclient.DialInsecure(ts.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@example.org", testPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, box := range boxes {
		if slices.Contains(box.Attrs, imap.MailboxAttrNoSelect) || slices.Contains(box.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		sel, err := c.Select(box.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatalf("SELECT %s: %v", box.Mailbox, err)
		}
		got[box.Mailbox] = []string{}
		if sel.NumMessages == 0 {
			continue
		}
		section := &imap.FetchItemBodySection{Peek: true}
		msgs, err := c.Fetch(seqAll(), &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		if err != nil {
			t.Fatalf("FETCH in %s: %v", box.Mailbox, err)
		}
		for _, fm := range msgs {
			fl := mail.Flags{}
			for _, f := range fm.Flags {
				if f != `\Recent` { // session state (EXAMINE shows it), not stored
					fl = fl.With(string(f))
				}
			}
			got[box.Mailbox] = append(got[box.Mailbox], flagKey(fl)+"|"+string(fm.FindBodySection(section)))
		}
	}
	if len(got) != len(want) {
		t.Errorf("device sees %d folders, the store has %d: %v", len(got), len(want), mapKeys(got))
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("folder %q missing on the device", name)
			continue
		}
		if !slices.Equal(g, w) {
			t.Errorf("folder %q: device has\n%q\nstore has\n%q", name, g, w)
		}
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}

func seqAll() imap.SeqSet {
	var s imap.SeqSet
	s.AddRange(1, 0)
	return s
}

func flagKey(fl mail.Flags) string {
	s := make([]string, 0, len(fl))
	for _, f := range fl {
		s = append(s, strings.ToLower(f))
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}

func mapKeys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
