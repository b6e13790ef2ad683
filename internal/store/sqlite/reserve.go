package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/postfach/postfach/internal/store"
)

// The disk reserve (issue 11: on a full disk, STORE \Deleted, EXPUNGE,
// POP3 DELE and `postfach user del` all failed, so nothing could relieve
// it through postfach). A file of ReserveSize bytes is kept in the data
// directory. The first write that fails for want of space deletes it and
// puts the store in low-space mode:
//
//   - writes that add data (Stage, Append, Deliver, Copy, CreateMailbox,
//     CreateAccount, SetMetadata: writeGrow) fail at once with
//     store.ErrDiskFull, so new mail cannot eat the space set free;
//   - every other write (flags, expunge, move, deletions of mailboxes and
//     accounts, POP3 views, settings: write) is retried once after the
//     reserve is released, and goes through on the space it set free.
//
// Low-space mode ends, and the reserve is made again, once the file
// system has twice ReserveSize free (checked at most once a second, when
// a growing write asks): new mail then goes in again.

// reserveName is the reserve file in the data directory.
const reserveName = "postfach.reserve"

// reserveRetry is the least time between two looks at the free space
// while the reserve is released.
const reserveRetry = time.Second

type growingKey struct{}

// errLowSpace is the answer to a growing write while the reserve is
// released.
var errLowSpace error = diskFullError{errors.New("the disk is full: new mail is refused until space is freed (the disk reserve is kept for deletions)")}

// startReserve creates (or resizes) the reserve file at Open. A disk too
// full for it starts the store in low-space mode.
func (s *Store) startReserve(size int64) {
	s.ops.reserveSize = size
	if size <= 0 {
		os.Remove(s.reservePath())
		return
	}
	if err := s.makeReserve(); err != nil {
		s.ops.low.Store(true)
		s.ops.lowSince = time.Now()
		if errors.Is(mapErr(err), store.ErrDiskFull) {
			s.log.Error("the disk is too full for the disk reserve: new mail is refused until space is freed", "reserve", s.reservePath(), "size", size)
		} else {
			s.log.Error("cannot make the disk reserve: new mail is refused until it can be made", "reserve", s.reservePath(), "err", err)
		}
	}
}

func (s *Store) reservePath() string { return filepath.Join(s.dir, reserveName) }

// makeReserve writes the reserve file, ReserveSize bytes really allocated
// on disk, and syncs it.
func (s *Store) makeReserve() error {
	p := s.reservePath()
	if fi, err := os.Stat(p); err == nil && fi.Size() == s.ops.reserveSize && fi.Mode().IsRegular() {
		return nil
	}
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create disk reserve: %w", err)
	}
	err = allocate(f, s.ops.reserveSize)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("create disk reserve: %w", err)
	}
	syncDir(s.dir)
	return nil
}

// diskFull is called after a write failed for want of space: it releases
// the reserve, if it is held, and enters low-space mode. It reports
// whether a write that frees or keeps space should be tried again.
func (s *Store) diskFull() bool {
	if s.ops.reserveSize <= 0 {
		return false
	}
	s.ops.reserveMu.Lock()
	defer s.ops.reserveMu.Unlock()
	if !s.ops.low.Load() {
		s.ops.low.Store(true)
		s.ops.lowSince = time.Now()
		err := os.Remove(s.reservePath())
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Error("disk full, and the disk reserve cannot be released", "reserve", s.reservePath(), "err", err)
			return false
		}
		syncDir(s.dir)
		s.log.Error("disk full: released the disk reserve so that deleting mail works; new mail is refused until space is freed",
			"data_dir", s.dir, "reserve", s.ops.reserveSize)
	}
	return true
}

// spaceForNewData returns errLowSpace while the reserve is released and
// the disk has not got space back; once it has, it makes the reserve
// again and lets new data in.
func (s *Store) spaceForNewData() error {
	if !s.ops.low.Load() {
		return nil
	}
	s.ops.reserveMu.Lock()
	defer s.ops.reserveMu.Unlock()
	if !s.ops.low.Load() {
		return nil
	}
	if time.Since(s.ops.lastLook) < reserveRetry {
		return errLowSpace
	}
	s.ops.lastLook = time.Now()
	free, err := freeSpace(s.dir)
	if err != nil || free < 2*uint64(s.ops.reserveSize) {
		return errLowSpace
	}
	if err := s.makeReserve(); err != nil {
		os.Remove(s.reservePath())
		return errLowSpace
	}
	s.ops.low.Store(false)
	s.log.Info("disk space returned: disk reserve made again, new mail is accepted", "free", free, "low_for", time.Since(s.ops.lowSince).Round(time.Second))
	return nil
}

// growing marks a context as that of a write that adds data.
func growing(ctx context.Context) context.Context { return context.WithValue(ctx, growingKey{}, true) }

func isGrowing(ctx context.Context) bool { v, _ := ctx.Value(growingKey{}).(bool); return v }

// writeGrow is write for writes that add data: refused at once while the
// reserve is released, and never retried on its space.
func (s *Store) writeGrow(ctx context.Context, fn func(w *wtx) error) error {
	if err := s.spaceForNewData(); err != nil {
		return err
	}
	return s.write(growing(ctx), fn)
}

// retryOnFull is called by write with the outcome of a write; it reports
// whether to run the write once more (it failed for want of space, does
// not add data, and the reserve is released now).
func (s *Store) retryOnFull(ctx context.Context, err error) bool {
	if !errors.Is(err, store.ErrDiskFull) {
		return false
	}
	return s.diskFull() && !isGrowing(ctx)
}

// lowSpaceWriter fails a body write once the store is in low-space mode,
// so that a large message staged while the disk filled does not eat the
// space the reserve set free.
type lowSpaceWriter struct {
	s *Store
	w interface{ Write([]byte) (int, error) }
}

func (l lowSpaceWriter) Write(p []byte) (int, error) {
	if l.s.ops.low.Load() {
		return 0, errLowSpace
	}
	return l.w.Write(p)
}

// DiskReserve reports the size of the disk reserve the store holds now
// (0 while it is released or off) and whether new mail is refused for want
// of space.
func (s *Store) DiskReserve() (held int64, low bool) {
	if s.ops.low.Load() || s.ops.reserveSize <= 0 {
		return 0, s.ops.low.Load()
	}
	return s.ops.reserveSize, false
}

// freeSpace returns the bytes an unprivileged process may still write on
// the file system of dir.
func freeSpace(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// writeBlocks writes size bytes that do not compress (a file system that
// compresses would otherwise keep a reserve of zeros in a few blocks).
func writeBlocks(f *os.File, size int64) error {
	buf := make([]byte, 1<<20)
	rng := rand.NewChaCha8([32]byte{'p', 'o', 's', 't', 'f', 'a', 'c', 'h'})
	for done := int64(0); done < size; {
		n := min(int64(len(buf)), size-done)
		rng.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			return err
		}
		done += n
	}
	return nil
}
