package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/testenv"
)

// BenchmarkLMTPDelivery delivers 2 KB messages over 8 concurrent LMTP
// connections to the whole server (SQLite store, fsync on), as issue 2's
// first delivery benchmark asks. Run:
//
//	go test -run '^$' -bench LMTPDelivery -benchtime 20000x ./internal/server
func BenchmarkLMTPDelivery(b *testing.B) {
	const conns = 8
	env := testenv.Start(b, testenv.Options{})
	for i := range 10 {
		env.AddUser(fmt.Sprintf("user%d@example.org", i), "pw")
	}
	body := "From: bench@remote.example\r\nSubject: benchmark\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 25)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, conns)
	b.ResetTimer()
	start := time.Now()
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := benchConn(env.Addr("lmtp"), w, body, func() bool { return next.Add(1) <= int64(b.N) }); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errc)
	for err := range errc {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

func benchConn(addr string, w int, body string, more func() bool) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	expect := func(want string) error {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if len(line) >= 4 && line[3] == '-' {
				continue
			}
			if !strings.HasPrefix(line, want) {
				return fmt.Errorf("got %q, want %q", line, want)
			}
			return nil
		}
	}
	send := func(s, want string) error {
		if _, err := io.WriteString(c, s); err != nil {
			return err
		}
		return expect(want)
	}
	if err := expect("220"); err != nil {
		return err
	}
	if err := send("LHLO bench\r\n", "250"); err != nil {
		return err
	}
	for i := 0; more(); i++ {
		rcpt := fmt.Sprintf("user%d@example.org", (w+i)%10)
		if err := send("MAIL FROM:<bench@remote.example>\r\n", "250"); err != nil {
			return err
		}
		if err := send("RCPT TO:<"+rcpt+">\r\n", "250"); err != nil {
			return err
		}
		if err := send("DATA\r\n", "354"); err != nil {
			return err
		}
		if err := send(body+".\r\n", "250"); err != nil {
			return err
		}
	}
	return send("QUIT\r\n", "221")
}
