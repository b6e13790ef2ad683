package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/store/postgres/pgtest"
	"github.com/postfach/postfach/internal/store/teststore"
	"github.com/postfach/postfach/internal/testenv"
)

// testStoreConfig is the [store] section for testConfig's extra that
// selects the backend the environment chooses (teststore.Var), as
// testenv does: PostgreSQL in a schema of its own, or nothing (the
// embedded SQLite store).
func testStoreConfig(t *testing.T) string {
	t.Helper()
	if teststore.Backend() != teststore.Postgres {
		return ""
	}
	return "\n[store]\nbackend = \"" + config.StorePostgres + "\"\ndsn = \"" + pgtest.SchemaDSN(t) + "\"\n"
}

// testConfig writes a config for the binary into a temp dir: LMTP on a free
// loopback port, everything else off unless extra turns it on.
func testConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "postfach.toml")
	body := `data_dir = "data"
hostname = "mx.test.example"
domains = ["example.org"]
max_message_size = "64KiB"

[listen]
imap = ""
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

type result struct {
	stdout, stderr string
	code           int
}

// runBin runs the real binary with stdin and returns its output and exit
// code.
func runBin(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	bin := testenv.BuildBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "POSTFACH_CONFIG=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// serverProc is a running `postfach serve`.
type serverProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
	addr map[string]string
}

var listeningRE = regexp.MustCompile(`msg=listening listener=(\w+) addr=(\S+)`)

// startServe starts the binary's serve command and waits until it logs
// "postfach started".
func startServe(t *testing.T, config string) *serverProc {
	t.Helper()
	return startServeCmd(t, exec.Command(testenv.BuildBinary(t), "serve", "--config", config))
}

// startServeCmd is startServe for a command of its own (a shell that sets
// the umask first, say).
func startServeCmd(t *testing.T, cmd *exec.Cmd) *serverProc {
	t.Helper()
	p := &serverProc{t: t, cmd: cmd, done: make(chan struct{}), addr: map[string]string{}}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				p.addr[m[1]] = m[2]
			}
			p.mu.Unlock()
			if strings.Contains(line, `msg="postfach started"`) {
				once.Do(func() { close(started) })
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		if t.Failed() {
			t.Logf("serve log:\n%s", p.logs())
		}
	})
	select {
	case <-started:
	case <-p.done:
		p.cmd.Wait()
		t.Fatalf("serve exited early:\n%s", p.logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not start:\n%s", p.logs())
	}
	return p
}

func (p *serverProc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *serverProc) Addr(name string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.addr[name]
	if a == "" {
		p.t.Fatalf("no %s listener in the log", name)
	}
	return a
}

// stop sends SIGTERM and waits for a clean exit.
func (p *serverProc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	if err := p.cmd.Wait(); err != nil {
		p.t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, p.logs())
	}
}

// kill sends SIGKILL and waits.
func (p *serverProc) kill() {
	p.cmd.Process.Kill()
	<-p.done
	p.cmd.Wait()
}
