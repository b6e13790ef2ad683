package imapserver

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// fill appends n small messages to the account's INBOX, 1000 per commit.
func (ts *testServer) fill(b testing.TB, acct store.AccountID, n int) {
	ctx := context.Background()
	mb, err := ts.st.Mailbox(ctx, acct, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	for done := 0; done < n; {
		batch := min(1000, n-done)
		msgs := make([]store.NewMessage, batch)
		for i := range msgs {
			body := fmt.Sprintf("From: a@example.org\r\nSubject: message %d\r\nMessage-ID: <%d@bench>\r\n\r\nbody %d\r\n", done+i, done+i, done+i)
			staged, err := ts.st.Stage(ctx, strings.NewReader(body), 0)
			if err != nil {
				b.Fatal(err)
			}
			var fl mail.Flags
			if i%3 == 0 {
				fl = mail.Flags{mail.FlagSeen}
			}
			msgs[i] = store.NewMessage{Body: staged, Flags: fl}
		}
		if _, err := ts.st.Append(ctx, acct, mb.ID, msgs); err != nil {
			b.Fatal(err)
		}
		for _, m := range msgs {
			m.Body.Discard()
		}
		done += batch
	}
}

// rawRun sends a command and reads responses up to its tagged one,
// returning the number of bytes read.
func rawRun(b testing.TB, w io.Writer, r *bufio.Reader, tag, cmd string) int {
	if _, err := io.WriteString(w, tag+" "+cmd+"\r\n"); err != nil {
		b.Fatal(err)
	}
	n := 0
	for {
		line, err := r.ReadSlice('\n')
		n += len(line)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		if bytes.HasPrefix(line, []byte(tag+" ")) {
			if !bytes.HasPrefix(line, []byte(tag+" OK")) {
				b.Fatalf("%s: %s", cmd, line)
			}
			return n
		}
		// A literal: skip its data.
		if i := bytes.LastIndexByte(line, '{'); i >= 0 && bytes.HasSuffix(line, []byte("}\r\n")) {
			var size int64
			fmt.Sscanf(string(line[i:]), "{%d}", &size)
			m, err := io.CopyN(io.Discard, r, size)
			if err != nil {
				b.Fatal(err)
			}
			n += int(m)
		}
	}
}

func benchLogin(b testing.TB, ts *testServer) (net.Conn, *bufio.Reader) {
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		b.Fatal(err)
	}
	r := bufio.NewReaderSize(c, 64<<10)
	if _, err := r.ReadString('\n'); err != nil {
		b.Fatal(err)
	}
	rawRun(b, c, r, "L", "LOGIN alice@example.org \""+testPassword+"\"")
	return c, r
}

// BenchmarkSelectFetchFlags100k: SELECT a 100,000-message INBOX and
// UID FETCH 1:* (FLAGS), as a client that resyncs without CONDSTORE does.
func BenchmarkSelectFetchFlags100k(b *testing.B) {
	ts := newTestServer(b)
	acct := ts.addUser("alice@example.org")
	ts.fill(b, acct, 100000)
	c, r := benchLogin(b, ts)
	defer c.Close()
	b.ResetTimer()
	var bytesRead int
	for i := 0; i < b.N; i++ {
		rawRun(b, c, r, "s", "SELECT INBOX")
		bytesRead = rawRun(b, c, r, "f", "UID FETCH 1:* (FLAGS)")
	}
	b.ReportMetric(float64(bytesRead), "fetch-bytes")
}

// BenchmarkFetch20MB: FETCH BODY.PEEK[] of a 20 MB message. B/op shows
// that the body streams: the whole process allocates far less than the
// message per fetch.
func BenchmarkFetch20MB(b *testing.B) {
	ts := newTestServer(b, func(o *Options) { o.MaxMessageSize = 64 << 20 })
	acct := ts.addUser("alice@example.org")
	ctx := context.Background()
	var big bytes.Buffer
	big.WriteString("From: a@example.org\r\nSubject: big\r\nContent-Type: application/octet-stream\r\n\r\n")
	line := strings.Repeat("0123456789abcdef", 4) + "\r\n"
	for big.Len() < 20<<20 {
		big.WriteString(line)
	}
	staged, err := ts.st.Stage(ctx, bytes.NewReader(big.Bytes()), 0)
	if err != nil {
		b.Fatal(err)
	}
	mb, _ := ts.st.Mailbox(ctx, acct, "INBOX")
	if _, err := ts.st.Append(ctx, acct, mb.ID, []store.NewMessage{{Body: staged}}); err != nil {
		b.Fatal(err)
	}
	staged.Discard()
	size := big.Len()
	big = bytes.Buffer{}
	c, r := benchLogin(b, ts)
	defer c.Close()
	rawRun(b, c, r, "s", "SELECT INBOX")
	runtime.GC()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rawRun(b, c, r, "f", "FETCH 1 BODY.PEEK[]")
	}
}

