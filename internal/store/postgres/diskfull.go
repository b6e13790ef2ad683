package postgres

import "github.com/postfach/postfach/internal/store"

// diskFullError is a write that failed for want of disk space. It matches
// store.ErrDiskFull with errors.Is but reads as the error it wraps, which
// already says "no space left on device" (prefixing the sentinel made the
// text say it twice).
type diskFullError struct{ err error }

func (e diskFullError) Error() string { return e.err.Error() }

func (e diskFullError) Unwrap() []error { return []error{e.err, store.ErrDiskFull} }
