package backup

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback starts writing f's data to the disk without waiting
// (sync_file_range(2) with SYNC_FILE_RANGE_WRITE), so that the fsync
// that makes it durable later finds less to do. Errors are left to that
// fsync.
func startWriteback(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) { _ = unix.SyncFileRange(int(fd), 0, 0, unix.SYNC_FILE_RANGE_WRITE) })
}
