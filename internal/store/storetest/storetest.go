// Package storetest is the conformance suite every store backend must
// pass. It checks the contract of package store and the invariants of its
// package documentation (DESIGN.md section 3).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// Harness makes stores for the suite.
type Harness struct {
	// New returns an empty store; the suite closes it.
	New func(t *testing.T) store.Store
	// Reopen closes s and opens the same data again.
	Reopen func(t *testing.T, s store.Store) store.Store
}

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"Accounts", testAccounts},
		{"Mailboxes", testMailboxes},
		{"RenameMailbox", testRename},
		{"DeleteMailbox", testDeleteMailbox},
		{"Subscriptions", testSubscriptions},
		{"AppendUIDsModSeq", testAppend},
		{"MultiAppendAtomic", testMultiAppendAtomic},
		{"StageLimits", testStageLimits},
		{"LargeBody", testLargeBody},
		{"StoreFlags", testStoreFlags},
		{"UnchangedSince", testUnchangedSince},
		{"ExpungeTombstones", testExpunge},
		{"CopyMove", testCopyMove},
		{"MessagesIteration", testMessages},
		{"Deliver", testDeliver},
		{"DeliverAll", testDeliverAll},
		{"Events", testEvents},
		{"Isolation", testIsolation},
		{"ConcurrentWrites", testConcurrent},
		{"Durability", testDurability},
		{"UIDsNeverReused", testUIDsNeverReused},
		{"ClaimRecent", testClaimRecent},
		{"ModSeqSteps", testModSeqSteps},
		{"POP3Views", testPOP3Views},
		{"Metadata", testMetadata},
		{"CreateMailboxWith", testCreateWith},
		{"Credentials", testCredentials},
		{"QuotaUsage", testQuotaUsage},
		{"QuotaEnforced", testQuotaEnforced},
		{"QuotaConcurrent", testQuotaConcurrent},
		{"SetupLinks", testSetupLinks},
		{"Aliases", testAliases},
		{"AccessKeys", testAccessKeys},
		{"Snapshot", testSnapshot},
		{"SnapshotConcurrent", testSnapshotConcurrent},
		{"Restore", testRestore},
		{"Queue", testQueue},
		{"DKIMKeys", testDKIMKeys},
		{"Undelete", testUndelete},
		{"UndeleteMany", testUndeleteMany},
		{"STSPolicies", testSTSPolicies},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, h)
		})
	}
}

var ctx = context.Background()

func newStore(t *testing.T, h Harness) store.Store {
	t.Helper()
	s := h.New(t)
	t.Cleanup(func() { s.Close() })
	return s
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

// Msg returns a small well-formed message with the given subject and body.
func Msg(subject, body string) string {
	return "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: " + subject +
		"\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") +
		"@example.org>\r\n\r\n" + body + "\r\n"
}

func stage(t *testing.T, s store.Store, raw string) store.Staged {
	t.Helper()
	b, err := s.Stage(ctx, strings.NewReader(raw), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Discard)
	return b
}

func appendMsgs(t *testing.T, s store.Store, acct store.AccountID, mb store.MailboxID, n int, flags ...string) *store.AppendResult {
	t.Helper()
	msgs := make([]store.NewMessage, n)
	for i := range msgs {
		msgs[i] = store.NewMessage{Body: stage(t, s, Msg(fmt.Sprintf("message %d", i), "hello")), Flags: flags}
	}
	return must[*store.AppendResult](t)(s.Append(ctx, acct, mb, msgs))
}

func account(t *testing.T, s store.Store, name string) (*store.Account, *store.Mailbox) {
	t.Helper()
	a := must[*store.Account](t)(s.CreateAccount(ctx, name, "hash"))
	inbox := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "INBOX"))
	return a, inbox
}

func list(t *testing.T, s store.Store, acct store.AccountID, mb store.MailboxID, uids mail.UIDSet, opt store.ListOptions) []*store.Message {
	t.Helper()
	var out []*store.Message
	for m, err := range s.Messages(ctx, acct, mb, uids, opt) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

var all = mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}

func checkClean(t *testing.T, s store.Store) {
	t.Helper()
	probs, err := s.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Errorf("check: account %d mailbox %d: %s", p.Account, p.Mailbox, p.What)
	}
}

