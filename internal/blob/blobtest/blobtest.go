// Package blobtest is the conformance suite every blob driver must pass.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/postfach/postfach/internal/blob"
)

// LargeSize is the size of the large body the suite stores: over two
// parts of the s3 driver's smallest part size (5 MiB), so a driver that
// uploads in parts stores one in three parts, the last a short one.
const LargeSize = 12<<20 + 12345

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
	t.Run("Empty", func(t *testing.T) {
		s := newStore(t)
		id := put(t, s, nil)
		r, err := s.Open(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.Size() != 0 {
			t.Fatalf("size %d, want 0", r.Size())
		}
		if n, err := r.ReadAt(make([]byte, 1), 0); n != 0 || err != io.EOF {
			t.Fatalf("ReadAt on empty blob = %d, %v; want 0, EOF", n, err)
		}
	})
	t.Run("Large", func(t *testing.T) {
		s := newStore(t)
		data := largeData()
		sum := sha256.Sum256(data)
		id := hex.EncodeToString(sum[:])
		w, err := s.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Written in pieces of odd sizes, as a message arrives.
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 65536+777)
			if k, err := w.Write(rest[:n]); err != nil || k != n {
				t.Fatalf("write: %d, %v", k, err)
			}
			rest = rest[n:]
		}
		if err := w.Commit(ctx, id); err != nil {
			t.Fatal(err)
		}
		r, err := s.Open(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.Size() != int64(len(data)) {
			t.Fatalf("size %d, want %d", r.Size(), len(data))
		}
		// Sequential reads in small pieces, as a protocol sends a body.
		h := sha256.New()
		if _, err := io.CopyBuffer(h, io.NewSectionReader(r, 0, r.Size()), make([]byte, 32<<10)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(h.Sum(nil), sum[:]) {
			t.Fatal("sequential read differs")
		}
		checkRanges(t, r, data)
	})
	t.Run("ConcurrentReads", func(t *testing.T) {
		s := newStore(t)
		data := largeData()[:3<<20]
		id := put(t, s, data)
		r, err := s.Open(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 1))
				for range 20 {
					off := rng.Int64N(int64(len(data)))
					n := rng.IntN(200<<10) + 1
					buf := make([]byte, n)
					k, err := r.ReadAt(buf, off)
					want := min(int64(n), int64(len(data))-off)
					if int64(k) != want || (err != nil && err != io.EOF) || !bytes.Equal(buf[:k], data[off:off+want]) {
						errs <- fmt.Errorf("ReadAt(%d bytes, %d) = %d, %v", n, off, k, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	t.Run("AbortLargeLeavesNothing", func(t *testing.T) {
		s := newStore(t)
		w, err := s.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		data := largeData()
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1<<20)
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		w.Abort()
		n := 0
		if err := s.Walk(ctx, func(string) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%d blobs after abort", n)
		}
	})
	t.Run("WalkStops", func(t *testing.T) {
		s := newStore(t)
		put(t, s, []byte("a"))
		put(t, s, []byte("b"))
		stop := errors.New("stop")
		n := 0
		if err := s.Walk(ctx, func(string) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
			t.Fatalf("Walk = %v after %d calls; want the callback's error after 1", err, n)
		}
	})
}

// largeData is LargeSize bytes of text-like content that does not repeat
// at any short period, so a read from a wrong offset shows.
func largeData() []byte {
	rng := rand.New(rand.NewPCG(42, 42))
	data := make([]byte, LargeSize)
	for i := range data {
		data[i] = byte('a' + rng.IntN(26))
		if rng.IntN(70) == 0 {
			data[i] = '\n'
		}
	}
	return data
}

// checkRanges reads sections of a stored body, as FETCH BODY[n] and
// partial fetches do: around the part and read-ahead boundaries drivers
// use, backwards, and over the end.
func checkRanges(t *testing.T, r blob.Reader, data []byte) {
	t.Helper()
	size := int64(len(data))
	for _, c := range []struct{ off, n int64 }{
		{0, 1}, {65535, 2}, {65536, 100}, {5<<20 - 3, 6}, {10<<20 - 1, 2},
		{size - 10, 10}, {1 << 20, 3 << 20}, {12345, 1}, {size - 1, 1},
		{7 << 20, 100 << 10}, {100, 65536}, {3 << 20, 200},
	} {
		buf := make([]byte, c.n)
		n, err := r.ReadAt(buf, c.off)
		if int64(n) != c.n || (err != nil && err != io.EOF) || !bytes.Equal(buf, data[c.off:c.off+c.n]) {
			t.Fatalf("ReadAt(%d bytes, %d) = %d, %v, or content differs", c.n, c.off, n, err)
		}
	}
	// Over the end: the bytes there, then io.EOF.
	buf := make([]byte, 100)
	n, err := r.ReadAt(buf, size-40)
	if n != 40 || err != io.EOF || !bytes.Equal(buf[:n], data[size-40:]) {
		t.Fatalf("ReadAt over the end = %d, %v; want 40, EOF", n, err)
	}
	if n, err := r.ReadAt(buf, size); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt at the end = %d, %v; want 0, EOF", n, err)
	}
}
