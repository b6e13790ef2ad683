package pop3server

import (
	"bufio"
	"context"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// BenchmarkRetrieve1000 is issue 5's figure: one client retrieves a
// maildrop of 1,000 messages of 55 KB on average (55 MB): LIST, UIDL, RETR
// of each, QUIT; the login is not counted. RETR marks every message \Seen
// (the flags are cleared again between runs, outside the timer), so the
// figure includes the flag commits.
//
//	go test -run '^$' -bench Retrieve1000 -benchtime 10x ./internal/pop3server/
func BenchmarkRetrieve1000(b *testing.B) {
	e := newEnv(b, envOptions{opts: func(o *Options) { o.MarkSeen = os.Getenv("POP3_BENCH_NOSEEN") == "" }})
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(55, 1000))
	var total int64
	const n = 1000
	for i := 0; i < n; i += 100 {
		var batch []store.NewMessage
		for j := range 100 {
			size := 5000 + rnd.IntN(100001) // 5 to 105 KB, 55 KB on average
			staged, _ := stageGen(b, e.st, uint64(i+j), size, "bench "+strconv.Itoa(i+j))
			defer staged.Discard()
			batch = append(batch, store.NewMessage{Body: staged})
			total += staged.Size()
		}
		if _, err := e.st.Append(ctx, e.acct.ID, e.inbox, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("maildrop: %d messages, %d octets", n, total)
	for _, pipelined := range []bool{false, true} {
		name := "sequential"
		if pipelined {
			name = "pipelined"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				if _, err := e.st.StoreFlags(ctx, e.acct.ID, e.inbox, store.StoreFlagsRequest{
					UIDs: mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}, Op: store.FlagsRemove, Flags: mail.Flags{mail.FlagSeen},
				}); err != nil {
					b.Fatal(err)
				}
				c := benchLogin(b, e.addr)
				b.StartTimer()
				got := c.retrieveAll(pipelined)
				b.StopTimer()
				c.conn.Close()
				if got != total {
					b.Fatalf("retrieved %d octets, want %d", got, total)
				}
				b.StartTimer()
			}
		})
	}
}

// benchClient is a lean POP3 client: no per-line allocations.
type benchClient struct {
	tb   testing.TB
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

func benchLogin(tb testing.TB, addr string) *benchClient {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Minute))
	c := &benchClient{tb: tb, conn: conn, r: bufio.NewReaderSize(conn, 64<<10), w: bufio.NewWriterSize(conn, 4096)}
	c.status()
	c.send("USER " + testUser)
	c.send("PASS " + testPassword)
	c.flush()
	c.status()
	c.status()
	return c
}

func (c *benchClient) send(cmd string) {
	c.w.WriteString(cmd)
	c.w.WriteString("\r\n")
}

func (c *benchClient) flush() {
	if err := c.w.Flush(); err != nil {
		c.tb.Fatal(err)
	}
}

// status reads a status line and fails on -ERR.
func (c *benchClient) status() []byte {
	l, err := c.r.ReadSlice('\n')
	if err != nil {
		c.tb.Fatalf("read: %v", err)
	}
	if len(l) < 3 || string(l[:3]) != "+OK" {
		c.tb.Fatalf("got %q", l)
	}
	return l
}

// body reads a multi-line body and returns its unstuffed octets.
func (c *benchClient) body() int64 {
	var n int64
	bol := true
	for {
		chunk, err := c.r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			c.tb.Fatalf("read: %v", err)
		}
		if bol && len(chunk) == 3 && chunk[0] == '.' && chunk[1] == '\r' {
			return n
		}
		if bol && len(chunk) > 0 && chunk[0] == '.' {
			n--
		}
		n += int64(len(chunk))
		bol = err == nil
	}
}

// retrieveAll runs LIST, UIDL, RETR of every message and QUIT, and
// returns the octets of the messages.
func (c *benchClient) retrieveAll(pipelined bool) int64 {
	c.send("LIST")
	c.send("UIDL")
	c.flush()
	c.status()
	c.body() // the LIST
	c.status()
	var msgs int
	for {
		l, err := c.r.ReadSlice('\n')
		if err != nil {
			c.tb.Fatal(err)
		}
		if string(l) == ".\r\n" {
			break
		}
		msgs++
	}
	var total int64
	if pipelined {
		for i := 1; i <= msgs; i++ {
			c.send("RETR " + strconv.Itoa(i))
		}
		c.send("QUIT")
		c.flush()
		for range msgs {
			c.status()
			total += c.body()
		}
	} else {
		for i := 1; i <= msgs; i++ {
			c.send("RETR " + strconv.Itoa(i))
			c.flush()
			c.status()
			total += c.body()
		}
		c.send("QUIT")
		c.flush()
	}
	if l := c.status(); !strings.HasPrefix(string(l), "+OK Bye") {
		c.tb.Fatalf("QUIT: %q", l)
	}
	return total
}
