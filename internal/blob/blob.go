// Package blob stores immutable message bodies named by their hex SHA-256.
// The file driver keeps one file per blob under a directory; an
// S3-compatible driver follows the same contract. Drivers are checked by the
// conformance suite in blobtest.
//
// A blob is written once through a Writer and made durable and visible by
// Commit: after Commit returns, the blob survives a crash. Writing a blob
// that already exists is allowed and leaves identical content.
package blob

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned (wrapped) by Open and Stat for a missing blob.
var ErrNotFound = errors.New("blob not found")

// ErrUnavailable is returned (wrapped) by a Reader's ReadAt when the
// storage could not be reached or kept failing (a remote driver, after
// its retries): it says nothing about the blob's content, which a
// checker must not report as damaged.
var ErrUnavailable = errors.New("blob storage unavailable")

// Reader reads one blob.
type Reader interface {
	io.ReaderAt
	io.Closer
	// Size is the blob's length in bytes.
	Size() int64
}

// Writer receives a blob's content. Exactly one of Commit and Abort must be
// called.
type Writer interface {
	io.Writer
	// Commit makes the content durable under id and returns once it is.
	Commit(ctx context.Context, id string) error
	// Abort discards the content.
	Abort()
}

// Store is a blob store driver. Methods are safe for concurrent use.
type Store interface {
	// Create starts a new blob.
	Create(ctx context.Context) (Writer, error)
	// Open opens a blob for reading.
	Open(ctx context.Context, id string) (Reader, error)
	// Delete removes a blob; deleting a missing blob is not an error.
	Delete(ctx context.Context, id string) error
	// Walk calls fn for every stored blob id, in no particular order.
	Walk(ctx context.Context, fn func(id string) error) error
}

// ValidID reports whether id looks like a hex SHA-256 (64 lower-case hex
// digits). Drivers refuse other ids, so an id never becomes an arbitrary
// path or key.
func ValidID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// TempSweeper is implemented by a driver whose interrupted writes can
// leave temporary data behind that Walk does not list (the s3 driver's
// unfinished multipart uploads and tmp/ objects). A store's periodic
// sweep calls SweepTemp; the driver removes what is older than its own
// grace period at now, so that writes in progress, on this server or on
// another sharing the storage, are left alone.
type TempSweeper interface {
	SweepTemp(ctx context.Context, now time.Time) error
}
