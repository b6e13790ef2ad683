package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
)

// refreshAgeSummaries rewrites every stored summary as an older postfach
// wrote it: encoding version 1, and no display names taken from comments.
func refreshAgeSummaries(t *testing.T, dir string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "postfach.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, summary FROM blobs`)
	if err != nil {
		t.Fatal(err)
	}
	old := map[int64][]byte{}
	for rows.Next() {
		var id int64
		var enc []byte
		if err := rows.Scan(&id, &enc); err != nil {
			t.Fatal(err)
		}
		var sum message.Summary
		if err := sum.UnmarshalBinary(enc); err != nil {
			t.Fatal(err)
		}
		env := *sum.Root.Envelope
		env.From = append([]message.Address(nil), env.From...)
		for i := range env.From {
			env.From[i].Name = ""
		}
		sum.Root.Envelope = &env
		enc, _ = sum.MarshalBinary()
		enc[0] = 1
		old[id] = enc
	}
	rows.Close()
	for id, enc := range old {
		if _, err := db.Exec(`UPDATE blobs SET summary = ? WHERE id = ?`, enc, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`DELETE FROM meta WHERE key = 'summary_version'`); err != nil {
		t.Fatal(err)
	}
}

// refreshNames returns the From display names of the INBOX messages.
func refreshNames(t *testing.T, s *sqlite.Store, acct store.AccountID, mb store.MailboxID) []string {
	t.Helper()
	var names []string
	for m, err := range s.Messages(context.Background(), acct, mb, mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}, store.ListOptions{Summary: true}) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, m.Summary.Root.Envelope.From[0].Name)
	}
	return names
}

// refreshMeta returns meta.summary_version of the store in dir ("" if
// unset); the store may be open.
func refreshMeta(t *testing.T, dir string) string {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "postfach.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	err = db.QueryRow(`SELECT value FROM meta WHERE key = 'summary_version'`).Scan(&v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return v
}

// TestRefreshOldSummaries: bodies stored when postfach parsed messages
// differently (an older message.SummaryVersion) are parsed again after
// Open, inline bodies and files alike, so that their ENVELOPE gets what
// the new parser finds; the store then records that none is left. A body
// that cannot be read keeps its summary, and the refresh is tried again
// at the next start.
func TestRefreshOldSummaries(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	a, _ := s.CreateAccount(ctx, "kim@example.net", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	hdr := "From: kim@example.net (Kim Lee)\r\nSubject: s\r\n\r\n"
	var fileHash string
	for _, body := range []string{hdr + "small\r\n", hdr + strings.Repeat("file body line\r\n", 20000)} {
		b, err := s.Stage(ctx, strings.NewReader(body), 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, a.ID, inbox.ID, []store.NewMessage{{Body: b}}); err != nil {
			t.Fatal(err)
		}
		fileHash = b.BlobID()
		b.Discard()
	}
	if got := refreshNames(t, s, a.ID, inbox.ID); strings.Join(got, ",") != "Kim Lee,Kim Lee" {
		t.Fatalf("names when delivered: %q", got)
	}
	if !s.SummariesCurrent() {
		t.Fatal("a new store's summaries are not current")
	}
	s.Close()
	if v := refreshMeta(t, dir); v != "2" {
		t.Fatalf("a new store records summary version %q, want 2", v)
	}

	// Summaries from an older postfach are parsed again in the background.
	refreshAgeSummaries(t, dir)
	s = open(t, dir)
	waitNames := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := strings.Join(refreshNames(t, s, a.ID, inbox.ID), ",")
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("names %q, want %q", got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitNames("Kim Lee,Kim Lee")
	// Then it records that it is done (read beside the open store), and
	// says so to those who keep summaries (store.SummaryRefresher).
	for deadline := time.Now().Add(30 * time.Second); refreshMeta(t, dir) != "2"; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("summary version not recorded after the refresh")
		}
	}
	if !s.SummariesCurrent() {
		t.Fatal("summaries not current after the refresh")
	}
	s.Close()

	// A body file that is gone: the other body is parsed again, this one
	// keeps its old summary, and nothing records the refresh as done.
	refreshAgeSummaries(t, dir)
	if err := os.Remove(filepath.Join(dir, "blobs", fileHash[:2], fileHash[2:4], fileHash)); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	waitNames("Kim Lee,")
	s.Close()
	if v := refreshMeta(t, dir); v != "" {
		t.Fatalf("summary version %q recorded with an old summary left", v)
	}
}
