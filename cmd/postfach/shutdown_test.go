package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// storeConfig writes a config for the binary with IMAP and LMTP on free
// loopback ports and extra appended.
func storeConfig(t *testing.T, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "postfach.toml")
	body := `data_dir = "data"
hostname = "mx.test.example"
domains = ["example.org"]

[listen]
imap = "127.0.0.1:0"
imaps = ""
pop3 = ""
pop3s = ""
lmtp = "127.0.0.1:0"
smtp = ""
submission = ""
submissions = ""
http = ""
web = ""

[log]
level = "debug"
` + extra
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestShutdownGraceWithStuckStore stops the real server with SIGTERM while
// a session is stuck in the store for good: the body file of the message
// it fetches is a FIFO nobody writes to, so opening it blocks the way a
// read on a hung disk does. After limits.shutdown_grace the process must
// cut the session off and exit (issue 11, item 1: SIGTERM did not stop a
// server whose store was stuck; only SIGKILL did).
func TestShutdownGraceWithStuckStore(t *testing.T) {
	t.Parallel()
	cfg := storeConfig(t, "\n[limits]\nshutdown_grace = \"1s\"\n")
	dataDir := filepath.Join(filepath.Dir(cfg), "data")
	if r := runBin(t, "secret password\n", "user", "add", "--config", cfg, "--password-stdin", "alice@example.org"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	// A body too large to live in the database: it gets a file.
	msg := "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 16<<10)
	if r := runBin(t, msg, "deliver", "--config", cfg, "--to", "alice@example.org"); r.code != 0 {
		t.Fatalf("deliver: %d %s", r.code, r.stderr)
	}
	var bodies []string
	filepath.WalkDir(filepath.Join(dataDir, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(filepath.Dir(p)) != "tmp" {
			bodies = append(bodies, p)
		}
		return nil
	})
	if len(bodies) != 1 {
		t.Fatalf("want one body file, found %v", bodies)
	}
	if err := os.Remove(bodies[0]); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(bodies[0], 0o600); err != nil {
		t.Fatal(err)
	}

	srv := startServe(t, cfg)
	c, err := net.Dial("tcp", srv.Addr("imap"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReader(c)
	until := func(prefix string) {
		t.Helper()
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %q: %v", prefix, err)
			}
			if strings.HasPrefix(l, prefix) {
				return
			}
		}
	}
	until("* OK")
	fmt.Fprintf(c, "a LOGIN alice@example.org \"secret password\"\r\n")
	until("a OK")
	fmt.Fprintf(c, "b SELECT INBOX\r\n")
	until("b OK")
	fmt.Fprintf(c, "c FETCH 1 BODY[]\r\n")
	// Wait until the FETCH is in the store (the server logs the command
	// before it runs it).
	for deadline := time.Now().Add(time.Minute); !strings.Contains(srv.logs(), "cmd=FETCH"); {
		if time.Now().After(deadline) {
			t.Fatalf("the FETCH never ran:\n%s", srv.logs())
		}
		time.Sleep(10 * time.Millisecond)
	}

	srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-srv.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("postfach did not exit after SIGTERM with a session stuck in the store")
	}
	err = srv.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitError {
		t.Errorf("exit after a cut-off stop: %v, want exit code %d", err, exitError)
	}
	if logs := srv.logs(); !strings.Contains(logs, "connection cut off at shutdown") {
		t.Errorf("no log line about the session cut off:\n%s", logs)
	}
}
