package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/postfach/postfach/internal/imapurl"
	"github.com/postfach/postfach/internal/smtpserver"
)

// burlFetcher resolves BURL's URLs (RFC 4468) with imapurl, for the user
// the submission server acts for: "submit+USER" URLs of that user, and
// the others imapurl admits (RFC 4467 §3).
type burlFetcher struct{ r *imapurl.Resolver }

// FetchURL implements smtpserver.URLFetcher.
func (f burlFetcher) FetchURL(ctx context.Context, url string, u smtpserver.URLUser) (io.ReadCloser, int64, error) {
	rc, n, err := f.r.Fetch(ctx, url, imapurl.Requester{Account: u.Account, Name: u.Name, Submit: true, Local: u.Local})
	if errors.Is(err, imapurl.ErrInvalid) {
		return nil, 0, fmt.Errorf("%w: %w", smtpserver.ErrBadURL, err)
	}
	return rc, n, err
}

// spoolDir is the folder for large messages while the MX checks them
// and submission delivers and queues them (smtpserver.Options.SpoolDir,
// smtpserver.Submission.SpoolDir), emptied at start: what is left there
// is from a message that was never acknowledged.
func spoolDir(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, "spool")
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("spool: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("spool: %w", err)
	}
	return dir, nil
}
