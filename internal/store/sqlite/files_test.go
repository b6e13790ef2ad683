package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenMakesFilesPrivate: a store whose files an older postfach (or a
// copy) left readable by others is made private when it is opened, the
// write-ahead log and shared memory files included (issue 11, item 10).
func TestOpenMakesFilesPrivate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := s.CreateAccount(ctx, "a@example.org", "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	names := []string{"postfach.db", "postfach.db-wal", "postfach.db-shm", "postfach.lock"}
	for _, name := range names {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); os.IsNotExist(err) {
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s = open(t, dir)
	defer s.Close()
	if _, err := s.Account(ctx, "a@example.org"); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o after open, want 0600", name, fi.Mode().Perm())
		}
	}
}
