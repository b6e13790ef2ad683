package abuse

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/dnstest"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
	"github.com/postfach/postfach/internal/testenv"
)

// TestQueueSurvivesSIGKILL keeps the outbound queue's promise (DESIGN.md
// §1, docs/sending.md "What a crash can do"): a message the queue took is
// delivered whatever happens to the server, and a crash sends a message
// twice only when it falls between the remote server's 250 and the queue
// recording it, which is at most one message per connection. The real
// binary sends queued messages to a counting SMTP sink and is killed with
// SIGKILL three times in the middle of it; after the last start every
// message has arrived, none more than once per kill, and the duplicates
// stay within kills × connections.
func TestQueueSurvivesSIGKILL(t *testing.T) {
	const (
		messages    = 240
		concurrency = 3
		kills       = 3
	)
	sink := queueStartSink(t)
	dns := dnstest.New(t, "sink.test. 300 IN MX 10 mx.sink.test.", "mx.sink.test. 300 IN A 127.0.0.1")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "postfach.toml")
	body := fmt.Sprintf(`data_dir = "data"
hostname = "mx.test.example"
domains = ["example.org"]

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

[dns]
servers = [%q]

[queue]
port = %d
concurrency = %d
`, dns.Addr, sink.port(), concurrency)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	// Queue the messages the way submission does: each Enqueue returns
	// once the message is durable, which is the acknowledgement.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	acct, err := st.CreateAccount(ctx, "alice@example.org", "x")
	if err != nil {
		t.Fatal(err)
	}
	for i := range messages {
		raw := fmt.Sprintf("From: alice@example.org\r\nTo: bob@sink.test\r\nX-Crash-ID: %d\r\nSubject: crash %d\r\n\r\n%s\r\n",
			i, i, strings.Repeat("queued body line\r\n", 20+i%50))
		b, err := st.Stage(ctx, strings.NewReader(raw), 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Enqueue(ctx, &store.QueueEntry{Account: acct.ID, From: "alice@example.org", Created: time.Now(), NextAttempt: time.Now(),
			Recipients: []store.QueueRecipient{{Address: fmt.Sprintf("bob%d@sink.test", i%7)}}}, b); err != nil {
			t.Fatal(err)
		}
		b.Discard()
	}
	st.Close()

	bin := testenv.BuildBinary(t)
	for k := range kills {
		before := sink.total()
		p := queueStartServe(t, bin, cfg)
		// Kill once this run has sent some, in the middle of sending.
		deadline := time.Now().Add(2 * time.Minute)
		for sink.total() < before+messages/(kills+2) {
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: the queue sent nothing:\n%s", k, p.logs())
			}
			time.Sleep(5 * time.Millisecond)
		}
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.wait()
		t.Logf("kill %d: %d messages at the sink", k, sink.total())
	}
	p := queueStartServe(t, bin, cfg)
	deadline := time.Now().Add(3 * time.Minute)
	for sink.distinct() < messages {
		if time.Now().After(deadline) {
			t.Fatalf("after the last start only %d of %d messages arrived:\n%s", sink.distinct(), messages, p.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Let the last recordings land, then stop cleanly and look at the
	// queue: it must be empty.
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait()
	st, err = sqlite.Open(ctx, sqlite.Options{Dir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	left, err := st.QueueEntries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d entries still queued after every message arrived", len(left))
	}
	dups := 0
	for id, n := range sink.counts() {
		if n > 1+kills {
			t.Errorf("message %s arrived %d times after %d kills", id, n, kills)
		}
		dups += n - 1
	}
	if dups > kills*concurrency {
		t.Errorf("%d duplicates after %d kills with %d connections; at most one per connection per kill is allowed", dups, kills, concurrency)
	}
	t.Logf("%d messages, %d deliveries at the sink, %d duplicates after %d kills", messages, sink.total(), dups, kills)
}

// queueSink is an SMTP server that counts the messages it accepted by
// their X-Crash-ID.
type queueSink struct {
	ln net.Listener
	mu sync.Mutex
	n  map[string]int
}

func queueStartSink(t *testing.T) *queueSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &queueSink{ln: ln, n: map[string]int{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				s.serve(c)
			}()
		}
	}()
	return s
}

func (s *queueSink) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *queueSink) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.n {
		n += c
	}
	return n
}

func (s *queueSink) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.n)
}

func (s *queueSink) counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.n {
		out[k] = v
	}
	return out
}

func (s *queueSink) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	r := bufio.NewReader(c)
	fmt.Fprintf(c, "220 sink\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO":
			fmt.Fprintf(c, "250-sink\r\n250 PIPELINING\r\n")
		case "MAIL", "RCPT", "RSET":
			fmt.Fprintf(c, "250 ok\r\n")
		case "DATA":
			fmt.Fprintf(c, "354 go\r\n")
			var id string
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return // cut off: not accepted, not counted
				}
				if l == ".\r\n" {
					break
				}
				if v, ok := strings.CutPrefix(l, "X-Crash-ID: "); ok && id == "" {
					id = strings.TrimSpace(v)
				}
			}
			// Count before answering: what the sender may have seen
			// as accepted is counted.
			s.mu.Lock()
			s.n[id]++
			s.mu.Unlock()
			fmt.Fprintf(c, "250 queued\r\n")
		case "QUIT":
			fmt.Fprintf(c, "221 bye\r\n")
			return
		default:
			fmt.Fprintf(c, "250 ok\r\n")
		}
	}
}

// queueProc is a running `postfach serve`.
type queueProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
}

func queueStartServe(t *testing.T, bin, cfg string) *queueProc {
	t.Helper()
	p := &queueProc{cmd: exec.Command(bin, "serve", "--config", cfg), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "POSTFACH_CONFIG=")
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
		var once sync.Once
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if strings.Contains(line, `msg="postfach started"`) {
				once.Do(func() { close(started) })
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.wait()
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

func (p *queueProc) wait() {
	<-p.done
	p.cmd.Wait()
}

func (p *queueProc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}
