package sqlite_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/blob/s3"
	"github.com/postfach/postfach/internal/blob/s3/s3test"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
	"github.com/postfach/postfach/internal/store/storetest"
)

// openOnS3 opens a store in dir whose large bodies go to the S3 bucket
// of opt.
func openOnS3(t *testing.T, dir string, opt s3.Options, retention time.Duration) *sqlite.Store {
	t.Helper()
	ctx := context.Background()
	blobs, err := s3.New(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(ctx, sqlite.Options{Dir: dir, SweepInterval: -1, Blobs: blobs, Retention: retention})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformanceOnS3: the store suite with the bodies in S3 (a Body
// that is not a file: the protocols' sendfile paths are not taken).
func TestConformanceOnS3(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	buckets := map[string]s3.Options{} // by data directory; guarded by mu
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Store {
			dir := t.TempDir()
			opt := s3test.Bucket(t)
			mu.Lock()
			buckets[dir] = opt
			mu.Unlock()
			return openOnS3(t, dir, opt, 0)
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			dir := s.(*sqlite.Store).Dir()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			opt := buckets[dir]
			mu.Unlock()
			return openOnS3(t, dir, opt, 0)
		},
	})
}

// TestOrphansOnS3: a delivery that fails after its body went to the
// bucket (staged, then discarded) shows no message, and its object goes
// with the next start's sweep; an expunged message's object goes with
// the sweep after the retention window, and an interrupted upload with
// the sweep after the driver's grace period.
func TestOrphansOnS3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	opt := s3test.Bucket(t)
	s := openOnS3(t, dir, opt, time.Hour)
	a, err := s.CreateAccount(ctx, "a@example.org", "x")
	if err != nil {
		t.Fatal(err)
	}
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	direct, err := s3.New(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	exists := func(raw string) bool {
		t.Helper()
		sum := sha256.Sum256([]byte(raw))
		r, err := direct.Open(ctx, hex.EncodeToString(sum[:]))
		if errors.Is(err, blob.ErrNotFound) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		return true
	}

	failed := "Subject: failed\r\n\r\n" + strings.Repeat("this delivery fails\r\n", 20000)
	b, err := s.Stage(ctx, strings.NewReader(failed), 0)
	if err != nil {
		t.Fatal(err)
	}
	b.Discard() // the delivery failed after the body was stored
	kept := "Subject: kept\r\n\r\n" + strings.Repeat("this one is delivered\r\n", 20000)
	keptID := appendBody(t, s, a.ID, inbox.ID, kept)
	uids, _, err := s.UIDs(ctx, a.ID, inbox.ID)
	if err != nil || uids.Len() != 1 {
		t.Fatalf("mailbox holds %d messages (%v), want 1", uids.Len(), err)
	}
	if !exists(failed) {
		t.Fatal("the failed delivery's body is not in the bucket: the test does not test anything")
	}
	s.Close()
	s = openOnS3(t, dir, opt, time.Hour)
	defer s.Close()
	if exists(failed) {
		t.Fatal("the failed delivery's object survived the start-up sweep")
	}
	body, err := s.OpenBody(ctx, keptID)
	if err != nil {
		t.Fatalf("delivered body gone after the sweep: %v", err)
	}
	got, err := io.ReadAll(io.NewSectionReader(body, 0, body.Size()))
	body.Close()
	if err != nil || string(got) != kept {
		t.Fatalf("delivered body differs after the sweep (%d bytes, %v)", len(got), err)
	}

	if _, err := s.Expunge(ctx, a.ID, inbox.ID, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Sweep(ctx, time.Now().Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !exists(kept) {
		t.Fatal("object removed within the retention window")
	}
	if err := s.Sweep(ctx, time.Now().Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if exists(kept) {
		t.Fatal("object of expired mail not removed by the sweep")
	}

	// An upload interrupted by a crash (neither committed nor aborted)
	// goes with the store's sweep once it is older than the driver's
	// grace period.
	w, err := direct.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(strings.Repeat("x", s3.MinPartSize+1)))
	uploads := func() int {
		n := 0
		for up := range s3test.Client(t).ListIncompleteUploads(ctx, opt.Bucket, "", true) {
			if up.Err != nil {
				t.Fatal(up.Err)
			}
			n++
		}
		return n
	}
	if n := uploads(); n != 1 {
		t.Fatalf("%d unfinished uploads, want 1", n)
	}
	if err := s.Sweep(ctx, time.Now().Add(s3.TempGrace+time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := uploads(); n != 0 {
		t.Fatalf("%d unfinished uploads after the store's sweep, want 0", n)
	}
}
