package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckReadOnlyDataDir: `postfach check` works on a data directory it
// cannot write to (a read-only mount of a backup, a snapshot), and
// changes nothing in it. As root (CI) the directory is bind-mounted
// read-only; otherwise its permissions are taken away.
func TestCheckReadOnlyDataDir(t *testing.T) {
	cfg := testConfig(t, "")
	// A body over 128 KiB is kept in a file: allow one.
	if err := os.WriteFile(cfg, []byte(strings.Replace(readFile(t, cfg), `max_message_size = "64KiB"`, `max_message_size = "1MiB"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(filepath.Dir(cfg), "data")
	if r := runBin(t, "password\n", "user", "add", "--config", cfg, "--password-stdin", "alice@example.org"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	small := "Subject: small\n\nhello\n"
	large := "Subject: large\n\n" + strings.Repeat("a line of a body kept in a file\n", 4096)
	for _, msg := range []string{small, large} {
		if r := runBin(t, msg, "deliver", "--config", cfg, "--to", "alice@example.org"); r.code != 0 {
			t.Fatalf("deliver: %+v", r)
		}
	}
	files := 0
	filepath.WalkDir(filepath.Join(dataDir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return nil
	})
	if files != 1 {
		t.Fatalf("%d body files, want 1 (the large message)", files)
	}
	if os.Geteuid() == 0 {
		mount := func(args ...string) {
			t.Helper()
			if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
				t.Fatalf("mount %q: %v\n%s", args, err, out)
			}
		}
		mount("--bind", dataDir, dataDir)
		t.Cleanup(func() {
			if out, err := exec.Command("umount", dataDir).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v\n%s", dataDir, err, out)
			}
		})
		mount("-o", "remount,bind,ro", dataDir)
		if err := os.WriteFile(filepath.Join(dataDir, "probe"), nil, 0o600); err == nil {
			t.Fatal("the read-only bind mount is writable")
		}
	} else {
		filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
			if d.IsDir() {
				return os.Chmod(p, 0o500)
			}
			return os.Chmod(p, 0o400)
		})
		t.Cleanup(func() {
			filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error { return os.Chmod(p, 0o700) })
		})
	}
	before := checkTree(t, dataDir)
	r := runBin(t, "", "check", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "store "+dataDir+": ok") {
		t.Fatalf("check of a read-only data directory: %+v", r)
	}
	if after := checkTree(t, dataDir); after != before {
		t.Fatalf("check changed the data directory:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// checkTree lists the files under dir with their modes, sizes and times.
func checkTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %s %d %s\n", p, fi.Mode(), fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
