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
	s       *FileStore
	f       *os.File
	written int64 // bytes written so far
	kicked  int64 // bytes handed to writeback so far (startWriteback)
}

// writebackChunk is how much of a body is written before its writeback to
// the disk is started, so that the data goes to the disk while the rest
// of the message is still arriving and Commit's fsync has little left to
// write.
const writebackChunk = 256 << 10

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	if w.written-w.kicked >= writebackChunk {
		startWriteback(w.f, w.kicked, w.written-w.kicked)
		w.kicked = w.written
	}
	return n, err
}

func (w *fileWriter) Abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}

// Commit makes the blob durable under id: the file's data, its name and
// any directory created for it are on disk when Commit returns.
//
// The file is moved into place first, without replacing a file already
// there, and then the file and the directories are synced at once, so a
// blob costs the time of one fsync rather than of two or three in a row.
// Moving it before its data is synced is safe because nothing refers to
// the name yet: the metadata commit that will comes after Commit, and a
// file left by a crash in between has no row and is removed by the store's
// start-up sweep. Replacing an existing file before syncing would not be:
// it may be a committed blob. So when the name exists (the same content
// stored before, or being stored by someone else now), and on systems
// without an atomic no-replace rename, Commit syncs the file first and
// then renames it over the old one, and syncs the directory.
func (w *fileWriter) Commit(ctx context.Context, id string) error {
	if !ValidID(id) {
		w.Abort()
		return fmt.Errorf("invalid blob id %q", id)
	}
	final := w.s.path(id)
	dir := filepath.Dir(final)
	created, err := w.s.makeDir(dir)
	if err != nil {
		w.Abort()
		return err
	}
	// Every directory whose entries changed: the blob's own, and the
	// parents of directories made for it.
	dirs := append([]string{dir}, created...)
	err = renameNoReplace(w.f.Name(), final)
	if err == nil {
		err = syncAll(w.f, dirs)
		if cerr := w.f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close blob: %w", cerr)
		}
		if err != nil {
			// Left in place: a concurrent writer of the same content may
			// have found it there already. Without a row it goes with
			// the next start-up sweep.
			return err
		}
		w.s.dirSynced(dir)
		return nil
	}
	if !errors.Is(err, fs.ErrExist) && !errors.Is(err, errNoReplaceUnsupported) {
		w.Abort()
		return fmt.Errorf("rename blob: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		w.Abort()
		return fmt.Errorf("sync blob: %w", err)
	}
	if err := w.f.Close(); err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("close blob: %w", err)
	}
	if err := os.Rename(w.f.Name(), final); err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("rename blob: %w", err)
	}
	if err := syncAll(nil, dirs); err != nil {
		return err
	}
	w.s.dirSynced(dir)
	return nil
}

// makeDir creates the fan-out directories of a blob if they are missing
// and returns the directories whose entries must be synced for that (the
// parents of the directories not known to be durable yet). Once synced,
// dirSynced records dir, and makeDir costs nothing for it any more.
func (s *FileStore) makeDir(dir string) ([]string, error) {
	s.mu.Lock()
	ok := s.synced[dir]
	s.mu.Unlock()
	if ok {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create blob directory: %w", err)
	}
	var parents []string
	for d := dir; d != s.dir && strings.HasPrefix(d, s.dir); d = filepath.Dir(d) {
		parents = append(parents, filepath.Dir(d))
	}
	return parents, nil
}

func (s *FileStore) dirSynced(dir string) {
	s.mu.Lock()
	s.synced[dir] = true
	s.mu.Unlock()
}

// syncAll fsyncs f (when not nil) and the directories dirs concurrently,
// and returns once all are done: concurrent syncs on one disk share its
// cache flushes, so this takes about as long as the slowest of them.
func syncAll(f *os.File, dirs []string) error {
	errs := make(chan error, len(dirs))
	for _, d := range dirs {
		go func() { errs <- syncDir(d) }()
	}
	var err error
	if f != nil {
		if serr := f.Sync(); serr != nil {
			err = fmt.Errorf("sync blob: %w", serr)
		}
	}
	for range dirs {
		if derr := <-errs; err == nil {
			err = derr
		}
	}
	return err
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
