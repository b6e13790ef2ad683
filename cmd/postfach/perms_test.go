package main

import (
	"bufio"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/testenv"
)

// TestFileModes keeps item 10 of issue 11 fixed: in a data directory that
// already exists with mode 0755, under the usual umask 022 (and under no
// umask at all), every file postfach creates is its user's alone — the
// SQLite database with its -wal and -shm files, bodies, the generated TLS
// key and certificate, the lock file, the admin socket — and its
// directories are 0700. The -wal and -shm files used to be 0644, and a
// local user read a delivered body and a password hash in them. The
// server also warns about the open data directory.
func TestFileModes(t *testing.T) {
	t.Parallel()
	for _, umask := range []string{"022", "000"} {
		t.Run("umask"+umask, func(t *testing.T) {
			t.Parallel()
			cfg := storeConfig(t, "")
			dataDir := filepath.Join(filepath.Dir(cfg), "data")
			if err := os.Mkdir(dataDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dataDir, 0o755); err != nil {
				t.Fatal(err)
			}
			bin := testenv.BuildBinary(t)
			srv := startServeCmd(t, exec.Command("sh", "-c", "umask "+umask+" && exec \"$0\" serve --config \"$1\"", bin, cfg))
			if !strings.Contains(srv.logs(), "the data directory is open to other users") {
				t.Errorf("no warning about the 0755 data directory:\n%s", srv.logs())
			}
			// Through the admin socket, and a delivery by LMTP with a
			// body large enough for a file of its own.
			cmd := exec.Command("sh", "-c", "umask "+umask+" && exec \"$0\" user add --config \"$1\" --password-stdin alice@example.org", bin, cfg)
			cmd.Stdin = strings.NewReader("secret password\n")
			cmd.Env = append(os.Environ(), "POSTFACH_CONFIG=")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("user add: %v\n%s", err, out)
			}
			permsDeliver(t, srv.Addr("lmtp"), "Subject: big\r\n\r\n"+strings.Repeat("0123456789abcdef\r\n", 16<<10))
			permsDeliver(t, srv.Addr("lmtp"), "Subject: small\r\n\r\nsecret\r\n")

			seen := permsCheck(t, dataDir)
			for _, want := range []string{"postfach.db", "postfach.db-wal", "postfach.db-shm", "postfach.lock", "admin.sock", "tls/key.pem", "tls/cert.pem"} {
				if !seen[want] {
					t.Errorf("%s not found in the data directory (have %v)", want, seen)
				}
			}
			blobs := 0
			for p := range seen {
				if strings.HasPrefix(p, "blobs/") && !strings.HasPrefix(p, "blobs/tmp") && len(filepath.Base(p)) == 64 {
					blobs++
				}
			}
			if blobs != 1 {
				t.Errorf("want one body file, found %d in %v", blobs, seen)
			}
			srv.stop()
			permsCheck(t, dataDir)
		})
	}
}

// permsCheck fails the test for every file or directory below dataDir that
// others may use, and returns the paths it saw.
func permsCheck(t *testing.T, dataDir string) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		if p == dataDir {
			return nil
		}
		rel, _ := filepath.Rel(dataDir, p)
		seen[rel] = true
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %04o, want no access for group and others", rel, perm)
		}
		return nil
	})
	return seen
}

func permsDeliver(t *testing.T, addr, msg string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	reply := func() string {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("lmtp: %v", err)
			}
			if len(l) < 4 || l[3] != '-' {
				return l
			}
		}
	}
	for _, step := range []struct{ cmd, want string }{
		{"", "220 "}, {"LHLO test", "250 "}, {"MAIL FROM:<bob@example.net>", "250 "},
		{"RCPT TO:<alice@example.org>", "250 "}, {"DATA", "354 "}, {msg + "\r\n.", "250 "},
	} {
		if step.cmd != "" {
			fmt.Fprintf(c, "%s\r\n", step.cmd)
		}
		if l := reply(); !strings.HasPrefix(l, step.want) {
			t.Fatalf("lmtp %q: %q", step.cmd, l)
		}
	}
}
