//go:build linux

package pop3server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// segmentClient is a client whose socket counts the TCP segments it
// receives (TCP_INFO, tcp(7)). Its receive buffer is fixed at 4 MiB before
// it connects, so that the window never cuts a segment short and every
// segment below the MSS is one the server pushed.
type segmentClient struct {
	*client
	tcp *net.TCPConn
}

func (e *env) dialSegments(useTLS bool) *segmentClient {
	e.t.Helper()
	d := net.Dialer{Control: func(_, _ string, raw syscall.RawConn) error {
		var serr error
		err := raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	var conn net.Conn
	var err error
	if useTLS {
		conn, err = tls.DialWithDialer(&d, "tcp", e.tlsAddr, &tls.Config{InsecureSkipVerify: true})
	} else {
		conn, err = d.DialContext(context.Background(), "tcp", e.addr)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	under := conn
	if tc, ok := conn.(*tls.Conn); ok {
		under = tc.NetConn()
	}
	return &segmentClient{client: newClient(e.t, conn), tcp: under.(*net.TCPConn)}
}

// info returns the socket's segments and octets received so far and its
// MSS.
func (c *segmentClient) info() (segs uint32, octets uint64, mss uint32) {
	c.t.Helper()
	raw, err := c.tcp.SyscallConn()
	if err != nil {
		c.t.Fatal(err)
	}
	var ti *unix.TCPInfo
	var serr error
	if err := raw.Control(func(fd uintptr) { ti, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil || serr != nil {
		c.t.Fatalf("TCP_INFO: %v %v", err, serr)
	}
	return ti.Segs_in, ti.Bytes_received, ti.Snd_mss
}

// TestRetrFullSegments: the reply to a RETR of a large message reaches the
// client in full TCP segments, plus at most a short last one, whichever
// way the body goes out: with sendfile(2) in pieces between stuffing dots,
// scanned from a file with many dot lines, from memory, and under TLS
// (records of 16 KiB, one write each). Before the reply was corked, a
// lone status line, the 53 octets left over from every 64 KiB splice,
// every stuffing dot and the terminator each went out as a segment of its
// own, and each TLS record too. The bytes are the reference stuffing.
// (Not parallel: it counts the server's sendfile bodies.)
func TestRetrFullSegments(t *testing.T) {
	e := newEnv(t, envOptions{})
	line := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n"
	var few strings.Builder // a dot line every 64 KiB or so: sent with sendfile
	few.WriteString("Subject: few dots\r\n\r\n")
	for i := 0; few.Len() < 1<<20; i++ {
		if i%1000 == 999 {
			few.WriteString(".dot line\r\n")
		}
		few.WriteString(line)
	}
	var many strings.Builder // more dot lines than sendfileMaxDots: scanned
	many.WriteString("Subject: many dots\r\n\r\n")
	for i := 0; many.Len() < 1<<20; i++ {
		if i%100 == 0 {
			many.WriteString(".\r\n")
		}
		many.WriteString(line)
	}
	bodies := []string{
		few.String(),
		many.String(),
		"Subject: inline\r\n\r\n.first\r\n" + strings.Repeat(line, 1500) + ".", // kept in the database
	}
	for _, b := range bodies {
		e.appendRaw(b)
	}
	for _, useTLS := range []bool{false, true} {
		c := e.dialSegments(useTLS)
		c.cmd("USER "+testUser, "+OK")
		c.cmd("PASS "+testPassword, "+OK")
		for i, b := range bodies {
			before := e.srv.sentByFile.Load()
			segs0, octets0, mss := c.info()
			c.cmd(fmt.Sprintf("RETR %d", i+1), fmt.Sprintf("+OK %d octets", len(b)))
			if got := string(c.multiWire()); got != refStuff(b) {
				t.Fatalf("tls %v: RETR %d: response differs from the reference stuffing (%d octets, want %d)", useTLS, i+1, len(got), len(refStuff(b)))
			}
			segs1, octets1, _ := c.info()
			segs, octets := segs1-segs0, octets1-octets0
			full := (octets + uint64(mss) - 1) / uint64(mss)
			// Slack: an ACK of the command sent apart from the reply, and
			// the kernel's 200 ms limit on a corked segment if the
			// server stalls.
			if uint64(segs) > full+3 {
				t.Errorf("tls %v: RETR %d: %d octets in %d segments, want at most %d (MSS %d)", useTLS, i+1, octets, segs, full+3, mss)
			}
			if i == 0 && !useTLS && e.srv.sentByFile.Load() == before {
				t.Error("RETR 1 was not sent with sendfile")
			}
		}
		c.cmd("QUIT", "+OK")
	}
}