func readBody(t *testing.T, s store.Store, id string) string {
	t.Helper()
	b := must[store.Body](t)(s.OpenBody(ctx, id))
	defer b.Close()
	data, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	ok(t, err)
	if bf, isFile := b.(store.BodyFile); isFile {
		checkBodyFile(t, bf, data)
	}
	return string(data)
}

// checkBodyFile checks what a store.BodyFile reports against the body's
// content: the file holds it, and the dot lines, when known, are where a
// line begins with ".".
func checkBodyFile(t *testing.T, bf store.BodyFile, data []byte) {
	t.Helper()
	f := bf.File()
	_, err := f.Seek(0, io.SeekStart)
	ok(t, err)
	fromFile, err := io.ReadAll(f)
	ok(t, err)
	if !bytes.Equal(fromFile, data) {
		t.Fatal("BodyFile.File differs from the body")
	}
	offsets, endsLF, known := bf.DotLines()
	if !known {
		return
	}
	var want []int64
	for i, c := range data {
		if c == '.' && (i == 0 || data[i-1] == '\n') {
			want = append(want, int64(i))
		}
	}
	if wantLF := bytes.HasSuffix(data, []byte("\n")); !slices.Equal(offsets, want) || endsLF != wantLF {
		t.Fatalf("DotLines = %v, %v; want %v, %v", offsets, endsLF, want, wantLF)
	}
}

func testAccounts(t *testing.T, h Harness) {
	s := newStore(t, h)
	a := must[*store.Account](t)(s.CreateAccount(ctx, "Alice@Example.org", "h1"))
	_, err := s.CreateAccount(ctx, "alice@example.ORG", "h2")
	wantErr(t, err, store.ErrExists)
	got := must[*store.Account](t)(s.Account(ctx, "ALICE@example.org"))
	if got.ID != a.ID || got.Name != "Alice@Example.org" || got.PasswordHash != "h1" {
		t.Fatalf("lookup = %+v", got)
	}
	_, err = s.Account(ctx, "nobody@example.org")
	wantErr(t, err, store.ErrNotFound)

	mbs := must[[]store.Mailbox](t)(s.Mailboxes(ctx, a.ID))
	uses := map[string]string{}
	for _, mb := range mbs {
		uses[mb.Name] = strings.Join(mb.SpecialUse, " ")
		if !mb.Subscribed {
			t.Errorf("default mailbox %s not subscribed", mb.Name)
		}
		if mb.UIDValidity == 0 || mb.UIDNext != 1 {
			t.Errorf("mailbox %s: uidvalidity %d uidnext %d", mb.Name, mb.UIDValidity, mb.UIDNext)
		}
	}
	for _, d := range store.DefaultMailboxes {
		if u, ok := uses[d.Name]; !ok || u != d.SpecialUse {
			t.Errorf("default mailbox %s: present %v use %q", d.Name, ok, u)
		}
	}

	ok(t, s.SetPassword(ctx, a.ID, "h3"))
	ok(t, s.SetAccountSetting(ctx, a.ID, "pop3.delete", "trash"))
	got = must[*store.Account](t)(s.AccountByID(ctx, a.ID))
	if got.PasswordHash != "h3" || got.Settings["pop3.delete"] != "trash" {
		t.Fatalf("after update: %+v", got)
	}
	ok(t, s.SetAccountSetting(ctx, a.ID, "pop3.delete", ""))
	got = must[*store.Account](t)(s.AccountByID(ctx, a.ID))
	if _, ok := got.Settings["pop3.delete"]; ok {
		t.Fatal("setting not cleared")
	}

	b, _ := account(t, s, "bob@example.org")
	accts := must[[]store.Account](t)(s.Accounts(ctx))
	if len(accts) != 2 {
		t.Fatalf("%d accounts", len(accts))
	}
	inbox := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "inbox"))
	appendMsgs(t, s, a.ID, inbox.ID, 2)
	ok(t, s.DeleteAccount(ctx, a.ID))
	_, err = s.AccountByID(ctx, a.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.Status(ctx, a.ID, inbox.ID)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteAccount(ctx, a.ID), store.ErrNotFound)
	if _, err := s.AccountByID(ctx, b.ID); err != nil {
		t.Fatal("other account gone")
	}
	checkClean(t, s)
}

