package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/store/sqlite"
	"github.com/postfach/postfach/internal/testenv"
)

// TestCrash kills the server with SIGKILL in the middle of concurrent LMTP
// deliveries on several connections, restarts it, and checks that every
// acknowledged message is stored and intact and that `postfach check`
// passes. POSTFACH_CRASH_ROUNDS sets the number of rounds (default 3).
func TestCrash(t *testing.T) {
	rounds := 3
	if v := os.Getenv("POSTFACH_CRASH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("POSTFACH_CRASH_ROUNDS=%q", v)
		}
		rounds = n
	}
	cfg := testConfig(t, "")
	dataDir := filepath.Join(filepath.Dir(cfg), "data")
	for _, u := range []string{"alice@example.org", "bob@example.org"} {
		if r := runBin(t, "password\n", "user", "add", "--config", cfg, "--password-stdin", u); r.code != 0 {
			t.Fatal(r.stderr)
		}
	}
	acked := map[string][32]byte{} // crash id -> hash of the message as sent
	sent := map[string][32]byte{}  // every message sent, acknowledged or not
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := range rounds {
		srv := startServe(t, cfg)
		addr := srv.Addr("lmtp")
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		counts := make([]int, 8)
		firstAck := make(chan struct{})
		var firstOnce sync.Once
		for w := range 8 {
			wg.Add(1)
			seed := rng.Uint64()
			go func() {
				defer wg.Done()
				counts[w] = crashWorker(addr, round, w, seed, stop, func(id string, sum [32]byte, ok bool) {
					mu.Lock()
					sent[id] = sum
					if ok {
						acked[id] = sum
						firstOnce.Do(func() { close(firstAck) })
					}
					mu.Unlock()
				})
			}()
		}
		// Let deliveries get going (however loaded the machine), then kill
		// in the middle of them.
		select {
		case <-firstAck:
		case <-time.After(2 * time.Minute):
			t.Fatalf("round %d: no delivery acknowledged", round)
		}
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		srv.kill()
		close(stop)
		wg.Wait()
		total := 0
		for _, c := range counts {
			total += c
		}
		if total == 0 {
			t.Fatalf("round %d: no delivery was acknowledged before the kill", round)
		}
		t.Logf("round %d: %d messages acknowledged before SIGKILL (%d in total)", round, total, len(acked))

		// Restart-time recovery happens on open; check with the real binary.
		if r := runBin(t, "", "check", "--config", cfg); r.code != 0 {
			t.Fatalf("round %d: postfach check failed:\n%s%s", round, r.stdout, r.stderr)
		}
		verifyCrash(t, dataDir, sent, acked)
	}
}

// crashWorker delivers messages on one LMTP connection until stop or an
// error (the kill), calling ack for each message the server acknowledged.
func crashWorker(addr string, round, w int, seed uint64, stop <-chan struct{}, ack func(id string, sum [32]byte, acked bool)) int {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReader(c)
	rng := rand.New(rand.NewPCG(seed, uint64(w)))
	reply := func() (string, error) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return "", err
			}
			if len(line) < 4 || line[3] != '-' {
				return line, nil
			}
		}
	}
	cmd := func(s, want string) bool {
		if _, err := io.WriteString(c, s+"\r\n"); err != nil {
			return false
		}
		line, err := reply()
		return err == nil && strings.HasPrefix(line, want)
	}
	if line, err := reply(); err != nil || !strings.HasPrefix(line, "220") {
		return 0
	}
	if !cmd("LHLO crash", "250") {
		return 0
	}
	n := 0
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return n
		default:
		}
		id := fmt.Sprintf("%d-%d-%d", round, w, seq)
		rcpt := []string{"alice@example.org", "bob@example.org"}[seq%2]
		// Mostly small messages (inline in the database), some large ones
		// (blob files), all different.
		size := 500 + rng.IntN(3000)
		if seq%17 == 5 {
			size = 150<<10 + rng.IntN(20<<10)
		}
		msg := crashMessage(id, size, rng)
		if !cmd("MAIL FROM:<crash@remote.example>", "250") || !cmd("RCPT TO:<"+rcpt+">", "250") || !cmd("DATA", "354") {
			return n
		}
		sum := sha256.Sum256([]byte(msg))
		ack(id, sum, false)
		if _, err := io.WriteString(c, msg+".\r\n"); err != nil {
			return n
		}
		line, err := reply()
		if err != nil {
			return n
		}
		if strings.HasPrefix(line, "250") {
			ack(id, sum, true)
			n++
		}
	}
}

func crashMessage(id string, size int, rng *rand.Rand) string {
	var b strings.Builder
	b.WriteString("X-Crash-ID: " + id + "\r\nSubject: crash test " + id + "\r\n\r\n")
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789 "
	line := 0
	for b.Len() < size {
		b.WriteByte(letters[rng.IntN(len(letters))])
		if line++; line == 76 {
			b.WriteString("\r\n")
			line = 0
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

// verifyCrash opens the store and checks every acknowledged message, and
// that every stored test message is intact.
func verifyCrash(t *testing.T, dataDir string, sent, acked map[string][32]byte) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: dataDir, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	found := map[string]bool{}
	for _, u := range []string{"alice@example.org", "bob@example.org"} {
		bodies, err := testenv.ReadMailbox(ctx, st, u, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bodies {
			s := string(b)
			i := strings.Index(s, "X-Crash-ID: ")
			if i < 0 {
				t.Fatalf("stored message without an id:\n%.300s", s)
			}
			id := strings.TrimSpace(s[i+len("X-Crash-ID: ") : i+strings.Index(s[i:], "\r\n")])
			if found[id] {
				t.Errorf("message %s stored twice", id)
			}
			found[id] = true
			want, ok := sent[id]
			if !ok {
				t.Errorf("stored message %s was never sent", id)
			} else if sha256.Sum256([]byte(s[i:])) != want {
				t.Errorf("message %s is damaged", id)
			}
		}
	}
	for id := range acked {
		if !found[id] {
			t.Errorf("acknowledged message %s is missing", id)
		}
	}
	if problems, err := st.Check(ctx); err != nil || len(problems) > 0 {
		t.Fatalf("check: %v %v", problems, err)
	}
}
