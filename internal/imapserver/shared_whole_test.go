package imapserver_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/bench"
	"github.com/postfach/postfach/internal/testenv"
)

// TestSharedMailboxWholeServer runs the shared-mailbox load of
// postfach-bench (several sessions on each INBOX: STORE of flags and
// keywords, EXPUNGE, APPEND, COPY, SEARCH, SORT, THREAD, FETCH, IDLE; every
// response checked by bench.Checker) against the whole server, while LMTP
// and `postfach deliver` add mail to the same mailboxes: the sessions,
// which share each mailbox's cache, must see no inconsistency. Run it
// with -race: the caches are shared by every session. Then a session
// whose mailbox is cached sees a message `postfach deliver` adds, with
// its envelope and in SEARCH.
func TestSharedMailboxWholeServer(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	users := bench.Users{Format: "s%d@" + testenv.Domain, First: 1, Count: 2, Password: "secret password"}
	for i := range users.Count {
		e.AddUser(users.Name(i), users.Password)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	corpus := bench.GenerateCorpus(3, 40)
	if _, err := bench.Populate(ctx, bench.PopulateOptions{Common: bench.Common{Addr: e.Addr("lmtp"), Label: "postfach"},
		Users: users, PerUser: 20, Conns: 1, Corpus: corpus, From: "load@example.net"}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "postfach.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir = %q\ndomains = [%q]\n", e.Config.DataDir, testenv.Domain)), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := testenv.BuildBinary(t)
	deliverCLI := func(to, subject string) error {
		cmd := exec.CommandContext(ctx, bin, "deliver", "--config", cfg, "--to", to)
		cmd.Env = append(os.Environ(), "POSTFACH_CONFIG=")
		cmd.Stdin = strings.NewReader("From: cli@example.net\r\nSubject: " + subject + "\r\n\r\nby postfach deliver\r\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("postfach deliver: %v\n%s", err, out)
		}
		return nil
	}

	// Mail arrives by LMTP and by postfach deliver while the sessions
	// work.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var deliverErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		lc, err := bench.DialLMTP(ctx, nil, e.Addr("lmtp"), "test")
		if err != nil {
			deliverErr = err
			return
		}
		defer lc.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if i%10 == 9 {
				if err := deliverCLI(users.Name(i/10), fmt.Sprintf("cli %d", i)); err != nil {
					deliverErr = err
					return
				}
				continue
			}
			codes, err := lc.Deliver("lmtp@example.net", []string{users.Name(i)}, bench.SMTPData(corpus.Msgs[i%len(corpus.Msgs)]))
			if err != nil || codes[0] != 250 {
				deliverErr = fmt.Errorf("lmtp: %v %v", codes, err)
				return
			}
		}
	}()
	res, err := bench.RunIMAPShared(ctx, bench.SharedOptions{
		Common: bench.Common{Addr: e.Addr("imap"), Label: "postfach"}, Users: users, PerAccount: 4,
		Duration: 3 * time.Minute, Ops: 120, Keywords: []string{"$Label1", "$Label2", "$Forwarded"},
		Messages: 20, IdleWait: 5 * time.Millisecond, Corpus: corpus, AppendMax: 64 << 10, Seed: 5,
	})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if deliverErr != nil {
		t.Fatal(deliverErr)
	}
	if res.Checks == nil || res.Checks.Responses == 0 {
		t.Fatal("no response was checked")
	}
	if n := res.Checks.ViolationCount(); n != 0 {
		var b strings.Builder
		res.Checks.Write(&b)
		t.Fatalf("%d consistency violations:\n%s", n, b.String())
	}

	// A session whose mailbox is cached (its SEARCH loaded it) learns of
	// a message postfach deliver adds, and finds it.
	conn := e.Dial("imap")
	r := bufio.NewReader(conn)
	do := func(tag, cmd string) string {
		t.Helper()
		io.WriteString(conn, tag+" "+cmd+"\r\n")
		var all strings.Builder
		for {
			conn.SetReadDeadline(time.Now().Add(time.Minute))
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v after\n%s", cmd, err, all.String())
			}
			all.WriteString(l)
			if strings.HasPrefix(l, tag+" ") {
				if !strings.HasPrefix(l, tag+" OK") {
					t.Fatalf("%s:\n%s", cmd, all.String())
				}
				return all.String()
			}
		}
	}
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	do("a", `LOGIN `+users.Name(0)+` "secret password"`)
	do("b", "SELECT INBOX")
	do("c", "UID SEARCH ALL")
	if err := deliverCLI(users.Name(0), "needle in the cache"); err != nil {
		t.Fatal(err)
	}
	if out := do("d", "NOOP"); !strings.Contains(out, " EXISTS") {
		t.Fatalf("NOOP after a delivery:\n%s", out)
	}
	out := do("e", "UID SEARCH SUBJECT needle")
	var uid string
	for _, l := range strings.Split(out, "\r\n") {
		if f := strings.Fields(l); len(f) == 3 && f[1] == "SEARCH" {
			uid = f[2]
		}
	}
	if uid == "" {
		t.Fatalf("the delivered message is not found:\n%s", out)
	}
	if out := do("f", "UID FETCH "+uid+" (ENVELOPE)"); !strings.Contains(out, `"needle in the cache"`) {
		t.Fatalf("envelope of the delivered message:\n%s", out)
	}
}
