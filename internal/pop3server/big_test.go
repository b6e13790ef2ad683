package pop3server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// genMessage is a deterministic message of about size octets with CRLF
// line endings, some of whose lines begin with ".", produced as a stream.
type genMessage struct {
	rnd     *rand.Rand
	left    int
	pending []byte
	header  bool
}

func newGenMessage(seed uint64, size int, subject string) *genMessage {
	g := &genMessage{rnd: rand.New(rand.NewPCG(seed, 1)), left: size}
	g.pending = []byte("From: gen@example.net\r\nTo: " + testUser + "\r\nSubject: " + subject + "\r\n\r\n")
	g.left -= len(g.pending)
	return g
}

func (g *genMessage) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(g.pending) == 0 {
			if g.left <= 0 {
				break
			}
			l := min(76, max(g.left-2, 0))
			line := make([]byte, 0, l+2)
			for i := range l {
				line = append(line, byte('a'+(g.rnd.IntN(26)+i)%26))
			}
			if l > 0 && g.rnd.IntN(20) == 0 {
				line[0] = '.' // needs byte-stuffing
			}
			line = append(line, '\r', '\n')
			g.left -= len(line)
			g.pending = line
		}
		c := copy(p[n:], g.pending)
		g.pending = g.pending[c:]
		n += c
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// stage stores a generated message and returns the staged body and the
// SHA-256 of its content.
func stageGen(tb testing.TB, st store.Store, seed uint64, size int, subject string) (store.Staged, [32]byte) {
	tb.Helper()
	h := sha256.New()
	staged, err := st.Stage(context.Background(), io.TeeReader(newGenMessage(seed, size, subject), h), 0)
	if err != nil {
		tb.Fatal(err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return staged, sum
}

// readMessage reads a RETR response body without holding it: it returns
// the octets after unstuffing and their SHA-256.
func readMessage(tb testing.TB, r *bufio.Reader) (int64, [32]byte) {
	tb.Helper()
	h := sha256.New()
	var n int64
	bol := true
	for {
		chunk, err := r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			tb.Fatalf("read: %v", err)
		}
		if bol && string(chunk) == ".\r\n" {
			break
		}
		if bol && len(chunk) > 0 && chunk[0] == '.' {
			chunk = chunk[1:]
		}
		h.Write(chunk)
		n += int64(len(chunk))
		bol = err == nil
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return n, sum
}

// TestRetrBigMessageStreams: a 20 MB message is sent intact, with the size
// LIST announced, and without the server holding it in memory: the whole
// process allocates far less during the RETR than the message's size.
// (Not parallel: the allocation count is process-wide.)
func TestRetrBigMessageStreams(t *testing.T) {
	e := newEnv(t, envOptions{})
	const size = 20 << 20
	staged, sum := stageGen(t, e.st, 42, size, "big")
	if _, err := e.st.Append(context.Background(), e.acct.ID, e.inbox, []store.NewMessage{{Body: staged}}); err != nil {
		t.Fatal(err)
	}
	staged.Discard()
	c := e.login(testUser)
	c.cmd("LIST 1", "+OK 1 "+strconv.Itoa(size))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c.cmd("RETR 1", fmt.Sprintf("+OK %d octets", size))
	n, got := readMessage(t, c.r)
	runtime.ReadMemStats(&after)

	if n != size || got != sum {
		t.Fatalf("RETR sent %d octets (want %d), content intact: %v", n, size, got == sum)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d bytes during the RETR of %d octets", alloc, size)
	if alloc > size/4 {
		t.Errorf("RETR of a %d-octet message allocated %d bytes: not streaming", size, alloc)
	}
	c.cmd("QUIT", "+OK")
	if !e.message(1).Flags.Has(mail.FlagSeen) {
		t.Error("not \\Seen")
	}
}

// refStuff is the line-by-line reference of a RETR response body: every
// line that begins with "." gets another, a last line without a line feed
// is ended, and "." CRLF follows.
func refStuff(in string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(in, "\n") {
		if l == "" {
			continue
		}
		if l[0] == '.' {
			b.WriteByte('.')
		}
		b.WriteString(l)
	}
	if in != "" && !strings.HasSuffix(in, "\n") {
		b.WriteString("\r\n")
	}
	return b.String() + ".\r\n"
}

// TestStuffer checks byte-stuffing across chunk boundaries against a
// line-by-line reference.
func TestStuffer(t *testing.T) {
	ref := refStuff
	inputs := []string{
		"a\r\n", ".\r\n", "..\r\n", "a\r\n.b\r\n", "x", ".x", "a\n.b\n", "\r\n.\r\n.\r\n",
		strings.Repeat(".", copyBufSize) + "\r\n." + strings.Repeat("z", copyBufSize-1) + "\r\n.",
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var b strings.Builder
		for range rnd.IntN(50) {
			b.WriteString([]string{".", "\r\n", "a", "\n", ".."}[rnd.IntN(5)])
		}
		if b.Len() > 0 {
			inputs = append(inputs, b.String())
		}
	}
	for _, in := range inputs {
		for _, chunk := range []int{1, 2, 3, 7, 64 << 10} {
			var out strings.Builder
			w := bufio.NewWriter(&out)
			s := stuffer{w: w, bol: true}
			for i := 0; i < len(in); i += chunk {
				s.write([]byte(in[i:min(i+chunk, len(in))]))
			}
			s.finish()
			w.Flush()
			if got, want := out.String(), ref(in); got != want {
				t.Fatalf("stuff(%q) in chunks of %d = %q, want %q", in, chunk, got, want)
			}
		}
	}
}

// appendRaw stores raw as a message in INBOX and returns its UID.
func (e *env) appendRaw(raw string) mail.UID {
	e.t.Helper()
	staged, err := e.st.Stage(context.Background(), strings.NewReader(raw), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer staged.Discard()
	res, err := e.st.Append(context.Background(), e.acct.ID, e.inbox, []store.NewMessage{{Body: staged}})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.UIDs[0]
}

// TestRetrSendfile: a body in a file whose dot lines the store knows is
// sent with sendfile(2) on a plain connection, the stuffing dots written
// between the pieces; over TLS, and with more dot lines than
// sendfileMaxDots, it is scanned instead. Every way gives the same bytes.
// (Not parallel: it counts the server's sendfile bodies.)
func TestRetrSendfile(t *testing.T) {
	e := newEnv(t, envOptions{})
	filler := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 3000)
	bodies := []struct {
		raw      string
		sendfile bool
	}{
		{".first line\r\nSubject: one\r\n\r\n" + filler + ".\r\n..\r\n.x\r\n" + filler + ".no line feed at the end", true},
		{"Subject: two\r\n\r\n" + filler, true},
		{"Subject: three\r\n\r\n" + strings.Repeat(".\r\n", sendfileMaxDots+1) + filler, false},
		{"Subject: four\r\n\r\n" + strings.Repeat(".\r\n", sendfileMaxDots-1) + filler + ".", true},
		// Dot lines where the pieces meet the 64 KiB of a splice and the
		// 256 KiB of one sendfile(2) call (netserve.SendFile), two in a
		// row, and one last.
		{dotsAt([]int{64 << 10, 256 << 10, 256<<10 + 3, 512 << 10}, 512<<10+100) + ".\r\n", true},
	}
	for _, b := range bodies {
		e.appendRaw(b.raw)
	}
	for _, tls := range []bool{false, true} {
		var c *client
		if tls {
			c = e.dialTLS()
			c.cmd("USER "+testUser, "+OK")
			c.cmd("PASS "+testPassword, "+OK")
		} else {
			c = e.login(testUser)
		}
		for i, b := range bodies {
			before := e.srv.sentByFile.Load()
			c.cmd(fmt.Sprintf("RETR %d", i+1), fmt.Sprintf("+OK %d octets", len(b.raw)))
			if got := string(c.multiWire()); got != refStuff(b.raw) {
				t.Errorf("tls %v: RETR %d: response differs from the reference stuffing (%d octets, want %d)", tls, i+1, len(got), len(refStuff(b.raw)))
			}
			if used, want := e.srv.sentByFile.Load() > before, b.sendfile && !tls; used != want {
				t.Errorf("tls %v: RETR %d: sent with sendfile: %v, want %v", tls, i+1, used, want)
			}
		}
		c.cmd("RSET", "+OK")
		c.cmd("QUIT", "+OK")
	}
}

// dotsAt returns a message of size octets whose lines at the offsets in at
// (ascending, past the header, at least 2 apart) are ".\r\n".
func dotsAt(at []int, size int) string {
	var b strings.Builder
	b.WriteString("Subject: dots at the seams\r\n\r\n")
	fill := func(to int) {
		for rem := to - b.Len(); rem > 0; rem = to - b.Len() {
			l := min(rem, 66) // a line of l octets with its CRLF, never leaving 1
			if rem-l == 1 {
				l--
			}
			b.WriteString(strings.Repeat("x", l-2) + "\r\n")
		}
	}
	for _, off := range at {
		fill(off)
		b.WriteString(".\r\n")
	}
	fill(size)
	return b.String()
}

// TestRetrTruncatedBodyFile: a body file shorter than its record is
// refused with a clear -ERR (the stored copy is damaged; retrying will not
// help, so no [SYS/TEMP]) rather than sent short as if it were whole, and
// the session goes on.
func TestRetrTruncatedBodyFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	raw := "Subject: short\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 4000)
	e.appendRaw(raw)
	e.deliver(msgA)
	truncated := 0
	err := filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if info, err := d.Info(); err == nil && info.Size() == int64(len(raw)) {
			truncated++
			return os.Truncate(path, int64(len(raw)/2))
		}
		return nil
	})
	if err != nil || truncated != 1 {
		t.Fatalf("truncating the body file: %v (%d files)", err, truncated)
	}
	c := e.login(testUser)
	c.cmd("RETR 1", "-ERR Message 1 cannot be sent: its stored copy is damaged")
	c.cmd("RETR 2", "+OK")
	if got := string(c.multiRaw()); got != crlf(msgA) {
		t.Errorf("RETR 2 = %q", got)
	}
	c.cmd("QUIT", "+OK")
	if e.message(1).Flags.Has(mail.FlagSeen) || !e.message(2).Flags.Has(mail.FlagSeen) {
		t.Error("the refused RETR marked its message \\Seen, or the other one was not")
	}
	if !strings.Contains(e.logs.String(), "the store recorded") {
		t.Errorf("the damaged body is not logged:\n%s", e.logs.String())
	}
}
