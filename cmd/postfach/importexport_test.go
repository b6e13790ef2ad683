package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestImportExport: `postfach import` through the running server brings
// an mbox into a folder that an IMAP client (go-imap's imapclient) sees
// with the flags and dates of the file and without any header added; a
// second run adds nothing; `postfach export` writes a Maildir that
// imports into another account; paths inside the data directory are
// refused.
func TestImportExport(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "")
	cfgText, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(cfgText), `imap = ""`, `imap = "127.0.0.1:0"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(code int, args ...string) result {
		t.Helper()
		r := runBin(t, "pw-alice-1\n", append(args, "--config", cfg)...)
		if r.code != code {
			t.Fatalf("%v: exit %d, want %d; stdout %s; stderr %s", args, r.code, code, r.stdout, r.stderr)
		}
		return r
	}
	srv := startServe(t, cfg)
	defer srv.stop()
	run(0, "user", "add", "alice@example.org", "--password-stdin")
	run(0, "user", "add", "bob@example.org", "--password-stdin")
	src := filepath.Join(t.TempDir(), "old mail.mbox")
	mbox := "From alice@example.org Thu Nov 29 18:15:02 2007\nFrom: alice@example.org\nSubject: one\nMessage-ID: <one@x>\nStatus: RO\nX-Status: A\n\nHello\n>From quoted\n\n" +
		"From bob@example.org Fri Nov 30 18:15:02 2007\nFrom: bob@example.org\nSubject: two\nMessage-ID: <two@x>\n\nBye\n"
	if err := os.WriteFile(src, []byte(mbox), 0o600); err != nil {
		t.Fatal(err)
	}
	out := run(0, "import", "alice@example.org", src, "--mailbox", "Old/2007").stdout
	if !strings.Contains(out, "mailbox Old/2007 created") || !strings.Contains(out, "imported 2 messages") {
		t.Fatalf("import: %s", out)
	}
	if out := run(0, "import", "alice@example.org", src, "--mailbox", "Old/2007").stdout; !strings.Contains(out, "imported 0 messages into alice@example.org (2 already there)") {
		t.Fatalf("a second import: %s", out)
	}
	run(2, "import", "alice@example.org", src, "--mbox-format", "mboxq")
	run(2, "import", "alice@example.org", filepath.Join(filepath.Dir(cfg), "data"))
	run(2, "export", "alice@example.org", filepath.Join(filepath.Dir(cfg), "data", "x"), "--format", "mbox")

	c, err := imapclient.DialInsecure(srv.Addr("imap"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@example.org", "pw-alice-1").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("Old/2007", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	hdr := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{hdr}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || !slices.Contains(msgs[0].Flags, imap.FlagSeen) || !slices.Contains(msgs[0].Flags, imap.FlagAnswered) ||
		slices.Contains(msgs[1].Flags, imap.FlagSeen) || !msgs[0].InternalDate.Equal(time.Date(2007, 11, 29, 18, 15, 2, 0, time.UTC)) {
		t.Fatalf("imported messages: %+v", msgs)
	}
	if h := string(msgs[0].FindBodySection(hdr)); h != "From: alice@example.org\r\nSubject: one\r\nMessage-ID: <one@x>\r\n\r\n" {
		t.Fatalf("imported header %q", h)
	}

	dest := filepath.Join(t.TempDir(), "export")
	if out := run(0, "export", "alice@example.org", dest, "--format", "maildir").stdout; !strings.Contains(out, "exported 2 messages") {
		t.Fatalf("export: %s", out)
	}
	if out := run(0, "import", "bob@example.org", dest).stdout; !strings.Contains(out, "imported 2 messages") || !strings.Contains(out, "-> Old/2007: 2 added") {
		t.Fatalf("import of the export: %s", out)
	}
}
