package blob_test

import (
	"testing"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/blob/blobtest"
)

func TestFileStore(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := blob.NewFileStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
