package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/blob/blobtest"
)

func TestFileStore(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := blob.NewFileStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestFileStoreCommitPaths: a blob is moved into place without replacing
// a file of the same name (the fast path), and when the name is taken the
// new content replaces the old after it is synced (so storing a body again
// repairs a damaged file). Neither path leaves a temporary file, and the
// fan-out directories made for a blob are there afterwards.
func TestFileStoreCommitPaths(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := blob.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("line of a message body\r\n"), 40000) // ~1 MB: several writeback chunks
	sum := sha256.Sum256(data)
	id := hex.EncodeToString(sum[:])
	path := filepath.Join(dir, id[:2], id[2:4], id)
	put := func() {
		t.Helper()
		w, err := s.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 50000)
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := w.Commit(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: content differs (%d bytes, err %v)", what, len(got), err)
		}
		tmp, err := os.ReadDir(filepath.Join(dir, "tmp"))
		if err != nil || len(tmp) != 0 {
			t.Fatalf("%s: temporary files left: %v %v", what, tmp, err)
		}
	}
	put()
	check("first commit")
	// Damage the stored file (same name, other content), then store the
	// same body again: the good content replaces it.
	if err := os.WriteFile(path, []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	put()
	check("commit over a damaged file")
	put()
	check("commit of a body stored already")
}
