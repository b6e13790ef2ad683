package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/blob/s3"
	"github.com/postfach/postfach/internal/config"
)

// OpenBlobs opens the blob store that [blob] selects, for a store
// backend's Options: nil for "file", which means the backend's default
// (files under data_dir/blobs for SQLite), or the S3 bucket for "s3",
// checked to exist and to accept the credentials. It is the one place
// that turns [blob] into a driver; the server and the commands that open
// the store without a server call it. Keys are never logged.
func OpenBlobs(ctx context.Context, cfg *config.Config, log *slog.Logger) (blob.Store, error) {
	b := cfg.Blob
	switch b.Backend {
	case "", "file":
		return nil, nil
	case "s3":
		access, secret := b.Credentials()
		st, err := s3.New(ctx, s3.Options{Endpoint: b.Endpoint, Bucket: b.Bucket, Region: b.Region,
			AccessKey: access, SecretKey: secret, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("open blob store: %w", err)
		}
		if log != nil {
			log.Info("message bodies in S3", "endpoint", b.Endpoint, "bucket", b.Bucket)
		}
		return st, nil
	}
	return nil, fmt.Errorf("open blob store: unknown blob.backend %q", b.Backend)
}