// BenchmarkIdlePush measures the time from a delivery's commit (store
// Append returns) to the EXISTS arriving at a client in IDLE, for an
// IMAP4rev1 session (which then claims \Recent, one more write), an
// IMAP4rev2 one, one over COMPRESS=DEFLATE, and a NOTIFY session that
// waits between commands (not in IDLE). Deliveries are spaced so each
// measures one push.
func BenchmarkIdlePush(b *testing.B) {
	for _, mode := range []string{"rev1", "rev2", "rev2-compress", "rev2-notify"} {
		b.Run(mode, func(b *testing.B) {
			ts := newTestServer(b)
			acct := ts.addUser("alice@example.org")
			c, r := benchLogin(b, ts)
			defer c.Close()
			var w io.Writer = c
			var flush func()
			if mode != "rev1" {
				rawRun(b, w, r, "e", "ENABLE IMAP4rev2")
			}
			if mode == "rev2-compress" {
				rawRun(b, w, r, "z", "COMPRESS DEFLATE")
				fw, _ := flate.NewWriter(c, flate.BestSpeed)
				w, flush = fw, func() { fw.Flush() }
				r = bufio.NewReaderSize(flate.NewReader(c), 64<<10)
			}
			cmd := func(tag, line string) {
				io.WriteString(w, tag+" "+line+"\r\n")
				if flush != nil {
					flush()
				}
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						b.Fatal(err)
					}
					if strings.HasPrefix(l, tag+" ") || strings.HasPrefix(l, "+ ") {
						return
					}
				}
			}
			cmd("s", "SELECT INBOX")
			if mode == "rev2-notify" {
				cmd("n", "NOTIFY SET (selected (MessageNew MessageExpunge))")
			} else {
				cmd("i", "IDLE")
			}
			ctx := context.Background()
			mb, _ := ts.st.Mailbox(ctx, acct, "INBOX")
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				time.Sleep(5 * time.Millisecond)
				staged, err := ts.st.Stage(ctx, strings.NewReader("Subject: push\r\n\r\nx\r\n"), 0)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := ts.st.Append(ctx, acct, mb.ID, []store.NewMessage{{Body: staged}}); err != nil {
					b.Fatal(err)
				}
				committed := time.Now()
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						b.Fatal(err)
					}
					if strings.HasSuffix(l, " EXISTS\r\n") {
						break
					}
				}
				total += time.Since(committed)
				staged.Discard()
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs-commit-to-client")
		})
	}
}

