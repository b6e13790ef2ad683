package backup_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/backup"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
)

var ctx = context.Background()

func openStore(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: dir, SweepInterval: -1, ReadConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func msg(subject, body string) string {
	return "From: a@example.org\r\nTo: b@example.org\r\nSubject: " + subject + "\r\nMessage-ID: <" + subject + "@x>\r\n\r\n" + body + "\r\n"
}

func appendMsg(t *testing.T, st store.Store, acct store.AccountID, mb store.MailboxID, raw string, flags ...string) mail.UID {
	t.Helper()
	b := must[store.Staged](t)(st.Stage(ctx, strings.NewReader(raw), 0))
	defer b.Discard()
	r := must[*store.AppendResult](t)(st.Append(ctx, acct, mb, []store.NewMessage{{Body: b, Flags: flags,
		InternalDate: time.Date(2021, 3, 4, 5, 6, 7, 0, time.FixedZone("", -5*3600))}}))
	return r.UIDs[0]
}

// fill makes an account with mail of every kind.
func fill(t *testing.T, st *sqlite.Store) store.AccountID {
	t.Helper()
	a := must[*store.Account](t)(st.CreateAccount(ctx, "alice@example.org", "$argon2id$hash"))
	inbox := must[*store.Mailbox](t)(st.Mailbox(ctx, a.ID, "INBOX"))
	work := must[*store.Mailbox](t)(st.CreateMailboxWith(ctx, a.ID, "Work/2024", store.CreateOptions{Parents: true, Subscribe: true}))
	for i := range 5 {
		appendMsg(t, st, a.ID, inbox.ID, msg(fmt.Sprintf("m%d", i), "hello"), `\Seen`, "$Important")
	}
	appendMsg(t, st, a.ID, work.ID, msg("big", strings.Repeat("big body line\r\n", 20000)), `\Flagged`)
	_ = must[*store.ExpungeResult](t)(st.Expunge(ctx, a.ID, inbox.ID, mail.NewUIDSet(2), false))
	must[*store.Device](t)(st.AddDevice(ctx, a.ID, "phone", "devhash", "devscram"))
	if err := st.HidePOP3(ctx, a.ID, "phone", inbox.ID, mail.NewUIDSet(1, 3)); err != nil {
		t.Fatal(err)
	}
	if err := st.SetMetadata(ctx, a.ID, inbox.ID, map[string][]byte{"/private/comment": []byte("c")}, 0, 0); err != nil {
		t.Fatal(err)
	}
	return a.ID
}

func TestBackupVerifyRestore(t *testing.T) {
	t.Parallel()
	src := openStore(t, t.TempDir())
	acct := fill(t, src)
	root := filepath.Join(t.TempDir(), "backups")
	res := must[*backup.Result](t)(backup.Backup(ctx, src, root, backup.Options{}))
	if res.Manifest.NewBodies != res.Manifest.Bodies || res.Manifest.Bodies != 6 || len(res.Damaged) != 0 {
		t.Fatalf("manifest %+v, damaged %v", res.Manifest, res.Damaged)
	}
	checkModes(t, root)
	rep := must[*backup.Report](t)(backup.Verify(ctx, root))
	if len(rep.Problems) != 0 || rep.Bodies != 6 {
		t.Fatalf("verify: %+v", rep)
	}

	dst := openStore(t, t.TempDir())
	rr := must[*backup.RestoreResult](t)(backup.Restore(ctx, dst, res.Dir, backup.RestoreOptions{UIDMargin: 100}))
	if rr.Accounts != 1 || rr.Messages != 5 || rr.Expunged != 1 {
		t.Fatalf("restore: %+v", rr)
	}
	compareStores(t, src, dst, 100, func(string) bool { return true })
	if _, err := backup.Restore(ctx, dst, res.Dir, backup.RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("restore into a store with accounts: %v", err)
	}

	// A second backup writes no body again, and restores on its own.
	appendMsg(t, src, acct, must[*store.Mailbox](t)(src.Mailbox(ctx, acct, "INBOX")).ID, msg("late", "new"))
	res2 := must[*backup.Result](t)(backup.Backup(ctx, src, root, backup.Options{Now: func() time.Time { return time.Now().Add(time.Hour) }}))
	if res2.Manifest.NewBodies != 1 || res2.Manifest.Bodies != 7 {
		t.Fatalf("second backup: %+v", res2.Manifest)
	}

	// Prune to one backup: the first's own bodies stay while the second
	// lists them, the expunged-only body too.
	pr := must[*backup.PruneResult](t)(backup.Prune(root, 1))
	if len(pr.Removed) != 1 || pr.Bodies != 0 {
		t.Fatalf("prune: %+v", pr)
	}
	rep = must[*backup.Report](t)(backup.Verify(ctx, root))
	if len(rep.Problems) != 0 || len(rep.Backups) != 1 || rep.Bodies != 7 {
		t.Fatalf("verify after prune: %+v", rep)
	}
}

// compareStores checks that dst holds what src holds: accounts,
// mailboxes with UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ raised by margin,
// and every message with its UID, MODSEQ, flags, dates and body.
func compareStores(t *testing.T, src, dst store.Store, margin uint32, keep func(body string) bool) {
	t.Helper()
	sa := must[[]store.Account](t)(src.Accounts(ctx))
	da := must[[]store.Account](t)(dst.Accounts(ctx))
	if len(sa) != len(da) {
		t.Fatalf("%d accounts restored, want %d", len(da), len(sa))
	}
	for i := range sa {
		if sa[i].Name != da[i].Name || sa[i].PasswordHash != da[i].PasswordHash {
			t.Fatalf("account %+v restored as %+v", sa[i], da[i])
		}
		smbs := must[[]store.Mailbox](t)(src.Mailboxes(ctx, sa[i].ID))
		dmbs := must[[]store.Mailbox](t)(dst.Mailboxes(ctx, da[i].ID))
		if len(smbs) != len(dmbs) {
			t.Fatalf("%d mailboxes restored, want %d", len(dmbs), len(smbs))
		}
		for j := range smbs {
			s, d := smbs[j], dmbs[j]
			if s.Name != d.Name || s.UIDValidity != d.UIDValidity || d.UIDNext < s.UIDNext+mail.UID(margin) ||
				d.HighestModSeq < s.HighestModSeq+mail.ModSeq(margin) || s.Subscribed != d.Subscribed || !slices.Equal(s.SpecialUse, d.SpecialUse) {
				t.Fatalf("mailbox %+v restored as %+v", s, d)
			}
			var sm []*store.Message
			for m, err := range src.Messages(ctx, sa[i].ID, s.ID, mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}, store.ListOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				if keep(bodyOf(t, src, m.BlobID)) {
					sm = append(sm, m)
				}
			}
			var dm []*store.Message
			for m, err := range dst.Messages(ctx, da[i].ID, d.ID, mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}, store.ListOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				dm = append(dm, m)
			}
			if len(sm) != len(dm) {
				t.Fatalf("mailbox %s: %d messages restored, want %d", s.Name, len(dm), len(sm))
			}
			for k := range sm {
				a, b := sm[k], dm[k]
				if a.UID != b.UID || a.ModSeq != b.ModSeq || !a.Flags.Equal(b.Flags) || !a.InternalDate.Equal(b.InternalDate) ||
					a.InternalDate.Format(time.RFC3339) != b.InternalDate.Format(time.RFC3339) || !a.SaveDate.Equal(b.SaveDate) ||
					a.EmailID != b.EmailID || a.Size != b.Size || bodyOf(t, src, a.BlobID) != bodyOf(t, dst, b.BlobID) {
					t.Fatalf("mailbox %s: message %+v restored as %+v", s.Name, *a, *b)
				}
			}
		}
	}
}

