package server

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// authSecretFile holds the key of the fake SCRAM salts (auth.Options.Secret)
// in the data directory.
const authSecretFile = "auth.secret"

// authSecret returns the server's secret for the auth service, made on
// first use: 32 random bytes in DATA_DIR/auth.secret, mode 0600. It must
// outlive restarts: the fake SCRAM salt an unknown user gets is derived
// from it, and a salt that changed would tell a prober that the user does
// not exist (RFC 5802 §9).
func authSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, authSecretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < 32 {
			return nil, fmt.Errorf("%s: too short (%d bytes); remove it and a new one is made", path, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("auth secret: %w", err)
	}
	b = make([]byte, 32)
	rand.Read(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("auth secret: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, fmt.Errorf("auth secret: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("auth secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("auth secret: %w", err)
	}
	return b, nil
}
