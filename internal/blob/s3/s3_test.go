package s3_test

import (
	"context"
	"testing"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/blob/blobtest"
	"github.com/postfach/postfach/internal/blob/s3"
	"github.com/postfach/postfach/internal/blob/s3/s3test"
)

// TestConformance runs the blob suite on a real S3 service (see s3test).
func TestConformance(t *testing.T) {
	t.Parallel()
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := s3.New(context.Background(), s3test.Bucket(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
