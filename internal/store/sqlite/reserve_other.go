//go:build !linux

package sqlite

import "os"

// allocate gives f size bytes of real disk blocks by writing them.
func allocate(f *os.File, size int64) error { return writeBlocks(f, size) }