func bodyOf(t *testing.T, st store.Store, id string) string {
	t.Helper()
	b := must[store.Body](t)(st.OpenBody(ctx, id))
	defer b.Close()
	data, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func checkModes(t *testing.T, root string) {
	t.Helper()
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestVerifyDamage flips a byte in a body and cuts the message records:
// verify reports both, and a restore refuses the damaged backup.
func TestVerifyDamage(t *testing.T) {
	t.Parallel()
	src := openStore(t, t.TempDir())
	fill(t, src)
	root := t.TempDir()
	res := must[*backup.Result](t)(backup.Backup(ctx, src, root, backup.Options{}))
	blobs := must[[]os.DirEntry](t)(os.ReadDir(filepath.Join(root, "blobs")))
	victim := filepath.Join(root, "blobs", blobs[0].Name())
	data := must[[]byte](t)(os.ReadFile(victim))
	data[len(data)/2] ^= 0x20
	if err := os.WriteFile(victim, data, 0o600); err != nil {
		t.Fatal(err)
	}
	rep := must[*backup.Report](t)(backup.Verify(ctx, root))
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], blobs[0].Name()+" is damaged") {
		t.Fatalf("verify after a flipped byte: %q", rep.Problems)
	}
	dst := openStore(t, t.TempDir())
	if _, err := backup.Restore(ctx, dst, root, backup.RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("restore of a damaged body: %v", err)
	}

	recs := filepath.Join(res.Dir, "messages.jsonl")
	data = must[[]byte](t)(os.ReadFile(recs))
	if err := os.WriteFile(recs, data[:len(data)-40], 0o600); err != nil {
		t.Fatal(err)
	}
	rep = must[*backup.Report](t)(backup.Verify(ctx, res.Dir))
	if len(rep.Problems) < 2 || !slices.ContainsFunc(rep.Problems, func(p string) bool { return strings.Contains(p, "messages") }) {
		t.Fatalf("verify after a cut record file: %q", rep.Problems)
	}
	dst2 := openStore(t, t.TempDir())
	if _, err := backup.Restore(ctx, dst2, res.Dir, backup.RestoreOptions{}); err == nil {
		t.Fatal("restore of a backup with a cut record file succeeded")
	}
	if n := len(must[[]store.Account](t)(dst2.Accounts(ctx))); n != 0 {
		t.Fatalf("a refused restore left %d accounts", n)
	}
}

