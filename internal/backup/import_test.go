package backup_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/backup"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// mailboxState is what a mailbox holds, for comparing: per Message-ID
// (the subject when none), the flags and the internal date.
func mailboxState(t *testing.T, st store.Store, acct store.AccountID) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, mb := range must[[]store.Mailbox](t)(st.Mailboxes(ctx, acct)) {
		if mb.NoSelect {
			continue
		}
		msgs := map[string]string{}
		for m, err := range st.Messages(ctx, acct, mb.ID, mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}, store.ListOptions{Summary: true}) {
			if err != nil {
				t.Fatal(err)
			}
			env := m.Summary.Root.Envelope
			key := env.MessageID + "|" + env.Subject
			if _, dup := msgs[key]; dup {
				t.Fatalf("mailbox %s holds %q twice", mb.Name, key)
			}
			msgs[key] = fmt.Sprintf("%v %d", m.Flags, m.InternalDate.Unix())
		}
		out[mb.Name] = msgs
	}
	return out
}

func importAll(t *testing.T, st store.Store, req backup.ImportRequest) *backup.ImportResult {
	t.Helper()
	res, err := backup.Import(ctx, st, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestImportTrees imports an mbox with malformed From_ lines, a
// Maildir++ tree with odd file names and Dovecot keywords, and a
// Thunderbird profile folder; every message lands in its folder with its
// flags and date, bookkeeping headers are gone, and a second run adds
// nothing.
func TestImportTrees(t *testing.T) {
	t.Parallel()
	st := openStore(t, t.TempDir())
	a := must[*store.Account](t)(st.CreateAccount(ctx, "alice@example.org", "hash"))
	src := t.TempDir()

	// An mbox file (mboxrd) with a body line "From here..." left
	// unquoted after a blank line, a quoted one, Thunderbird's "From - "
	// line, and a message Thunderbird deleted without compacting.
	mbox := "From alice@example.org Thu Nov 29 18:15:02 2007\n" +
		"From: alice@example.org\nSubject: first\nMessage-ID: <first@x>\nStatus: RO\nX-Status: F\nX-Keywords: $Work\n\n" +
		"Hello.\n\nFrom here on, an unquoted line.\n>From a quoted one.\n\n" +
		"From - Fri Nov 30 10:00:00 2007\n" +
		"From: bob@example.org\nSubject: second\nMessage-ID: <second@x>\nX-Mozilla-Status: 0003\n\nBye.\n\n" +
		"From - Fri Nov 30 11:00:00 2007\n" +
		"Subject: deleted in Thunderbird\nX-Mozilla-Status: 0009\n\ngone\n\n" +
		"From nobody Sat Dec  1 12:00:00 2007\n" +
		"Subject: no message-id\n\nbody\n"
	writeFile(t, filepath.Join(src, "old.mbox"), mbox)
	res := importAll(t, st, backup.ImportRequest{Account: a.Name, Path: filepath.Join(src, "old.mbox"), Mailbox: "Old"})
	if res.Added != 3 || len(res.Problems) != 0 || !slices.Equal(res.Created, []string{"Old"}) {
		t.Fatalf("mbox import: %+v", res)
	}
	old := mailboxState(t, st, a.ID)["Old"]
	if old["<first@x>|first"] != fmt.Sprintf("%v %d", mail.NewFlags(mail.FlagSeen, mail.FlagFlagged, "$Work"), time.Date(2007, 11, 29, 18, 15, 2, 0, time.UTC).Unix()) ||
		old["<second@x>|second"] != fmt.Sprintf("%v %d", mail.NewFlags(mail.FlagSeen, mail.FlagAnswered), time.Date(2007, 11, 30, 10, 0, 0, 0, time.UTC).Unix()) ||
		len(old) != 3 {
		t.Fatalf("Old holds %v", old)
	}
	mb := must[*store.Mailbox](t)(st.Mailbox(ctx, a.ID, "Old"))
	for m, err := range st.Messages(ctx, a.ID, mb.ID, mail.NewUIDSet(1), store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		b := must[store.Body](t)(st.OpenBody(ctx, m.BlobID))
		data := make([]byte, b.Size())
		b.ReadAt(data, 0)
		b.Close()
		want := "From: alice@example.org\r\nSubject: first\r\nMessage-ID: <first@x>\r\n\r\nHello.\r\n\r\nFrom here on, an unquoted line.\r\nFrom a quoted one.\r\n"
		if string(data) != want {
			t.Fatalf("stored message %q, want %q", data, want)
		}
	}

	// A Maildir++ tree: INBOX, ".Work", ".Work.&AOQ-rger" (modified
	// UTF-7), odd file names, new/ unseen, Dovecot keywords.
	md := filepath.Join(src, "Maildir")
	one := func(id, subj string) string {
		return "From: carol@example.org\nSubject: " + subj + "\nMessage-ID: <" + id + ">\n\nbody of " + subj + "\n"
	}
	writeFile(t, filepath.Join(md, "cur", "1700000000.M1P1.host,S=99:2,FS"), one("m1@x", "seen flagged"))
	writeFile(t, filepath.Join(md, "cur", "name with spaces and ü;2,Sa"), one("m2@x", "odd name"))
	writeFile(t, filepath.Join(md, "new", "1700000002.M3P3.host"), one("m3@x", "new one"))
	writeFile(t, filepath.Join(md, "cur", ".hidden"), one("hidden@x", "hidden"))
	writeFile(t, filepath.Join(md, "tmp", "1700000009.M9.host"), one("tmp@x", "being written"))
	writeFile(t, filepath.Join(md, "dovecot-keywords"), "0 $Important\n1 Later\n")
	writeFile(t, filepath.Join(md, ".Work", "cur", "1700000003.M4P4.host:2,RS"), one("m4@x", "work"))
	writeFile(t, filepath.Join(md, ".Work", "maildirfolder"), "")
	writeFile(t, filepath.Join(md, ".Work.&AOQ-rger", "cur", "1700000004.M5P5.host:2,"), one("m5@x", "umlaut"))
	os.MkdirAll(filepath.Join(md, ".Work.&AOQ-rger", "new"), 0o700)
	os.Chtimes(filepath.Join(md, "cur", "1700000000.M1P1.host,S=99:2,FS"), time.Unix(1700000000, 0), time.Unix(1700000000, 0))
	res = importAll(t, st, backup.ImportRequest{Account: a.Name, Path: md})
	if res.Added != 5 || len(res.Problems) != 0 {
		t.Fatalf("Maildir import: %+v", res)
	}
	state := mailboxState(t, st, a.ID)
	if state["INBOX"]["<m1@x>|seen flagged"] != fmt.Sprintf("%v 1700000000", mail.NewFlags(mail.FlagSeen, mail.FlagFlagged)) ||
		!strings.HasPrefix(state["INBOX"]["<m2@x>|odd name"], fmt.Sprint(mail.NewFlags(mail.FlagSeen, "$Important"))) ||
		!strings.HasPrefix(state["INBOX"]["<m3@x>|new one"], "[] ") || len(state["INBOX"]) != 3 ||
		!strings.HasPrefix(state["Work"]["<m4@x>|work"], fmt.Sprint(mail.NewFlags(mail.FlagSeen, mail.FlagAnswered))) ||
		len(state["Work/ärger"]) != 1 {
		t.Fatalf("after the Maildir import: %v", state)
	}

	// A Thunderbird folder: mbox files with .msf summaries, children in
	// .sbd directories, an empty folder, a file that is not mail.
	tb := filepath.Join(src, "Local Folders")
	writeFile(t, filepath.Join(tb, "Inbox"), "From - Mon Dec  7 10:00:00 2026\nSubject: tb inbox\nMessage-ID: <tb1@x>\nX-Mozilla-Status: 0001\n\nx\n")
	writeFile(t, filepath.Join(tb, "Inbox.msf"), "// <!-- <mdb:mork:z v=\"1.4\"/> -->\n")
	writeFile(t, filepath.Join(tb, "Archives"), "")
	writeFile(t, filepath.Join(tb, "Archives.msf"), "mork")
	writeFile(t, filepath.Join(tb, "Archives.sbd", "2023"), "From - Mon Dec  7 10:00:00 2026\nSubject: tb 2023\nMessage-ID: <tb2@x>\n\ny\n")
	writeFile(t, filepath.Join(tb, "Archives.sbd", "2023.msf"), "mork")
	writeFile(t, filepath.Join(tb, "msgFilterRules.dat"), "version=\"9\"\n")
	writeFile(t, filepath.Join(tb, "notes.txt"), "not mail\n")
	res, err := backup.Import(ctx, st, backup.ImportRequest{Account: a.Name, Path: tb, Mailbox: "Thunderbird"}, nil)
	if err != nil || res.Added != 2 || len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "notes.txt") {
		t.Fatalf("Thunderbird import: %+v, %v", res, err)
	}
	state = mailboxState(t, st, a.ID)
	if len(state["Thunderbird/Inbox"]) != 1 || len(state["Thunderbird/Archives/2023"]) != 1 {
		t.Fatalf("after the Thunderbird import: %v", state)
	}
	if _, ok := state["Thunderbird/Archives"]; !ok {
		t.Fatal("the empty Thunderbird folder was not made")
	}

	// Everything again: nothing is added.
	before := mailboxState(t, st, a.ID)
	for _, req := range []backup.ImportRequest{
		{Account: a.Name, Path: filepath.Join(src, "old.mbox"), Mailbox: "Old"},
		{Account: a.Name, Path: md},
		{Account: a.Name, Path: tb, Mailbox: "Thunderbird"},
	} {
		res, _ := backup.Import(ctx, st, req, nil)
		if res.Added != 0 || res.Present == 0 {
			t.Fatalf("a second import of %s: %+v", req.Path, res)
		}
	}
	if after := mailboxState(t, st, a.ID); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a second import changed the account:\n%v\n%v", before, after)
	}
	// A folder name that IMAP would refuse is left out and named.
	writeFile(t, filepath.Join(src, "bad", ".a..b", "cur", "1.x:2,S"), one("bad@x", "bad"))
	os.MkdirAll(filepath.Join(src, "bad", "cur"), 0o700)
	res = importAll(t, st, backup.ImportRequest{Account: a.Name, Path: filepath.Join(src, "bad")})
	if res.Added != 0 || len(res.Problems) != 1 {
		t.Fatalf("a bad folder name: %+v", res)
	}
}

