package sqlite_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
	"github.com/postfach/postfach/internal/store/storetest"
)

func open(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Options{Dir: dir, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// appendBody stores raw as a new message in mailbox mb and returns its
// BlobID.
func appendBody(t *testing.T, s *sqlite.Store, acct store.AccountID, mb store.MailboxID, raw string) string {
	t.Helper()
	ctx := context.Background()
	b, err := s.Stage(ctx, strings.NewReader(raw), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Discard()
	res, err := s.Append(ctx, acct, mb, []store.NewMessage{{Body: b}})
	if err != nil {
		t.Fatal(err)
	}
	for m, err := range s.Messages(ctx, acct, mb, mail.NewUIDSet(res.UIDs...), store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		return m.BlobID
	}
	t.Fatal("appended message not found")
	return ""
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Store { return open(t, t.TempDir()) },
		Reopen: func(t *testing.T, s store.Store) store.Store {
			dir := s.(*sqlite.Store).Dir()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, dir)
		},
	})
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	_, err := sqlite.Open(context.Background(), sqlite.Options{Dir: dir})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "postfach.db"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("database mode %v, %v", fi.Mode(), err)
	}
}

func TestCreatesDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "data")
	s := open(t, dir)
	defer s.Close()
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v, %v", fi.Mode(), err)
	}
}

