package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
)

// fullBlobs is a blob store whose writes fail with ENOSPC while full is
// set: the first write of a body file on a full disk.
type fullBlobs struct {
	blob.Store
	full *atomic.Bool
}

func (f fullBlobs) Create(ctx context.Context) (blob.Writer, error) {
	w, err := f.Store.Create(ctx)
	if err != nil {
		return nil, err
	}
	return fullWriter{w, f.full}, nil
}

type fullWriter struct {
	blob.Writer
	full *atomic.Bool
}

func (w fullWriter) Write(p []byte) (int, error) {
	if w.full.Load() {
		return 0, &os.PathError{Op: "write", Path: "blob", Err: syscall.ENOSPC}
	}
	return w.Writer.Write(p)
}

// TestDiskReserveReleasedWhenFull: the store's side of the disk reserve
// (the real full disk is internal/abuse's TestFullDiskDeletingWorks).
// When a write fails for want of space, the reserve file goes and writes
// that delete still work; new data makes it again once there is room.
func TestDiskReserveReleasedWhenFull(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs, err := blob.NewFileStore(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	var full atomic.Bool
	s, err := sqlite.Open(ctx, sqlite.Options{Dir: dir, SweepInterval: -1, Blobs: fullBlobs{fs, &full},
		OpsOptions: sqlite.OpsOptions{ReserveSize: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reserve := filepath.Join(dir, "postfach.reserve")
	if fi, err := os.Stat(reserve); err != nil || fi.Size() != 1<<20 {
		t.Fatalf("reserve: %v %v", fi, err)
	}
	a, _ := s.CreateAccount(ctx, "a@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	appendBody(t, s, a.ID, inbox.ID, "Subject: small\r\n\r\nhello\r\n")

	full.Store(true)
	big := "Subject: big\r\n\r\n" + strings.Repeat("y", 200<<10)
	if _, err := s.Stage(ctx, strings.NewReader(big), 0); !errors.Is(err, store.ErrDiskFull) {
		t.Fatalf("stage on a full disk: %v", err)
	}
	if _, err := os.Stat(reserve); !os.IsNotExist(err) {
		t.Fatalf("the reserve was not released: %v", err)
	}
	if held, low := s.DiskReserve(); held != 0 || !low {
		t.Fatalf("DiskReserve() = %d, %v; want 0, true", held, low)
	}
	full.Store(false)
	// Deleting works.
	if _, err := s.StoreFlags(ctx, a.ID, inbox.ID, store.StoreFlagsRequest{UIDs: mail.NewUIDSet(1), Op: store.FlagsAdd, Flags: mail.Flags{mail.FlagDeleted}}); err != nil {
		t.Fatalf("store flags: %v", err)
	}
	if _, err := s.Expunge(ctx, a.ID, inbox.ID, nil, true); err != nil {
		t.Fatalf("expunge: %v", err)
	}
	// This file system has room (the real full disk is the abuse test's):
	// the next new data makes the reserve again and goes in.
	appendBody(t, s, a.ID, inbox.ID, big)
	if fi, err := os.Stat(reserve); err != nil || fi.Size() != 1<<20 {
		t.Fatalf("the reserve was not made again: %v %v", fi, err)
	}
	if held, low := s.DiskReserve(); held != 1<<20 || low {
		t.Fatalf("DiskReserve() = %d, %v; want the reserve back", held, low)
	}
	if err := s.DeleteAccount(ctx, a.ID); err != nil {
		t.Fatalf("delete account: %v", err)
	}
}
