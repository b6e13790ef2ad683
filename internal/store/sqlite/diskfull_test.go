package sqlite

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/postfach/postfach/internal/store"
)

// TestDiskFullErrorReadsOnce: a write that fails for want of space matches
// store.ErrDiskFull and says "no space left on device" once.
func TestDiskFullErrorReadsOnce(t *testing.T) {
	err := mapErr(&os.PathError{Op: "write", Path: "/data/blobs/tmp/blob-1", Err: syscall.ENOSPC})
	if !errors.Is(err, store.ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("mapErr(ENOSPC) = %v: not ErrDiskFull", err)
	}
	if n := strings.Count(err.Error(), "no space left on device"); n != 1 {
		t.Fatalf("%q says it %d times", err, n)
	}
}