func testMailboxes(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, _ := account(t, s, "a@example.org")
	mb := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "Projects/2026", nil))
	if mb.Name != "Projects/2026" || mb.UIDValidity == 0 {
		t.Fatalf("created %+v", mb)
	}
	_, err := s.CreateMailbox(ctx, a.ID, "Projects/2026", nil)
	wantErr(t, err, store.ErrExists)
	_, err = s.CreateMailbox(ctx, a.ID, "inbox", nil)
	wantErr(t, err, store.ErrExists)
	for _, bad := range []string{"", "/x", "x/", "a//b", "bad\x00name", "ctl\x01", string([]byte{0xff, 0xfe})} {
		_, err := s.CreateMailbox(ctx, a.ID, bad, nil)
		wantErr(t, err, store.ErrInvalidName)
	}
	// Names are case-sensitive except INBOX.
	must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "projects/2026", nil))
	child := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "inbox/Child", nil))
	if child.Name != "INBOX/Child" {
		t.Fatalf("inbox child named %q", child.Name)
	}
	got := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "iNbOx"))
	if got.Name != "INBOX" {
		t.Fatalf("INBOX lookup gave %q", got.Name)
	}
	_, err = s.Mailbox(ctx, a.ID, "Nope")
	wantErr(t, err, store.ErrNotFound)
	// UIDVALIDITY values are unique.
	seen := map[uint32]string{}
	for _, m := range must[[]store.Mailbox](t)(s.Mailboxes(ctx, a.ID)) {
		if other, dup := seen[m.UIDValidity]; dup {
			t.Errorf("mailboxes %s and %s share UIDVALIDITY %d", m.Name, other, m.UIDValidity)
		}
		seen[m.UIDValidity] = m.Name
	}
	ok(t, s.SetSpecialUse(ctx, a.ID, mb.ID, []string{store.UseFlagged}))
	got = must[*store.Mailbox](t)(s.MailboxByID(ctx, a.ID, mb.ID))
	if !slices.Equal(got.SpecialUse, []string{store.UseFlagged}) {
		t.Fatalf("special use %v", got.SpecialUse)
	}
	created := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "Sent Items", []string{store.UseSent}))
	if !slices.Equal(created.SpecialUse, []string{store.UseSent}) {
		t.Fatalf("create special use %v", created.SpecialUse)
	}
}

func testRename(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	parent := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "Work", nil))
	kid := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "Work/Old", nil))
	must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "Workshop", nil))
	appendMsgs(t, s, a.ID, kid.ID, 3)
	ok(t, s.SetSubscribed(ctx, a.ID, "Work/Old", true))
	ok(t, s.RenameMailbox(ctx, a.ID, "Work", "Job"))
	p2 := must[*store.Mailbox](t)(s.MailboxByID(ctx, a.ID, parent.ID))
	k2 := must[*store.Mailbox](t)(s.MailboxByID(ctx, a.ID, kid.ID))
	if p2.Name != "Job" || k2.Name != "Job/Old" {
		t.Fatalf("renamed to %q, %q", p2.Name, k2.Name)
	}
	if k2.UIDValidity != kid.UIDValidity || p2.UIDValidity != parent.UIDValidity {
		t.Fatal("rename changed UIDVALIDITY")
	}
	if !k2.Subscribed {
		t.Fatal("subscription not renamed")
	}
	if _, err := s.Mailbox(ctx, a.ID, "Workshop"); err != nil {
		t.Fatal("sibling with common prefix was renamed")
	}
	if n := len(list(t, s, a.ID, kid.ID, all, store.ListOptions{})); n != 3 {
		t.Fatalf("%d messages after rename", n)
	}
	wantErr(t, s.RenameMailbox(ctx, a.ID, "Job", "Workshop"), store.ErrExists)
	wantErr(t, s.RenameMailbox(ctx, a.ID, "Nope", "X"), store.ErrNotFound)
	wantErr(t, s.RenameMailbox(ctx, a.ID, "Job", "Job/Inner"), store.ErrInvalidName)

	// RFC 9051 §6.3.6: renaming INBOX moves its messages; INBOX stays.
	appendMsgs(t, s, a.ID, inbox.ID, 4)
	ok(t, s.RenameMailbox(ctx, a.ID, "INBOX", "Old Inbox"))
	old := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "Old Inbox"))
	if n := len(list(t, s, a.ID, old.ID, all, store.ListOptions{})); n != 4 {
		t.Fatalf("%d messages in renamed inbox", n)
	}
	st := must[*store.Status](t)(s.Status(ctx, a.ID, inbox.ID))
	if st.Messages != 0 {
		t.Fatalf("INBOX has %d messages after rename", st.Messages)
	}
	checkClean(t, s)
}