// TestRestorePartial adds one account's mail back into a store in use:
// new UIDs, flags kept, a deleted mailbox made again, a UID subset, what
// is still there left out (a second run adds nothing), and another
// account with a mailbox of the same name untouched.
func TestRestorePartial(t *testing.T) {
	t.Parallel()
	st := openStore(t, t.TempDir())
	acct := fill(t, st)
	bob := must[*store.Account](t)(st.CreateAccount(ctx, "bob@example.org", "h"))
	must[*store.Mailbox](t)(st.CreateMailboxWith(ctx, bob.ID, "Work/2024", store.CreateOptions{Parents: true}))
	root := t.TempDir()
	res := must[*backup.Result](t)(backup.Backup(ctx, st, root, backup.Options{}))

	inbox := must[*store.Mailbox](t)(st.Mailbox(ctx, acct, "INBOX"))
	_ = must[*store.ExpungeResult](t)(st.Expunge(ctx, acct, inbox.ID, mail.NewUIDSet(3, 4), false))
	work := must[*store.Mailbox](t)(st.Mailbox(ctx, acct, "Work/2024"))
	if err := st.DeleteMailbox(ctx, acct, work.ID); err != nil {
		t.Fatal(err)
	}

	// Only UID 3 of INBOX.
	pr := must[*backup.PartialResult](t)(backup.RestorePartial(ctx, st, res.Dir, backup.Selection{Account: "ALICE@example.org", Mailbox: "inbox", UIDs: []string{"3"}}))
	if pr.Restored != 1 || pr.Present != 0 {
		t.Fatalf("partial restore of UID 3: %+v", pr)
	}
	// The whole account: UID 4 and the Work mailbox come back, the rest is there.
	pr = must[*backup.PartialResult](t)(backup.RestorePartial(ctx, st, root, backup.Selection{Account: "alice@example.org"}))
	if pr.Restored != 2 || pr.Present != 3 || !slices.Equal(pr.Created, []string{"Work/2024"}) {
		t.Fatalf("partial restore of the account: %+v", pr)
	}
	pr = must[*backup.PartialResult](t)(backup.RestorePartial(ctx, st, root, backup.Selection{Account: "alice@example.org"}))
	if pr.Restored != 0 || pr.Present != 5 {
		t.Fatalf("second partial restore: %+v", pr)
	}
	var uids []mail.UID
	for m, err := range st.Messages(ctx, acct, inbox.ID, mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}, store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, m.UID)
		if !m.Flags.Has(`\Seen`) || !m.Flags.Has("$Important") {
			t.Fatalf("restored message lost its flags: %+v", m)
		}
	}
	if !slices.Equal(uids, []mail.UID{1, 5, 6, 7}) {
		t.Fatalf("INBOX UIDs after the restores: %v (restored mail gets new UIDs)", uids)
	}
	nw := must[*store.Mailbox](t)(st.Mailbox(ctx, acct, "Work/2024"))
	if n := must[*store.Status](t)(st.Status(ctx, acct, nw.ID)).Messages; n != 1 {
		t.Fatalf("Work/2024 has %d messages after the restore, want 1", n)
	}
	bw := must[*store.Mailbox](t)(st.Mailbox(ctx, bob.ID, "Work/2024"))
	if n := must[*store.Status](t)(st.Status(ctx, bob.ID, bw.ID)).Messages; n != 0 {
		t.Fatalf("bob's Work/2024 got %d messages from alice's restore", n)
	}
	// Refusals.
	for _, sel := range []backup.Selection{
		{Account: "nobody@example.org"},
		{Account: "alice@example.org", Mailbox: "Nope"},
		{Account: "alice@example.org", UIDs: []string{"1"}},
		{Account: "alice@example.org", Mailbox: "INBOX", UIDs: []string{"x"}},
		{Account: "alice@example.org", Mailbox: "../../etc"},
	} {
		if _, err := backup.RestorePartial(ctx, st, root, sel); err == nil {
			t.Fatalf("partial restore of %+v succeeded", sel)
		}
	}
}
