// Package blobtest is the conformance suite every blob driver must pass.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/postfach/postfach/internal/blob"
)

// Run checks the blob.Store contract on stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	ctx := context.Background()
	put := func(t *testing.T, s blob.Store, data []byte) string {
		t.Helper()
		sum := sha256.Sum256(data)
		id := hex.EncodeToString(sum[:])
		w, err := s.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx, id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	t.Run("PutOpen", func(t *testing.T) {
		s := newStore(t)
		data := bytes.Repeat([]byte("hello blob\r\n"), 10000)
		id := put(t, s, data)
		r, err := s.Open(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.Size() != int64(len(data)) {
			t.Fatalf("size %d, want %d", r.Size(), len(data))
		}
		got, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("content differs (err %v)", err)
		}
		part := make([]byte, 5)
		if _, err := r.ReadAt(part, 12); err != nil || string(part) != "hello" {
			t.Fatalf("ReadAt = %q, %v", part, err)
		}
	})
	t.Run("PutTwice", func(t *testing.T) {
		s := newStore(t)
		id := put(t, s, []byte("same"))
		if id2 := put(t, s, []byte("same")); id2 != id {
			t.Fatal("ids differ")
		}
	})
	t.Run("Missing", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Open(ctx, "0000000000000000000000000000000000000000000000000000000000000000")
		if !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Open missing: %v, want ErrNotFound", err)
		}
		if _, err := s.Open(ctx, "../../etc/passwd"); err == nil {
			t.Fatal("Open accepted a path as id")
		}
	})
	t.Run("AbortLeavesNothing", func(t *testing.T) {
		s := newStore(t)
		w, err := s.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("x"))
		w.Abort()
		n := 0
		s.Walk(ctx, func(string) error { n++; return nil })
		if n != 0 {
			t.Fatalf("%d blobs after abort", n)
		}
	})
	t.Run("DeleteWalk", func(t *testing.T) {
		s := newStore(t)
		a := put(t, s, []byte("a"))
		b := put(t, s, []byte("b"))
		seen := map[string]bool{}
		if err := s.Walk(ctx, func(id string) error { seen[id] = true; return nil }); err != nil {
			t.Fatal(err)
		}
		if !seen[a] || !seen[b] || len(seen) != 2 {
			t.Fatalf("walk saw %v", seen)
		}
		if err := s.Delete(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, a); err != nil {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := s.Open(ctx, a); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("open deleted: %v", err)
		}
	})
	t.Run("BadCommitID", func(t *testing.T) {
		s := newStore(t)
		w, _ := s.Create(ctx)
		w.Write([]byte("x"))
		if err := w.Commit(ctx, "../escape"); err == nil {
			t.Fatal("commit accepted a bad id")
		}
	})
}
