package blob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// FileStore keeps each blob in its own file, dir/ab/cd/abcd..., written to
// dir/tmp first and renamed into place after fsync.
type FileStore struct {
	dir string

	mu     sync.Mutex
	synced map[string]bool // fan-out directories known to exist durably; guarded by mu
}

var _ Store = (*FileStore)(nil)

// NewFileStore opens (creating if needed, mode 0700) a file blob store in
// dir. Leftover temporary files of interrupted writes are removed.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("create blob directory: %w", err)
	}
	tmp := filepath.Join(dir, "tmp")
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return nil, fmt.Errorf("read blob tmp directory: %w", err)
	}
	for _, e := range ents {
		os.Remove(filepath.Join(tmp, e.Name()))
	}
	return &FileStore{dir: dir, synced: map[string]bool{}}, nil
}

// OpenFileStore opens an existing file blob store in dir for reading: unlike
// NewFileStore it creates nothing and removes nothing, so it works on a
// read-only directory (postfach check). Create must not be used on it.
func OpenFileStore(dir string) *FileStore {
	return &FileStore{dir: dir, synced: map[string]bool{}}
}

func (s *FileStore) path(id string) string {
	return filepath.Join(s.dir, id[:2], id[2:4], id)
}

// Create implements Store.
func (s *FileStore) Create(ctx context.Context) (Writer, error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "blob-*")
	if err != nil {
		return nil, fmt.Errorf("create temporary blob: %w", err)
	}
	return &fileWriter{s: s, f: f}, nil
}

type fileWriter struct {
	s *FileStore
	f *os.File
}

func (w *fileWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func (w *fileWriter) Abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}

// Commit fsyncs the file, renames it into place and fsyncs the directories
// the rename touched, so the blob survives a crash once Commit returns.
func (w *fileWriter) Commit(ctx context.Context, id string) error {
	if !ValidID(id) {
		w.Abort()
		return fmt.Errorf("invalid blob id %q", id)
	}
	if err := w.f.Sync(); err != nil {
		w.Abort()
		return fmt.Errorf("sync blob: %w", err)
	}
	if err := w.f.Close(); err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("close blob: %w", err)
	}
	final := w.s.path(id)
	if err := w.s.ensureDir(filepath.Dir(final)); err != nil {
		os.Remove(w.f.Name())
		return err
	}
	if err := os.Rename(w.f.Name(), final); err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("rename blob: %w", err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return err
	}
	return nil
}

// ensureDir creates the fan-out directories of a blob and makes their
// creation durable (fsync of each parent) the first time.
func (s *FileStore) ensureDir(dir string) error {
	s.mu.Lock()
	ok := s.synced[dir]
	s.mu.Unlock()
	if ok {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create blob directory: %w", err)
	}
	for d := dir; d != s.dir && strings.HasPrefix(d, s.dir); d = filepath.Dir(d) {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.synced[dir] = true
	s.mu.Unlock()
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

type fileReader struct {
	f    *os.File
	size int64
}

func (r *fileReader) ReadAt(p []byte, off int64) (int, error) { return r.f.ReadAt(p, off) }
func (r *fileReader) Close() error                            { return r.f.Close() }
func (r *fileReader) Size() int64                             { return r.size }

// File returns the open file, for sendfile(2); it stays owned by the
// reader.
func (r *fileReader) File() *os.File { return r.f }

// Open implements Store.
func (s *FileStore) Open(ctx context.Context, id string) (Reader, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("open blob %q: %w", id, ErrNotFound)
	}
	f, err := os.Open(s.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open blob %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat blob: %w", err)
	}
	return &fileReader{f: f, size: st.Size()}, nil
}

// Delete implements Store.
func (s *FileStore) Delete(ctx context.Context, id string) error {
	if !ValidID(id) {
		return fmt.Errorf("invalid blob id %q", id)
	}
	err := os.Remove(s.path(id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob: %w", err)
	}
	return nil
}

// Walk implements Store.
func (s *FileStore) Walk(ctx context.Context, fn func(id string) error) error {
	return filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != s.dir && filepath.Base(path) == "tmp" {
				return filepath.SkipDir
			}
			return ctx.Err()
		}
		if ValidID(d.Name()) {
			return fn(d.Name())
		}
		return nil
	})
}
