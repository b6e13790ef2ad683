package imap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// serveTestConn is a minimal session over a real connection: enough of a
// server to check the literal and continuation dance, streaming APPEND,
// refusals before data, IDLE and resynchronisation.
func serveTestConn(conn net.Conn, appendLimit int64) error {
	defer conn.Close()
	w := bufio.NewWriter(conn)
	enc := NewEncoder(w)
	r := NewReader(bufio.NewReader(conn), func() error {
		return enc.ContinuationRequest("Ready for literal data")
	}, Options{MaxAppend: 100 << 20, LiteralMinus: true})
	enc.StatusResponse("", OK, "", "test server ready")
	enc.Flush()
	for {
		cmd, err := r.ReadCommand()
		var pe *ParseError
		if errors.As(err, &pe) {
			enc.ErrorResponse(pe)
			enc.Flush()
			if pe.Fatal {
				return nil
			}
			continue
		}
		if err != nil {
			return err
		}
		switch c := cmd.(type) {
		case *Login:
			enc.StatusResponse(c.Tag, OK, "", fmt.Sprintf("user %q password %d bytes", c.Username, len(c.Password)))
		case *Append:
			total := int64(0)
			for {
				m, err := c.Next()
				if err != nil {
					enc.ErrorResponse(err.(*ParseError))
					break
				}
				if m == nil {
					enc.StatusResponse(c.Tag, OK, "", fmt.Sprintf("stored %d bytes", total))
					break
				}
				if m.Literal.Size > appendLimit {
					enc.StatusResponse(c.Tag, NO, "TOOBIG", "message too big")
					enc.Flush()
					if err := c.Abort(); err != nil {
						return err
					}
					break
				}
				rd, err := m.Literal.Open()
				if err != nil {
					return err
				}
				n, err := io.Copy(io.Discard, rd)
				if err != nil {
					return err
				}
				total += n
			}
		case *Idle:
			enc.ContinuationRequest("idling")
			enc.Untagged().Number(1).Atom("EXISTS").End()
			enc.Flush()
			if err := r.ReadDone(); err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) {
					return err
				}
				enc.StatusResponse(c.Tag, BAD, "", pe.Reason)
				break
			}
			enc.StatusResponse(c.Tag, OK, "", "IDLE terminated")
		case *Logout:
			enc.StatusResponse("", BYE, "", "bye")
			enc.StatusResponse(c.Tag, OK, "", "LOGOUT completed")
			return enc.Flush()
		default:
			enc.StatusResponse(c.Base().Tag, OK, "", c.Base().Name+" completed")
		}
		if err := enc.Flush(); err != nil {
			return err
		}
	}
}

// testClient speaks to serveTestConn like a careful client: it sends the
// data of a synchronizing literal only after the continuation request.
type testClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func (c *testClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

func (c *testClient) expect(want string) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading %q: %v", want, err)
	}
	if got := strings.TrimSuffix(line, "\r\n"); got != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

// sendLiteral sends n bytes of x from a fixed buffer.
func (c *testClient) sendLiteral(n int64) {
	c.t.Helper()
	buf := []byte(strings.Repeat("x", 32<<10))
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := c.conn.Write(buf[:k]); err != nil {
			c.t.Fatal(err)
		}
		n -= k
	}
}

func TestTranscriptLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		done <- serveTestConn(conn, 30<<20)
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &testClient{t: t, conn: conn, br: bufio.NewReader(conn)}
	c.expect("* OK test server ready")

	// RFC 9051 §7.6: the literal dance of LOGIN.
	c.send("A001 LOGIN {11}\r\n")
	c.expect("+ Ready for literal data")
	c.send("FRED FOOBAR {7}\r\n")
	c.expect("+ Ready for literal data")
	c.send("fat man\r\n")
	c.expect(`A001 OK user "FRED FOOBAR" password 7 bytes`)

	// RFC 7888 §3: non-synchronizing literals need no round trip.
	c.send("A002 LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man\r\n")
	c.expect(`A002 OK user "FRED FOOBAR" password 7 bytes`)

	// RFC 9051 §7.6: a command rejected at its literal; the client
	// does not send the data.
	c.send("A044 BLURDYBLOOP {102856}\r\n")
	c.expect("A044 BAD unknown command")

	// A 20 MB APPEND streams without being held in memory.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const big = 20 << 20
	c.send(fmt.Sprintf("A003 APPEND INBOX (\\Seen) {%d}\r\n", big))
	c.expect("+ Ready for literal data")
	c.sendLiteral(big)
	c.send("\r\n")
	c.expect(fmt.Sprintf("A003 OK stored %d bytes", big))
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > big/4 {
		t.Errorf("APPEND of %d bytes allocated %d bytes", big, grew)
	}

	// Over the server's limit: NO [TOOBIG] instead of a continuation
	// (RFC 7889), and the session goes on.
	c.send("A004 APPEND INBOX {40000000}\r\n")
	c.expect("A004 NO [TOOBIG] message too big")

	// MULTIAPPEND with a non-synchronizing literal (LITERAL-: up to 4096).
	c.send("A005 APPEND INBOX {5+}\r\nhello (\\Draft) {3}\r\n")
	c.expect("+ Ready for literal data")
	c.send("abc\r\n")
	c.expect("A005 OK stored 8 bytes")

	// LITERAL- violation: BAD [TOOBIG]; the data is skipped.
	c.send("A006 APPEND INBOX {5000+}\r\n")
	c.sendLiteral(5000)
	c.send("\r\n")
	c.expect("A006 BAD [TOOBIG] non-synchronizing literal larger than 4096 bytes")

	// IDLE, updates, DONE.
	c.send("A007 IDLE\r\n")
	c.expect("+ idling")
	c.expect("* 1 EXISTS")
	c.send("DONE\r\n")
	c.expect("A007 OK IDLE terminated")

	// Pipelined commands.
	c.send("A008 NOOP\r\nA009 CHECK\r\n")
	c.expect("A008 OK NOOP completed")
	c.expect("A009 OK CHECK completed")

	c.send("A010 LOGOUT\r\n")
	c.expect("* BYE bye")
	c.expect("A010 OK LOGOUT completed")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