// TestExportImportRoundTrip exports an account as mbox and as Maildir and
// imports each into a fresh account: the same folders, messages, flags,
// keywords and internal dates; importing the export into the account it
// came from adds nothing.
func TestExportImportRoundTrip(t *testing.T) {
	t.Parallel()
	st := openStore(t, t.TempDir())
	a := must[*store.Account](t)(st.CreateAccount(ctx, "alice@example.org", "hash"))
	inbox := must[*store.Mailbox](t)(st.Mailbox(ctx, a.ID, "INBOX"))
	appendMsg(t, st, a.ID, inbox.ID, msg("plain", "hello"), mail.FlagSeen)
	appendMsg(t, st, a.ID, inbox.ID, msg("fromlines", "From the start\r\n>From quoted\r\n\r\nFrom x Thu Nov 29 18:15:02 2007\r\n\r\n"), "$Work", mail.FlagFlagged)
	appendMsg(t, st, a.ID, inbox.ID, msg("draft", "d"), mail.FlagDraft, mail.FlagDeleted, mail.FlagAnswered)
	for _, name := range []string{"Work/2024", ".hidden", "50% off", "a.b/c", "ärger", "INBOX/child"} {
		mb := must[*store.Mailbox](t)(st.CreateMailboxWith(ctx, a.ID, name, store.CreateOptions{Parents: true}))
		appendMsg(t, st, a.ID, mb.ID, msg("in "+strings.NewReplacer("/", "-", " ", "-", "%", "pct").Replace(name), "x"), mail.FlagSeen, "Later")
	}
	must[*store.Mailbox](t)(st.CreateMailbox(ctx, a.ID, "Empty", nil))
	want := mailboxState(t, st, a.ID)
	for _, format := range []string{"mbox", "maildir"} {
		t.Run(format, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "export")
			res, err := backup.Export(ctx, st, backup.ExportRequest{Account: a.Name, Dest: dest, Format: format})
			if err != nil || res.Messages != 9 || len(res.Problems) != 0 {
				t.Fatalf("export: %+v, %v", res, err)
			}
			filepath.Walk(dest, func(p string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().Perm()&0o077 != 0 {
					t.Errorf("%s has mode %v", p, fi.Mode())
				}
				return nil
			})
			if _, err := backup.Export(ctx, st, backup.ExportRequest{Account: a.Name, Dest: dest, Format: format}); err == nil {
				t.Fatal("an export into a directory that is not empty succeeded")
			}
			b := must[*store.Account](t)(st.CreateAccount(ctx, "b-"+format+"@example.org", "hash"))
			imp := importAll(t, st, backup.ImportRequest{Account: b.Name, Path: dest})
			if imp.Added != 9 || len(imp.Problems) != 0 {
				t.Fatalf("import of the export: %+v", imp)
			}
			got := mailboxState(t, st, b.ID)
			for name, msgs := range want {
				if fmt.Sprint(got[name]) != fmt.Sprint(msgs) {
					t.Errorf("mailbox %q: %v, want %v", name, got[name], msgs)
				}
			}
			// Back into the account it came from: nothing new.
			if again := importAll(t, st, backup.ImportRequest{Account: a.Name, Path: dest}); again.Added != 0 {
				t.Fatalf("importing the export into its own account added %d", again.Added)
			}
		})
	}
}
