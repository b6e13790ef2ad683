//go:build !linux

package blob

import "os"

var errNoReplaceUnsupported = errNoReplace{}

type errNoReplace struct{}

func (errNoReplace) Error() string { return "rename without replacing not supported" }

// renameNoReplace is not available here: Commit syncs before it renames.
func renameNoReplace(oldpath, newpath string) error { return errNoReplaceUnsupported }

// startWriteback does nothing here.
func startWriteback(f *os.File, off, n int64) {}
