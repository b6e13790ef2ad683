package abuse

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/backup"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
)

// TestImportHostileTree: an import of a tree built to hurt (a named pipe
// that would block a reader forever, a symbolic link out of the tree and
// one into a loop, folders nested past the limit, a header of megabytes
// on one line, NUL bytes, a message over the size limit, empty Maildir
// files, folder names IMAP refuses) ends, stores what is mail, names
// what it left out, and leaves the store consistent. Rule: nothing of a
// source makes postfach read outside it, hang, or store a bad name.
func TestImportHostileTree(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: t.TempDir(), SweepInterval: -1, ReadConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := st.CreateAccount(ctx, "alice@example.org", "hash")
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	write := func(p, data string) {
		t.Helper()
		p = filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	from := "From a@b Thu Nov 29 18:15:02 2007\n"
	write("good", from+"Subject: good\nMessage-ID: <good@x>\n\nfine\n")
	write("long-header", from+"Subject: "+strings.Repeat("x", 3<<20)+"\n\nbody\n"+from+"Subject: after\n\nstill here\n")
	write("nul", from+"Subject: nul\n\na\x00b\n")
	write("big", from+"Subject: big\n\n"+strings.Repeat("y\n", 2500<<10))
	write("md/cur/empty:2,S", "")
	write("md/cur/ok:2,S", "Subject: maildir\n\nok\n")
	write("md/.a..b/cur/x:2,S", "Subject: bad name\n\nx\n")
	if err := syscall.Mkfifo(filepath.Join(src, "pipe"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(src, "md", "cur", "pipe:2,S"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(src, "etc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(src, filepath.Join(src, "loop")); err != nil {
		t.Fatal(err)
	}
	deep := src
	for range 40 {
		deep = filepath.Join(deep, "d")
	}
	if err := os.MkdirAll(deep, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deep, "deep"), []byte(from+"Subject: deep\n\nx\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := backup.Import(ctx, st, backup.ImportRequest{Account: a.Name, Path: src, Mailbox: "Imported", MaxSize: 4 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	problems := strings.Join(res.Problems, "\n")
	for _, want := range []string{"etc: left out: a symbolic link", "loop: left out: a symbolic link", "nested too deep",
		"message 1 left out: message too big", "message 1 left out: empty message", `folder name "md/a//b"`} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems lack %q:\n%s", want, problems)
		}
	}
	mbs, err := st.Mailboxes(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, mb := range mbs {
		if !strings.HasPrefix(mb.Name, "Imported") && mb.Name != "INBOX" && !slicesContains(store.DefaultMailboxes, mb.Name) {
			t.Errorf("unexpected mailbox %q", mb.Name)
		}
		if strings.Contains(mb.Name, "etc") || strings.Contains(mb.Name, "loop") {
			t.Errorf("mailbox %q from a followed link", mb.Name)
		}
		st2, err := st.Status(ctx, a.ID, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		total += st2.Messages
	}
	// good, the long header's two, nul, the Maildir's ok: five.
	if total != 5 || res.Added != 5 {
		t.Fatalf("stored %d messages (reported %d), want 5; problems:\n%s", total, res.Added, problems)
	}
	probs, err := st.Check(ctx)
	if err != nil || len(probs) > 0 {
		t.Fatalf("check after the import: %v %v", probs, err)
	}
}

func slicesContains(defs []struct {
	Name       string
	SpecialUse string
}, name string) bool {
	for _, d := range defs {
		if d.Name == name {
			return true
		}
	}
	return false
}