func testDeleteMailbox(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	wantErr(t, s.DeleteMailbox(ctx, a.ID, inbox.ID), store.ErrInbox)
	p := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "P", nil))
	c := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "P/C", nil))
	appendMsgs(t, s, a.ID, p.ID, 2)
	// RFC 9051 §6.3.5: a mailbox with children becomes \Noselect.
	ok(t, s.DeleteMailbox(ctx, a.ID, p.ID))
	got := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "P"))
	if !got.NoSelect {
		t.Fatal("parent not \\Noselect after delete")
	}
	if st := must[*store.Status](t)(s.Status(ctx, a.ID, p.ID)); st.Messages != 0 {
		t.Fatalf("noselect mailbox holds %d messages", st.Messages)
	}
	staged := stage(t, s, Msg("x", "y"))
	_, err := s.Append(ctx, a.ID, p.ID, []store.NewMessage{{Body: staged}})
	wantErr(t, err, store.ErrNoSelect)
	wantErr(t, s.DeleteMailbox(ctx, a.ID, p.ID), store.ErrHasChildren)
	// Re-creating the name makes it selectable with a new UIDVALIDITY.
	re := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "P", nil))
	if re.NoSelect || re.UIDValidity == p.UIDValidity {
		t.Fatalf("recreated: %+v (old uidvalidity %d)", re, p.UIDValidity)
	}
	ok(t, s.DeleteMailbox(ctx, a.ID, c.ID))
	_, err = s.MailboxByID(ctx, a.ID, c.ID)
	wantErr(t, err, store.ErrNotFound)
	// A deleted name comes back with a new ID and UIDVALIDITY.
	c2 := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "P/C", nil))
	if c2.ID == c.ID || c2.UIDValidity == c.UIDValidity {
		t.Fatal("re-created mailbox reuses ID or UIDVALIDITY")
	}
	checkClean(t, s)
}

func testSubscriptions(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, _ := account(t, s, "a@example.org")
	ok(t, s.SetSubscribed(ctx, a.ID, "Does/Not/Exist", true))
	ok(t, s.SetSubscribed(ctx, a.ID, "Junk", false))
	subs := must[[]string](t)(s.Subscriptions(ctx, a.ID))
	if !slices.Contains(subs, "Does/Not/Exist") || slices.Contains(subs, "Junk") {
		t.Fatalf("subscriptions %v", subs)
	}
	mb := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "Junk"))
	if mb.Subscribed {
		t.Fatal("Junk still subscribed")
	}
}

func testAppend(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	var lastUID mail.UID
	var lastMod mail.ModSeq
	for i := range 5 {
		date := time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("", 2*3600))
		raw := Msg(fmt.Sprintf("m%d", i), "body")
		res := must[*store.AppendResult](t)(s.Append(ctx, a.ID, inbox.ID, []store.NewMessage{{
			Body: stage(t, s, raw), Flags: mail.Flags{`\seen`, "$Important"}, InternalDate: date}}))
		if len(res.UIDs) != 1 || res.UIDs[0] <= lastUID || res.ModSeq <= lastMod || res.UIDValidity != inbox.UIDValidity {
			t.Fatalf("append %d: %+v (last uid %d modseq %d)", i, res, lastUID, lastMod)
		}
		lastUID, lastMod = res.UIDs[0], res.ModSeq
		msgs := list(t, s, a.ID, inbox.ID, mail.NewUIDSet(lastUID), store.ListOptions{Summary: true})
		if len(msgs) != 1 {
			t.Fatalf("%d messages listed", len(msgs))
		}
		m := msgs[0]
		if !m.Flags.Equal(mail.NewFlags(mail.FlagSeen, "$Important")) || m.ModSeq != res.ModSeq ||
			!m.InternalDate.Equal(date) || m.Size != int64(len(raw)) || m.EmailID == "" {
			t.Fatalf("stored %+v", m)
		}
		if _, off := m.InternalDate.Zone(); off != 2*3600 {
			t.Fatalf("internal date zone offset %d", off)
		}
		if m.Summary == nil || m.Summary.Root.Envelope == nil || m.Summary.Root.Envelope.Subject != fmt.Sprintf("m%d", i) {
			t.Fatalf("summary %+v", m.Summary)
		}
		if got := readBody(t, s, m.BlobID); got != raw {
			t.Fatalf("body %q", got)
		}
	}
	st := must[*store.Status](t)(s.Status(ctx, a.ID, inbox.ID))
	if st.Messages != 5 || st.Unseen != 0 || st.UIDNext != lastUID+1 || st.HighestModSeq != lastMod {
		t.Fatalf("status %+v", st)
	}
	_, err := s.Append(ctx, a.ID, inbox.ID, []store.NewMessage{{Body: stage(t, s, "x\r\n"), Flags: mail.Flags{`\Recent`}}})
	if err == nil {
		t.Fatal(`append with \Recent accepted`)
	}
	_, err = s.Append(ctx, a.ID, inbox.ID, []store.NewMessage{{Body: stage(t, s, "x\r\n"), Flags: mail.Flags{"bad(keyword"}}})
	if err == nil {
		t.Fatal("append with invalid keyword accepted")
	}
	checkClean(t, s)
}

