package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/bench"
	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	if code, out, _ := runCmd(t, "help"); code != 0 || !strings.Contains(out, "imap-mixed") {
		t.Fatalf("help: %d %q", code, out)
	}
	if code, _, _ := runCmd(t); code != 2 {
		t.Fatalf("no command: exit %d", code)
	}
	if code, _, errs := runCmd(t, "nosuch"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Fatalf("unknown command: %d %q", code, errs)
	}
	if code, _, errs := runCmd(t, "idle", "--mem-metric", "vsz"); code != 1 || !strings.Contains(errs, "--mem-metric") {
		t.Fatalf("bad flag value: %d %q", code, errs)
	}
	if code, _, _ := runCmd(t, "lmtp", "stray"); code != 1 {
		t.Fatalf("stray argument: exit %d", code)
	}
	if code, _, _ := runCmd(t, "pop3", "--help"); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
}

func TestCorpusCommand(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runCmd(t, "corpus", "--count", "12", "--seed", "3", "--out", dir)
	if code != 0 || !strings.Contains(out, "12 messages") {
		t.Fatalf("corpus: %d %q %q", code, out, errs)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 12 {
		t.Fatalf("%d files", len(files))
	}
	want, _ := bench.GenerateMessage(3, 11)
	got, err := os.ReadFile(filepath.Join(dir, "000011.eml"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("file 11 differs from GenerateMessage(3, 11): %v", err)
	}
}

func TestPasswdFile(t *testing.T) {
	code, out, errs := runCmd(t, "passwd-file", "--users", "a%d@x.test", "--first", "5", "--count", "2", "--password", "s3cret")
	if code != 0 {
		t.Fatalf("passwd-file: %d %q", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "a5@x.test:{ARGON2ID}$argon2id$") || !strings.HasPrefix(lines[1], "a6@x.test:") {
		t.Fatalf("lines %q", lines)
	}
	hash := strings.TrimPrefix(strings.Split(lines[0], ":")[1], "{ARGON2ID}")
	if ok, err := auth.VerifyPassword(hash, "s3cret"); !ok || err != nil {
		t.Fatalf("hash does not verify: %v", err)
	}
	if ok, _ := auth.VerifyPassword(hash, "wrong"); ok {
		t.Fatal("wrong password verifies")
	}
}

// TestAgainstPostfach runs load, lmtp and report against the real postfach
// server (internal/testenv) on loopback.
func TestAgainstPostfach(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	for _, u := range []string{"b1@example.org", "b2@example.org"} {
		env.AddUser(u, "pw")
	}
	jsonPath := filepath.Join(t.TempDir(), "results.jsonl")
	common := []string{"--addr", env.Addr("lmtp"), "--users", "b%d@example.org", "--count", "2", "--corpus-size", "8", "--json", jsonPath, "--quiet"}
	code, out, errs := runCmd(t, append([]string{"load", "--per-user", "3", "--label", "postfach"}, common...)...)
	if code != 0 || !strings.Contains(out, "messages") {
		t.Fatalf("load: %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = runCmd(t, append([]string{"lmtp", "--conns", "2", "--duration", "500ms", "--warmup", "0s", "--label", "postfach", "--case", "lmtp-test", "--pid", strconv.Itoa(os.Getpid())}, common...)...)
	if code != 0 || !strings.Contains(out, "msgs_per_s") || !strings.Contains(out, "server CPU") {
		t.Fatalf("lmtp: %d\n%s\n%s", code, out, errs)
	}
	// The same case for a second label, so the report compares.
	code, _, errs = runCmd(t, append([]string{"lmtp", "--conns", "1", "--duration", "300ms", "--warmup", "0s", "--label", "other", "--case", "lmtp-test"}, common...)...)
	if code != 0 {
		t.Fatalf("lmtp: %d %s", code, errs)
	}
	code, out, errs = runCmd(t, "report", "--json", jsonPath, "--b", "other", "--target", "lmtp-test:msgs_per_s:ratio>=0.01")
	if code != 0 || !strings.Contains(out, "| lmtp-test | msgs_per_s |") || !strings.Contains(out, "| yes |") {
		t.Fatalf("report: %d\n%s\n%s", code, out, errs)
	}
	if code, _, _ := runCmd(t, "report", "--json", jsonPath, "--target", "bad"); code != 1 {
		t.Fatalf("bad target: exit %d", code)
	}
}

// TestIMAPAgainstPostfach runs the IMAP workloads against the real server:
// a short mixed run and IDLE sessions with pushes and Go memory figures.
// The mixed run is bounded by a number of cycles, not a time window: on a
// loaded machine the logins once took most of a 500 ms window and left
// no FETCH in it.
func TestIMAPAgainstPostfach(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	for _, u := range []string{"i1@example.org", "i2@example.org"} {
		env.AddUser(u, "pw")
	}
	users := []string{"--users", "i%d@example.org", "--count", "2", "--password", "pw", "--quiet"}
	code, out, errs := runCmd(t, append([]string{"load", "--addr", env.Addr("lmtp"), "--per-user", "5", "--corpus-size", "10"}, users...)...)
	if code != 0 {
		t.Fatalf("load: %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = runCmd(t, append([]string{"imap-mixed", "--addr", env.Addr("imap"), "--clients", "2", "--cycles", "2", "--warmup", "0s", "--corpus-size", "10"}, users...)...)
	if code != 0 || !strings.Contains(out, "fetch-envelope") {
		t.Fatalf("imap-mixed: %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = runCmd(t, append([]string{"idle", "--addr", env.Addr("imap"), "--conns", "6", "--pushes", "4", "--lmtp", env.Addr("lmtp"),
		"--pid", strconv.Itoa(os.Getpid()), "--metrics-url", "http://" + env.Addr("http") + "/metrics", "--settle", "0s"}, users...)...)
	if code != 0 {
		t.Fatalf("idle: %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"push_samples        12", "go_stack_per_conn_kib", "mem_per_conn_kib"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("idle output lacks %q:\n%s", want, out)
		}
	}
}

// TestSharedAgainstPostfach runs imap-shared against the real server:
// three accounts, two sessions on each, 120 operations per session, with
// the default keywords, so every rule of the checker (a keyword announced
// in FLAGS before its first use included) must hold: zero violations.
func TestSharedAgainstPostfach(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	for _, u := range []string{"s1@example.org", "s2@example.org", "s3@example.org"} {
		env.AddUser(u, "pw")
	}
	users := []string{"--users", "s%d@example.org", "--count", "3", "--password", "pw", "--quiet", "--corpus-size", "30"}
	code, out, errs := runCmd(t, append([]string{"load", "--addr", env.Addr("lmtp"), "--per-user", "30"}, users...)...)
	if code != 0 {
		t.Fatalf("load: %d\n%s\n%s", code, out, errs)
	}
	jsonPath := filepath.Join(t.TempDir(), "results.jsonl")
	code, out, errs = runCmd(t, append([]string{"imap-shared", "--addr", env.Addr("imap"), "--per-account", "2", "--ops", "120", "--duration", "2m", "--warmup", "0s",
		"--idle-wait", "5ms", "--json", jsonPath, "--label", "postfach"}, users...)...)
	if code != 0 {
		t.Fatalf("imap-shared: %d\n%s\n%s", code, out, errs)
	}
	f, err := os.Open(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	results, err := bench.ReadResults(f)
	if err != nil || len(results) != 1 {
		t.Fatalf("results: %v %d", err, len(results))
	}
	res := results[0]
	if res.Case != "imap-shared-a3x2" || res.Checks == nil {
		t.Fatalf("case %q, checks %v\n%s", res.Case, res.Checks, out)
	}
	if res.Checks.Responses == 0 {
		t.Fatalf("no response was checked\n%s", out)
	}
	if n := res.Checks.ViolationCount(); n != 0 {
		t.Errorf("%d consistency violations\n%s", n, out)
	}
	ops := map[string]int64{}
	for _, o := range res.Ops {
		ops[o.Op] = o.Count
	}
	for _, op := range []string{"store", "fetch-flags", "fetch-envelope", "fetch-section", "search", "sort", "thread", "append"} {
		if ops[op] == 0 {
			t.Errorf("no %s completed: %v\n%s", op, ops, out)
		}
	}
}

// TestMXAgainstPostfach runs mx against the real server with its checks
// on: the workload's DNS server answers the server's questions, so the
// signed messages pass DKIM and all pass DMARC.
func TestMXAgainstPostfach(t *testing.T) {
	dnsAddr := mxFreeAddr(t)
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) {
		c.DNS.Servers = []string{dnsAddr}
	}})
	for _, u := range []string{"m1@example.org", "m2@example.org"} {
		env.AddUser(u, "pw")
	}
	code, out, errs := runCmd(t, "mx", "--addr", env.Addr("smtp"), "--users", "m%d@example.org", "--count", "2", "--corpus-size", "6",
		"--conns", "2", "--duration", "1s", "--warmup", "0s", "--senders", "2", "--signed", "50", "--dns-listen", dnsAddr,
		"--pid", strconv.Itoa(os.Getpid()), "--quiet")
	if code != 0 || !strings.Contains(out, "msgs_per_s") || !strings.Contains(out, "server_cpu_us_per_msg") {
		t.Fatalf("mx: %d\n%s\n%s", code, out, errs)
	}
	var dkimPass, dmarcPass int
	for _, u := range []string{"m1@example.org", "m2@example.org"} {
		for _, m := range env.Messages(u, "INBOX") {
			ar := string(m[:bytes.Index(m, []byte("\r\n\r\n"))])
			if strings.Contains(ar, "dkim=pass header.d=s") {
				dkimPass++
			}
			if strings.Contains(ar, "dmarc=pass") {
				dmarcPass++
			} else {
				t.Errorf("a message did not pass DMARC:\n%.2000s", m)
			}
		}
	}
	if dkimPass == 0 || dmarcPass == 0 {
		t.Fatalf("%d DKIM passes, %d DMARC passes", dkimPass, dmarcPass)
	}
}

// mxFreeAddr returns a loopback address whose port was free for UDP and
// TCP a moment ago.
func mxFreeAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		pc.Close()
		if err == nil {
			ln.Close()
			return pc.LocalAddr().String()
		}
	}
	t.Fatal("no free port")
	return ""
}
