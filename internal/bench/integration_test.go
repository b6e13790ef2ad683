package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// memServer is a real IMAP server that nobody here wrote (go-imap v2's
// in-memory server) on loopback, plus a small LMTP front end that
// delivers into it, so the workloads run end to end in tests.
type memServer struct {
	imapAddr, lmtpAddr string
	users              map[string]*imapmemserver.User
}

const testUsers = "u%d@bench.test"

func startMemServer(t *testing.T, nusers int, perUser int) *memServer {
	t.Helper()
	mem := imapmemserver.New()
	ms := &memServer{users: map[string]*imapmemserver.User{}}
	for i := 1; i <= nusers; i++ {
		name := fmt.Sprintf(testUsers, i)
		u := imapmemserver.NewUser(name, "pw")
		if err := u.Create("INBOX", nil); err != nil {
			t.Fatal(err)
		}
		for k := range perUser {
			msg, _ := GenerateMessage(7, i*perUser+k)
			if _, err := u.Append("INBOX", bytes.NewReader(msg), &imap.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		mem.AddUser(u)
		ms.users[name] = u
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}, imap.CapLiteralPlus: {}, imap.CapUIDPlus: {}, imap.CapIdle: {}},
		InsecureAuth: true,
		Logger:       log.New(io.Discard, "", 0),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	ms.imapAddr = ln.Addr().String()
	ms.lmtpAddr = serveLMTP(t, ms.users)
	return ms
}

// serveLMTP is a minimal LMTP server (RFC 2033) appending to INBOX.
func serveLMTP(t *testing.T, users map[string]*imapmemserver.User) string {
	return serveScript(t, func(s *scriptConn) { lmtpSession(s.c, users) })
}

func lmtpSession(c net.Conn, users map[string]*imapmemserver.User) {
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	reply := func(s string) { w.WriteString(s + "\r\n") }
	reply("220 mem LMTP")
	w.Flush()
	var rcpts []*imapmemserver.User
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimRight(line, "\r\n"))
		switch {
		case strings.HasPrefix(cmd, "LHLO"):
			reply("250-mem")
			reply("250 PIPELINING")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			rcpts = nil
			reply("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:<"):
			addr := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(strings.TrimRight(line, "\r\n")[len("RCPT TO:<"):], ""), ">"))
			if u := users[addr]; u != nil {
				rcpts = append(rcpts, u)
				reply("250 ok")
			} else {
				reply("550 no such user")
			}
		case cmd == "DATA":
			if len(rcpts) == 0 {
				reply("554 no valid recipients")
				break
			}
			reply("354 go")
			w.Flush()
			var msg bytes.Buffer
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				msg.WriteString(strings.TrimPrefix(l, "."))
			}
			for _, u := range rcpts {
				if _, err := u.Append("INBOX", bytes.NewReader(msg.Bytes()), &imap.AppendOptions{}); err != nil {
					reply("451 " + err.Error())
				} else {
					reply("250 delivered")
				}
			}
		case cmd == "RSET":
			rcpts = nil
			reply("250 ok")
		case cmd == "QUIT":
			reply("221 bye")
			w.Flush()
			return
		default:
			reply("500 what")
		}
		if r.Buffered() == 0 {
			w.Flush()
		}
	}
}

func TestRunIMAPMixedAgainstMemServer(t *testing.T) {
	ms := startMemServer(t, 3, 30)
	for _, logout := range []bool{false, true} {
		res, err := RunIMAPMixed(context.Background(), MixedOptions{
			Common:  Common{Addr: ms.imapAddr, Label: "mem"},
			Users:   Users{Format: testUsers, First: 1, Count: 3, Password: "pw"},
			Clients: 3, Duration: 400 * time.Millisecond, LogoutEachCycle: logout,
			Window: 10, Bodies: 2, Corpus: GenerateCorpus(3, 20), Seed: 1,
		})
		if err != nil {
			t.Fatalf("logout=%v: %v (%+v)", logout, err, res)
		}
		if m, _ := res.Metric("commands_per_s"); m.Value <= 0 {
			t.Fatalf("no throughput: %+v", res.Metrics)
		}
		want := []string{opSelect, opFetchFlags, opFetchEnv, opFetchBody, opFetchPeek, opStore, opAppend, opExpunge, opList, opStatus, opNoop}
		if logout {
			want = append(want, opConnect, opLogin, opLogout)
		}
		got := map[string]OpSummary{}
		for _, o := range res.Ops {
			got[o.Op] = o
		}
		for _, op := range want {
			if got[op].Count == 0 {
				t.Errorf("logout=%v: no %s completed (%+v)", logout, op, res.Ops)
			}
			if got[op].Errors != 0 {
				t.Errorf("logout=%v: %d %s errors; notes %v", logout, got[op].Errors, op, res.Notes)
			}
		}
		if got[opFetchBody].MBytesS <= 0 {
			t.Errorf("body fetches moved no bytes")
		}
		var buf bytes.Buffer
		res.WriteTable(&buf)
		if !strings.Contains(buf.String(), "fetch-envelope") {
			t.Errorf("table lacks the ops:\n%s", buf.String())
		}
	}
	// Each cycle expunged what it appended.
	for name, u := range ms.users {
		st, err := u.Status("INBOX", &imap.StatusOptions{NumMessages: true})
		if err != nil {
			t.Fatal(err)
		}
		if *st.NumMessages != 30 {
			t.Errorf("%s has %d messages after the run, want 30", name, *st.NumMessages)
		}
	}
}

