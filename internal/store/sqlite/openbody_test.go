package sqlite_test

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/store"
)

// openBodyBytes reads a body whole.
func openBodyBytes(t *testing.T, b store.Body) []byte {
	t.Helper()
	out := make([]byte, b.Size())
	if _, err := b.ReadAt(out, 0); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOpenBodyKeepsItsBytes: a body kept in the database is handed out
// as the driver returned it (OpenBody scans it as sql.RawBytes and keeps
// it); it must stay intact while other bodies are read and after it is
// closed, so a driver that reused its buffers would fail here.
func TestOpenBodyKeepsItsBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	a, err := s.CreateAccount(ctx, "a@example.org", "x")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := s.Mailbox(ctx, a.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	raws := []string{
		"Subject: one\r\n\r\n" + strings.Repeat("first body\r\n", 500),
		"Subject: two\r\n\r\n" + strings.Repeat("SECOND BODY\r\n", 700),
		"Subject: three\r\n\r\nshort\r\n",
	}
	var ids []string
	for _, r := range raws {
		ids = append(ids, appendBody(t, s, a.ID, inbox.ID, r))
	}
	first, err := s.OpenBody(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	bb, ok := first.(store.BodyBytes)
	if !ok {
		t.Fatalf("a small body is not held in memory: %T", first)
	}
	held := bb.Bytes()
	first.Close()
	for range 3 {
		for i, id := range ids {
			b, err := s.OpenBody(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got := openBodyBytes(t, b); string(got) != raws[i] {
				t.Fatalf("body %d read back wrong", i)
			}
			b.Close()
		}
	}
	if !bytes.Equal(held, []byte(raws[0])) {
		t.Fatal("a body held in memory changed while others were read")
	}
}

// TestOpenBodyCopiesOnce: opening a body kept in the database allocates
// it once, not a second time for database/sql's copy. Not parallel: it
// reads the process's allocation counter.
func TestOpenBodyCopiesOnce(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	a, err := s.CreateAccount(ctx, "a@example.org", "x")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := s.Mailbox(ctx, a.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	raw := "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuv\r\n", 1400) // ~100 KB
	id := appendBody(t, s, a.ID, inbox.ID, raw)
	openOnce := func() {
		b, err := s.OpenBody(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := b.(store.BodyBytes); !ok {
			t.Fatalf("the body is not held in memory: %T", b)
		}
		b.Close()
	}
	openOnce()
	const n = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		openOnce()
	}
	runtime.ReadMemStats(&after)
	per := float64(after.TotalAlloc-before.TotalAlloc) / n
	if per > 1.5*float64(len(raw)) {
		t.Fatalf("opening a %d-byte body allocates %.0f bytes: copied more than once", len(raw), per)
	}
}
