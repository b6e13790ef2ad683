package blob

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// errNoReplaceUnsupported: the file system cannot rename without
// replacing atomically; Commit then takes the slower safe path.
var errNoReplaceUnsupported = errors.New("rename without replacing not supported")

// renameNoReplace renames oldpath to newpath unless newpath exists
// (renameat2(2) with RENAME_NOREPLACE): fs.ErrExist then.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: os.ErrExist}
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP):
		return errNoReplaceUnsupported
	}
	return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
}

// startWriteback starts writing n bytes of f from off to the disk without
// waiting for it (sync_file_range(2) with SYNC_FILE_RANGE_WRITE). It makes
// nothing durable by itself; it only leaves less for the fsync to do. A
// failure is ignored: the fsync reports any real one.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}