func TestRunIMAPLoginAgainstMemServer(t *testing.T) {
	ms := startMemServer(t, 2, 0)
	res, err := RunIMAPLogin(context.Background(), LoginOptions{
		Common:  Common{Addr: ms.imapAddr, Label: "mem"},
		Users:   Users{Format: testUsers, First: 1, Count: 2, Password: "pw"},
		Clients: 2, Duration: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := res.Metric("logins_per_s"); m.Value <= 0 {
		t.Fatalf("no logins: %+v", res)
	}
	// A wrong password is an error, not a login.
	res, err = RunIMAPLogin(context.Background(), LoginOptions{
		Common:  Common{Addr: ms.imapAddr, Label: "mem"},
		Users:   Users{Format: testUsers, First: 1, Count: 2, Password: "wrong"},
		Clients: 1, Duration: 100 * time.Millisecond,
	})
	if err == nil {
		t.Fatalf("wrong password counted as logins: %+v", res.Metrics)
	}
}

func TestRunIdleAgainstMemServer(t *testing.T) {
	ms := startMemServer(t, 4, 2)
	res, err := RunIdle(context.Background(), IdleOptions{
		Common:          Common{Addr: ms.imapAddr, Label: "mem", Procs: &ProcSet{PIDs: []int{os.Getpid()}}},
		Users:           Users{Format: testUsers, First: 1, Count: 4, Password: "pw"},
		Conns:           12,
		DialConcurrency: 4,
		Pushes:          8,
		LMTPAddr:        ms.lmtpAddr,
		PushTimeout:     20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := res.Metric("sessions"); m.Value != 12 {
		t.Fatalf("sessions %v (%+v)", m.Value, res)
	}
	// 8 pushes over 4 users, 3 sessions each: 24 samples, none missed.
	if m, _ := res.Metric("push_samples"); m.Value != 24 {
		t.Errorf("push samples %v; metrics %+v notes %v", m.Value, res.Metrics, res.Notes)
	}
	if m, _ := res.Metric("push_missed"); m.Value != 0 {
		t.Errorf("missed pushes: %v", m.Value)
	}
	if _, ok := res.Metric("mem_per_conn_kib"); !ok {
		t.Errorf("no memory figure: %+v", res.Metrics)
	}
	// The memory server has no COMPRESS: reported, not failed.
	res, err = RunIdle(context.Background(), IdleOptions{
		Common: Common{Addr: ms.imapAddr, Label: "mem"},
		Users:  Users{Format: testUsers, First: 1, Count: 4, Password: "pw"},
		Conns:  2, Compress: true,
	})
	if err != nil || res.Unsupported == "" {
		t.Fatalf("compress: want unsupported, got %v %+v", err, res)
	}
}

func TestRunLMTPAndPopulate(t *testing.T) {
	ms := startMemServer(t, 3, 0)
	corpus := GenerateCorpus(5, 10)
	users := Users{Format: testUsers, First: 1, Count: 3}
	res, err := Populate(context.Background(), PopulateOptions{Common: Common{Addr: ms.lmtpAddr}, Users: users, PerUser: 4, Conns: 2, Corpus: corpus, From: "b@x.test"})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := res.Metric("messages"); m.Value != 12 {
		t.Fatalf("populated %v messages", m.Value)
	}
	for name, u := range ms.users {
		st, _ := u.Status("INBOX", &imap.StatusOptions{NumMessages: true})
		if *st.NumMessages != 4 {
			t.Errorf("%s: %d messages", name, *st.NumMessages)
		}
	}
	res, err = RunLMTP(context.Background(), LMTPOptions{Common: Common{Addr: ms.lmtpAddr}, Users: users, Conns: 2, Duration: 300 * time.Millisecond, Rcpts: 2, Corpus: corpus, From: "b@x.test"})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := res.Metric("msgs_per_s"); m.Value <= 0 {
		t.Fatalf("no deliveries: %+v", res)
	}
	// Only small messages: fine; none small enough: an error.
	if _, err := RunLMTP(context.Background(), LMTPOptions{Common: Common{Addr: ms.lmtpAddr}, Users: users, Conns: 1, Duration: 100 * time.Millisecond, Corpus: corpus, MaxSize: 10000}); err != nil {
		t.Fatal(err)
	}
	if _, err := RunLMTP(context.Background(), LMTPOptions{Common: Common{Addr: ms.lmtpAddr}, Users: users, Conns: 1, Duration: 100 * time.Millisecond, Corpus: corpus, MaxSize: 10}); err == nil {
		t.Fatal("want an error when no message fits --max-size")
	}
	// Unknown recipients: nothing counts as delivered.
	res, err = RunLMTP(context.Background(), LMTPOptions{Common: Common{Addr: ms.lmtpAddr}, Users: Users{Format: "nobody%d@x.test", Count: 2}, Conns: 1, Duration: 100 * time.Millisecond, Corpus: corpus})
	if err == nil {
		t.Fatalf("refused deliveries counted: %+v", res.Metrics)
	}
}