// TestGroupCommit checks that concurrent writers share commits.
func TestGroupCommit(t *testing.T) {
	var mu sync.Mutex
	commits, reqs := 0, 0
	s, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir(), SweepInterval: -1,
		OnCommit: func(d time.Duration, batch int, err error) {
			mu.Lock()
			commits++
			reqs += batch
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	a, err := s.CreateAccount(ctx, "a@example.org", "x")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	commits, reqs = 0, 0
	mu.Unlock()
	const n = 400
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := s.Stage(ctx, strings.NewReader(storetest.Msg(fmt.Sprint(i), "x")), 0)
			if err != nil {
				t.Error(err)
				return
			}
			defer b.Discard()
			if res, err := s.Deliver(ctx, b, []store.DeliveryTarget{{Account: a.ID}}); err != nil || res[0].Err != nil {
				t.Error(err, res[0].Err)
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if reqs != n {
		t.Fatalf("%d requests committed, want %d", reqs, n)
	}
	if commits >= n {
		t.Fatalf("%d commits for %d concurrent deliveries: no group commit", commits, n)
	}
	t.Logf("%d deliveries in %d commits", n, commits)
}

// TestSweep checks retention: expunged mail stays until the window has
// passed, then tombstones and unreferenced bodies go and QRESYNC learns the
// floor.
func TestSweep(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, sqlite.Options{Dir: dir, SweepInterval: -1, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, _ := s.CreateAccount(ctx, "a@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	big := "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 20000)
	var ids, hashes []string
	for _, raw := range []string{storetest.Msg("small", "x"), big} {
		ids = append(ids, appendBody(t, s, a.ID, inbox.ID, raw))
		hashes = append(hashes, fmt.Sprintf("%x", sha256.Sum256([]byte(raw))))
	}
	if _, err := s.Expunge(ctx, a.ID, inbox.ID, nil, false); err != nil {
		t.Fatal(err)
	}
	// Within the window: still recoverable.
	if err := s.Sweep(ctx, time.Now().Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if b, err := s.OpenBody(ctx, id); err != nil {
			t.Fatalf("body swept within retention: %v", err)
		} else {
			b.Close()
		}
	}
	cs, _ := s.Changes(ctx, a.ID, inbox.ID, 1)
	if !cs.VanishedComplete || cs.Vanished.Len() != 2 {
		t.Fatalf("before expiry: %+v", cs)
	}
	// After the window (and the body grace period).
	if err := s.Sweep(ctx, time.Now().Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := s.OpenBody(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("body not swept: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", hashes[1][:2], hashes[1][2:4], hashes[1])); !os.IsNotExist(err) {
		t.Fatalf("body file still there: %v", err)
	}
	cs, _ = s.Changes(ctx, a.ID, inbox.ID, 1)
	if cs.VanishedComplete {
		t.Fatal("QRESYNC from before the pruned tombstones claims to be complete")
	}
	cs, _ = s.Changes(ctx, a.ID, inbox.ID, cs.HighestModSeq)
	if !cs.VanishedComplete {
		t.Fatal("QRESYNC from now is incomplete")
	}
	if probs, err := s.Check(ctx); err != nil || len(probs) > 0 {
		t.Fatalf("check: %v %v", probs, err)
	}
}

// TestStartupSweep: a body file left by a crash between its fsync and the
// metadata commit is removed at the next start.
func TestStartupSweep(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	big := "Subject: orphan\r\n\r\n" + strings.Repeat("x", 200<<10)
	b, err := s.Stage(ctx, strings.NewReader(big), 0)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "blobs", b.BlobID()[:2], b.BlobID()[2:4], b.BlobID())
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("staged body not on disk: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "blobs", "tmp", "blob-123"), []byte("partial"), 0o600)
	s.Close()
	s = open(t, dir)
	defer s.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("orphan body survived restart: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "tmp", "blob-123")); !os.IsNotExist(err) {
		t.Fatal("temporary file survived restart")
	}
}

// TestCheckFindsCorruption damages the store behind its back and expects
// Check to say so.
func TestCheckFindsCorruption(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	a, _ := s.CreateAccount(ctx, "a@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	big := "Subject: big\r\n\r\n" + strings.Repeat("y", 200<<10)
	b, _ := s.Stage(ctx, strings.NewReader(big), 0)
	if _, err := s.Append(ctx, a.ID, inbox.ID, []store.NewMessage{{Body: b}}); err != nil {
		t.Fatal(err)
	}
	b.Discard()
	if probs, err := s.Check(ctx); err != nil || len(probs) != 0 {
		t.Fatalf("clean store: %v %v", probs, err)
	}
	path := filepath.Join(dir, "blobs", b.BlobID()[:2], b.BlobID()[2:4], b.BlobID())
	if err := os.WriteFile(path, []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	probs, err := s.Check(ctx)
	if err != nil || len(probs) == 0 {
		t.Fatalf("tampered body not found: %v", err)
	}
	os.Remove(path)
	probs, _ = s.Check(ctx)
	if len(probs) == 0 || !strings.Contains(probs[0].What, "missing") || probs[0].UID == 0 || probs[0].MailboxName != "INBOX" {
		t.Fatalf("missing body: %+v", probs)
	}
	s.Close()
}

func BenchmarkDeliverParallel(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, sqlite.Options{Dir: b.TempDir(), SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	a, _ := s.CreateAccount(ctx, "a@example.org", "x")
	raw := storetest.Msg("bench", strings.Repeat("Lorem ipsum dolor sit amet. ", 70))
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			st, err := s.Stage(ctx, strings.NewReader(raw+fmt.Sprint(i)), 0)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := s.Deliver(ctx, st, []store.DeliveryTarget{{Account: a.ID}}); err != nil {
				b.Error(err)
			}
			st.Discard()
		}
	})
}

func BenchmarkSelectFlags100k(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, sqlite.Options{Dir: b.TempDir(), SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	a, _ := s.CreateAccount(ctx, "a@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	for i := 0; i < 100; i++ {
		msgs := make([]store.NewMessage, 1000)
		for j := range msgs {
			st, err := s.Stage(ctx, strings.NewReader(storetest.Msg(fmt.Sprint(i*1000+j), "x")), 0)
			if err != nil {
				b.Fatal(err)
			}
			msgs[j] = store.NewMessage{Body: st}
		}
		if _, err := s.Append(ctx, a.ID, inbox.ID, msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		uids, _, err := s.UIDs(ctx, a.ID, inbox.ID)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, err := range s.Messages(ctx, a.ID, inbox.ID, uids, store.ListOptions{}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 100000 {
			b.Fatalf("%d messages", n)
		}
	}
}

// TestMigrateBlobColumns: migration 3 rebuilds a blobs table of the
// earlier layout (the inline body before the summary) with the body last,
// keeping every row, its id and the AUTOINCREMENT counter.
func TestMigrateBlobColumns(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	a, _ := s.CreateAccount(ctx, "a@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	bodies := []string{
		storetest.Msg("small", "hello"),
		storetest.Msg("inline", strings.Repeat("inline body line\r\n", 2000)),
		storetest.Msg("file", strings.Repeat("file body line\r\n", 20000)),
	}
	for _, body := range bodies {
		b, err := s.Stage(ctx, strings.NewReader(body), 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, a.ID, inbox.ID, []store.NewMessage{{Body: b}}); err != nil {
			t.Fatal(err)
		}
		b.Discard()
	}
	s.Close()

	// Put the table back into the layout of schema version 2, with a
	// counter above the highest id.
	db, err := sql.Open("sqlite", filepath.Join(dir, "postfach.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE blobs_old (id INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT NOT NULL, size INTEGER NOT NULL,
			data BLOB, summary BLOB NOT NULL, created INTEGER NOT NULL)`,
		`INSERT INTO blobs_old (id, hash, size, data, summary, created) SELECT id, hash, size, data, summary, created FROM blobs`,
		`DROP TABLE blobs`,
		`ALTER TABLE blobs_old RENAME TO blobs`,
		`CREATE UNIQUE INDEX blobs_file ON blobs (hash) WHERE data IS NULL`,
		`UPDATE sqlite_sequence SET seq = 40 WHERE name = 'blobs'`,
		`UPDATE meta SET value = '2' WHERE key = 'schema_version'`,
		// Undo what the migrations after version 4 add, so that they
		// run again: the quota counters.
		`ALTER TABLE accounts DROP COLUMN used_bytes`,
		`ALTER TABLE accounts DROP COLUMN used_messages`,
		`ALTER TABLE accounts DROP COLUMN quota_bytes`,
		`ALTER TABLE accounts DROP COLUMN quota_messages`,
		`ALTER TABLE mailboxes DROP COLUMN deleted_size`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s = open(t, dir)
	defer s.Close()
	var got []string
	for m, err := range s.Messages(ctx, a.ID, inbox.ID, mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}, store.ListOptions{Summary: true}) {
		if err != nil {
			t.Fatal(err)
		}
		body, err := s.OpenBody(ctx, m.BlobID)
		if err != nil {
			t.Fatal(err)
		}
		raw := make([]byte, body.Size())
		if _, err := body.ReadAt(raw, 0); err != nil {
			t.Fatal(err)
		}
		body.Close()
		if string(raw) != bodies[len(got)] {
			t.Errorf("message %d: body changed", m.UID)
		}
		got = append(got, m.Summary.Root.Envelope.Subject)
	}
	if strings.Join(got, ",") != "small,inline,file" {
		t.Fatalf("subjects after the migration: %q", got)
	}
	if probs, err := s.Check(ctx); err != nil || len(probs) != 0 {
		t.Fatalf("check after the migration: %+v %v", probs, err)
	}
	db, err = sql.Open("sqlite", filepath.Join(dir, "postfach.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var seq int
	var cols string
	if err := db.QueryRow(`SELECT seq FROM sqlite_sequence WHERE name = 'blobs'`).Scan(&seq); err != nil || seq != 40 {
		t.Errorf("blobs counter %d (%v), want 40", seq, err)
	}
	// Version 4 adds dots after data.
	const want = "id,hash,size,summary,created,data,dots"
	if err := db.QueryRow(`SELECT group_concat(name, ',' ORDER BY cid) FROM pragma_table_info('blobs')`).Scan(&cols); err != nil || cols != want {
		t.Errorf("columns %q (%v), want %s", cols, err, want)
	}
}

// TestBodyFileDotLines: a body kept in a file is opened as a
// store.BodyFile with its dot lines; a body with more than
// store.MaxDotLines of them, or one recorded before schema version 4 (dots
// NULL), is opened without, so that callers scan it.
func TestBodyFileDotLines(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	a, err := s.CreateAccount(ctx, "a@example.org", "h")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := s.Mailbox(ctx, a.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	filler := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 3000)
	bodies := map[string]string{
		"few":  ".starts with a dot\r\nSubject: few\r\n\r\n" + filler + ".\r\n..\r\n" + filler + ".end without a line feed",
		"none": "Subject: none\r\n\r\n" + filler,
		"many": "Subject: many\r\n\r\n" + strings.Repeat(".x\r\n", store.MaxDotLines+1) + filler,
	}
	ids := map[string]string{}
	for name, raw := range bodies {
		ids[name] = appendBody(t, s, a.ID, inbox.ID, raw)
	}
	dotLines := func(name string) ([]int64, bool, bool) {
		t.Helper()
		body, err := s.OpenBody(ctx, ids[name])
		if err != nil {
			t.Fatal(err)
		}
		defer body.Close()
		bf, ok := body.(store.BodyFile)
		if !ok {
			return nil, false, false
		}
		return bf.DotLines()
	}
	few := bodies["few"]
	second := int64(strings.Index(few, "\r\n.\r\n") + 2)
	if offs, lf, ok := dotLines("few"); !ok || lf || !slices.Equal(offs, []int64{0, second, second + 3, int64(strings.LastIndex(few, ".end"))}) {
		t.Errorf("few: DotLines = %v, %v, %v", offs, lf, ok)
	}
	if offs, lf, ok := dotLines("none"); !ok || !lf || len(offs) != 0 {
		t.Errorf("none: DotLines = %v, %v, %v", offs, lf, ok)
	}
	if _, _, ok := dotLines("many"); ok {
		t.Error("many: dot lines reported as known")
	}

	// A row from before schema version 4.
	s.Close()
	db, err := sql.Open("sqlite", filepath.Join(dir, "postfach.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE blobs SET dots = NULL`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = open(t, dir)
	if _, _, ok := dotLines("few"); ok {
		t.Error("a body without a dot-line record reported as known")
	}
	// The same body delivered again fills the record in.
	appendBody(t, s, a.ID, inbox.ID, few)
	if _, _, ok := dotLines("few"); !ok {
		t.Error("the record of a body delivered again was not filled in")
	}

	// A damaged record: the body is opened without it, and check
	// reports it.
	s.Close()
	db, err = sql.Open("sqlite", filepath.Join(dir, "postfach.db"))
	if err != nil {
		t.Fatal(err)
	}
	for name, rec := range map[string]string{"none": "0003", "few": "05"} {
		if _, err := db.Exec(`UPDATE blobs SET dots = unhex(?) WHERE id = ?`, rec, ids[name]); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s = open(t, dir)
	defer s.Close()
	if _, _, ok := dotLines("few"); ok {
		t.Error("a record that does not decode was used")
	}
	// One problem for each message that uses one of the two bodies.
	probs, err := s.Check(ctx)
	seen := map[string]bool{}
	for _, p := range probs {
		if !strings.Contains(p.What, "wrong record") || p.UID == 0 {
			t.Errorf("problem %+v", p)
		}
		seen[p.What] = true
	}
	if err != nil || len(seen) != 2 {
		t.Errorf("check = %+v, %v; want the wrong records of two bodies", probs, err)
	}
}