func testMultiAppendAtomic(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	res := appendMsgs(t, s, a.ID, inbox.ID, 3)
	if res.UIDs[1] != res.UIDs[0]+1 || res.UIDs[2] != res.UIDs[1]+1 {
		t.Fatalf("MULTIAPPEND UIDs not consecutive: %v", res.UIDs)
	}
	_, err := s.Append(ctx, a.ID, inbox.ID, []store.NewMessage{
		{Body: stage(t, s, Msg("good", "x"))},
		{Body: stage(t, s, Msg("bad", "x")), Flags: mail.Flags{`\Bogus`}},
	})
	if err == nil {
		t.Fatal("append with a bad flag succeeded")
	}
	if st := must[*store.Status](t)(s.Status(ctx, a.ID, inbox.ID)); st.Messages != 3 {
		t.Fatalf("failed MULTIAPPEND left %d messages, want 3", st.Messages)
	}
}

func testStageLimits(t *testing.T, h Harness) {
	s := newStore(t, h)
	_, err := s.Stage(ctx, strings.NewReader(""), 0)
	wantErr(t, err, store.ErrEmptyMessage)
	_, err = s.Stage(ctx, strings.NewReader(strings.Repeat("x", 1001)), 1000)
	wantErr(t, err, store.ErrTooBig)
	_, err = s.Stage(ctx, io.MultiReader(strings.NewReader("Subject: big\r\n\r\n"), bytes.NewReader(make([]byte, 3<<20))), 2<<20)
	wantErr(t, err, store.ErrTooBig)
	b, err := s.Stage(ctx, strings.NewReader(strings.Repeat("x", 1000)), 1000)
	ok(t, err)
	b.Discard()
	b.Discard()
}

func testLargeBody(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	var sb strings.Builder
	sb.WriteString("From: a@example.org\r\nSubject: large\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n.a line with a dot\r\n..\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for sb.Len() < 3<<20 {
		sb.WriteString("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n")
	}
	sb.WriteString("--XX--\r\n")
	raw := sb.String()
	res := must[*store.AppendResult](t)(s.Append(ctx, a.ID, inbox.ID, []store.NewMessage{{Body: stage(t, s, raw)}}))
	m := list(t, s, a.ID, inbox.ID, mail.NewUIDSet(res.UIDs...), store.ListOptions{Summary: true})[0]
	if m.Size != int64(len(raw)) || len(m.Summary.Root.Parts) != 2 {
		t.Fatalf("size %d parts %d", m.Size, len(m.Summary.Root.Parts))
	}
	if got := readBody(t, s, m.BlobID); got != raw {
		t.Fatal("large body differs")
	}
	// The same body again shares the blob.
	res2 := must[*store.AppendResult](t)(s.Append(ctx, a.ID, inbox.ID, []store.NewMessage{{Body: stage(t, s, raw)}}))
	m2 := list(t, s, a.ID, inbox.ID, mail.NewUIDSet(res2.UIDs...), store.ListOptions{})[0]
	if m2.BlobID != m.BlobID {
		t.Fatal("identical bodies stored twice")
	}
	checkClean(t, s)
	s = h.Reopen(t, s)
	t.Cleanup(func() { s.Close() })
	if got := readBody(t, s, m.BlobID); got != raw {
		t.Fatal("large body differs after reopen")
	}
	checkClean(t, s)
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