// BenchmarkNoopRoundTrip: clients that send NOOP and wait for its
// response, one at a time each (RunParallel: 8×GOMAXPROCS clients).
// Between two commands a plaintext session waits: "default" in a read for
// up to defaultParkAfter, then parked (so here it never parks);
// "park-at-once" parks at every wait and is resumed through the poller;
// "blocking" never parks, as TLS sessions. The difference between the
// last two is the cost of parking per command.
func BenchmarkNoopRoundTrip(b *testing.B) {
	for _, mode := range []string{"default", "park-at-once", "blocking"} {
		b.Run(mode, func(b *testing.B) {
			ts := newTestServerWith(b, func(s *Server) {
				s.parking = mode != "blocking"
				s.parkAfter = defaultParkAfter
				if mode == "park-at-once" {
					s.parkAfter = 0
				}
			})
			ts.addUser("alice@example.org")
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c, r := benchLogin(b, ts)
				defer c.Close()
				for pb.Next() {
					if _, err := io.WriteString(c, "n NOOP\r\n"); err != nil {
						b.Error(err)
						return
					}
					if _, err := r.ReadSlice('\n'); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkIdlePushFanout: 100 IMAP4rev2 sessions of one account in
// IDLE; each delivery is timed from its commit until the last of them has
// its EXISTS ("µs-to-last") and on average ("µs-mean"). "parked": the
// sessions wait parked (park.go); "blocking": in a read.
func BenchmarkIdlePushFanout(b *testing.B) {
	const n = 100
	for _, mode := range []string{"parked", "blocking"} {
		b.Run(mode, func(b *testing.B) {
			ts := newTestServerWith(b, func(s *Server) { s.parking = mode == "parked" })
			acct := ts.addUser("alice@example.org")
			type sess struct {
				c net.Conn
				r *bufio.Reader
			}
			sessions := make([]sess, n)
			for i := range sessions {
				c, r := benchLogin(b, ts)
				defer c.Close()
				rawRun(b, c, r, "e", "ENABLE IMAP4rev2")
				rawRun(b, c, r, "s", "SELECT INBOX")
				io.WriteString(c, "i IDLE\r\n")
				if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+ ") {
					b.Fatalf("IDLE: %q %v", l, err)
				}
				sessions[i] = sess{c, r}
			}
			ctx := context.Background()
			mb, _ := ts.st.Mailbox(ctx, acct, "INBOX")
			arrived := make(chan time.Time, n)
			var last, sum time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if mode == "parked" {
					for ts.srv.parkedCount() != n {
						time.Sleep(time.Millisecond)
					}
				} else {
					time.Sleep(20 * time.Millisecond)
				}
				staged, err := ts.st.Stage(ctx, strings.NewReader("Subject: push\r\n\r\nx\r\n"), 0)
				if err != nil {
					b.Fatal(err)
				}
				for _, s := range sessions {
					go func() {
						for {
							l, err := s.r.ReadString('\n')
							if err != nil {
								arrived <- time.Time{}
								return
							}
							if strings.HasSuffix(l, " EXISTS\r\n") {
								arrived <- time.Now()
								return
							}
						}
					}()
				}
				b.StartTimer()
				if _, err := ts.st.Append(ctx, acct, mb.ID, []store.NewMessage{{Body: staged}}); err != nil {
					b.Fatal(err)
				}
				committed := time.Now()
				var max time.Duration
				for range n {
					at := <-arrived
					if at.IsZero() {
						b.Fatal("session ended")
					}
					d := at.Sub(committed)
					sum += d
					if d > max {
						max = d
					}
				}
				last += max
				staged.Discard()
			}
			b.ReportMetric(float64(last.Microseconds())/float64(b.N), "µs-to-last")
			b.ReportMetric(float64(sum.Microseconds())/float64(b.N*n), "µs-mean")
		})
	}
}

// BenchmarkIdleMemory opens 2,000 sessions that log in, select INBOX and
// wait, and reports the Go heap and stack growth per session: in IDLE;
// with NOTIFY between commands; in IDLE over COMPRESS=DEFLATE. The clients
// run in the same process (one net.Conn each, no goroutine, no buffer;
// the compressing clients share one compressor and keep no inflater), so
// the figure slightly over-counts the server's cost.
func BenchmarkIdleMemory(b *testing.B) {
	for _, mode := range []string{"idle", "notify", "compress-idle"} {
		b.Run(mode, func(b *testing.B) { benchIdleMemory(b, mode) })
	}
}

func benchIdleMemory(b *testing.B, mode string) {
	const n = 2000
	ts := newTestServer(b)
	ts.addUser("alice@example.org")
	for i := 0; i < 50; i++ {
		ts.deliver(1, "INBOX", msg(fmt.Sprintf("m%d", i), "x"))
	}
	fw, _ := flate.NewWriter(io.Discard, flate.BestSpeed)
	for i := 0; i < b.N; i++ {
		before := memInUse()
		conns := make([]net.Conn, 0, n)
		buf := make([]byte, 4096)
		readUntil := func(r io.Reader, want string) {
			var got []byte
			for !bytes.Contains(got, []byte(want)) {
				k, err := r.Read(buf)
				if err != nil {
					b.Fatal(err)
				}
				got = append(got, buf[:k]...)
			}
		}
		for range n {
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				b.Fatal(err)
			}
			login := "L LOGIN alice@example.org \"" + testPassword + "\"\r\n"
			switch mode {
			case "idle":
				io.WriteString(c, login+"s SELECT INBOX\r\ni IDLE\r\n")
				readUntil(c, "\r\n+ idling\r\n")
			case "notify":
				io.WriteString(c, login+"s SELECT INBOX\r\nn NOTIFY SET (selected (MessageNew MessageExpunge)) (personal (MessageNew MessageExpunge))\r\n")
				readUntil(c, "\r\nn OK NOTIFY completed\r\n")
			case "compress-idle":
				io.WriteString(c, login+"z COMPRESS DEFLATE\r\n")
				readUntil(c, "\r\nz OK DEFLATE active\r\n")
				fw.Reset(c)
				io.WriteString(fw, "s SELECT INBOX\r\ni IDLE\r\n")
				fw.Flush()
				readUntil(flate.NewReader(c), "\r\n+ idling\r\n")
			}
			conns = append(conns, c)
		}
		fw.Reset(io.Discard)
		time.Sleep(200 * time.Millisecond)
		after := memInUse()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(after-before)/n, "bytes/idle-session")
		b.ReportMetric(float64(ms.StackInuse)/n, "stack-bytes/session")
		b.ReportMetric(float64(runtime.NumGoroutine())/n, "goroutines/session")
		for _, c := range conns {
			c.Close()
		}
	}
}

// memInUse returns heap and stack bytes in use after a few collections
// (each may halve a goroutine stack that is mostly unused).
func memInUse() int64 {
	for range 12 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// BenchmarkQResync100k is issue 4's scenario 6: a device offline through
// 1,000 changes (900 flag changes, 100 expunges) in a 100,000-message
// mailbox resyncs in one QRESYNC SELECT. It reports the time and the
// bytes of the SELECT response.
func BenchmarkQResync100k(b *testing.B) {
	ts := newTestServer(b)
	acct := ts.addUser("alice@example.org")
	ts.fill(b, acct, 100000)
	c, r := benchLogin(b, ts)
	defer c.Close()
	rawRun(b, c, r, "e", "ENABLE QRESYNC")
	io.WriteString(c, "s SELECT INBOX\r\n")
	var uv, hms string
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if v, ok := strings.CutPrefix(l, "* OK [UIDVALIDITY "); ok {
			uv, _, _ = strings.Cut(v, "]")
		}
		if v, ok := strings.CutPrefix(l, "* OK [HIGHESTMODSEQ "); ok {
			hms, _, _ = strings.Cut(v, "]")
		}
		if strings.HasPrefix(l, "s OK") {
			break
		}
	}
	// The changes, made by another device.
	o, or := benchLogin(b, ts)
	defer o.Close()
	rawRun(b, o, or, "s", "SELECT INBOX")
	for i := 0; i < 900; i++ {
		rawRun(b, o, or, "f", fmt.Sprintf("UID STORE %d +FLAGS.SILENT (\\Flagged)", 1+i*111))
	}
	for i := 0; i < 100; i++ {
		rawRun(b, o, or, "d", fmt.Sprintf("UID STORE %d +FLAGS.SILENT (\\Deleted)", 50+i*997))
	}
	rawRun(b, o, or, "x", "EXPUNGE")
	rawRun(b, c, r, "u", "UNSELECT")
	b.ResetTimer()
	var n int
	for i := 0; i < b.N; i++ {
		n = rawRun(b, c, r, "q", "SELECT INBOX (QRESYNC ("+uv+" "+hms+"))")
		b.StopTimer()
		rawRun(b, c, r, "u", "UNSELECT")
		b.StartTimer()
	}
	b.ReportMetric(float64(n), "response-bytes")
}

// BenchmarkMailboxCache100k measures the mailbox cache of a
// 100,000-message INBOX (mbcache.go): the memory it takes once loaded
// (heap growth per message), and a search of every message's flags
// answered from it, as each of several devices' SEARCH UNSEEN is.
func BenchmarkMailboxCache100k(b *testing.B) {
	ts := newTestServer(b)
	acct := ts.addUser("alice@example.org")
	ts.fill(b, acct, 100000)
	c, r := benchLogin(b, ts)
	defer c.Close()
	rawRun(b, c, r, "s", "SELECT INBOX")
	before := memInUse()
	rawRun(b, c, r, "f", "SEARCH SEEN") // loads the cache
	after := memInUse()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rawRun(b, c, r, "u", "UID SEARCH UNSEEN")
	}
	b.ReportMetric(float64(after-before)/100000, "cache-bytes/msg")
}
