package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// seqField is the header field the submission workload puts first in
// each message: "X-Bench-Seq: RUN-CLIENT-K", so the sink can tell this
// run's messages, their submission and their duplicates.
const seqField = "X-Bench-Seq: "

// Sink is an SMTP server (RFC 5321) on loopback that takes every message
// and answers 250 after its data, without storing it. The server under
// test delivers its outbound mail to it (its relay, or the MX host its
// test DNS names); the sink records when each of this run's messages
// arrived. It offers PIPELINING, 8BITMIME and SMTPUTF8, not STARTTLS or
// CHUNKING.
type Sink struct {
	ln  net.Listener
	run string // this run's prefix in seqField values
	wg  sync.WaitGroup

	total atomic.Int64 // 250s after data, of any run
	stray atomic.Int64 // messages without this run's seqField

	mu       sync.Mutex // guards the fields below
	arrivals map[string]time.Time
	signed   int64 // arrivals with a DKIM-Signature field
	dups     int64
	conns    map[net.Conn]struct{}
	closed   bool
}

// StartSink listens on addr ("127.0.0.1:0" for any port) and serves until
// Close. run is the prefix of this run's sequence values.
func StartSink(addr, run string) (*Sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s := &Sink{ln: ln, run: run, arrivals: map[string]time.Time{}, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the sink's listening address.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// Close stops the sink and ends its connections.
func (s *Sink) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

// Arrival returns when the message with sequence value seq first arrived.
func (s *Sink) Arrival(seq string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.arrivals[seq]
	return t, ok
}

// Counts returns the messages of this run that arrived (once each), the
// second copies of them, and the messages of other runs or none.
func (s *Sink) Counts() (arrived, dups, stray int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.arrivals)), s.dups, s.stray.Load()
}

// Total returns every 250 given after data.
func (s *Sink) Total() int64 { return s.total.Load() }

func (s *Sink) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

func (s *Sink) serve(c net.Conn) {
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriterSize(c, 4<<10)
	say := func(line string) bool {
		w.WriteString(line)
		// RFC 2920: replies to a pipelined group may wait until the
		// client's input is used up.
		if r.Buffered() == 0 {
			return w.Flush() == nil
		}
		return true
	}
	if !say("220 sink.bench ESMTP\r\n") {
		return
	}
	for {
		_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(string(bytes.TrimSpace(line)))
		if i := strings.IndexAny(verb, " :"); i >= 0 {
			verb = verb[:i]
		}
		var ok bool
		switch verb {
		case "EHLO":
			ok = say("250-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE\r\n")
		case "HELO":
			ok = say("250 sink.bench\r\n")
		case "MAIL", "RCPT", "RSET", "NOOP":
			ok = say("250 2.0.0 ok\r\n")
		case "DATA":
			if !say("354 go ahead\r\n") || w.Flush() != nil {
				return
			}
			seq, dkim, err := s.readData(r)
			if err != nil {
				return
			}
			s.record(seq, dkim)
			ok = say("250 2.0.0 taken\r\n")
		case "QUIT":
			say("221 2.0.0 bye\r\n")
			w.Flush()
			return
		default:
			ok = say("502 5.5.1 not here\r\n")
		}
		if !ok {
			return
		}
	}
}

// readData reads a message up to its "." line and returns its seqField
// value, when its header has one, and whether the header has a
// DKIM-Signature field.
func (s *Sink) readData(r *bufio.Reader) (string, bool, error) {
	seq := ""
	dkim := false
	header := true
	var long bool // inside a line longer than the buffer
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = true
			continue
		}
		if err != nil {
			return "", false, err
		}
		if long {
			long = false
			continue
		}
		if bytes.Equal(line, []byte(".\r\n")) || bytes.Equal(line, []byte(".\n")) {
			return seq, dkim, nil
		}
		if !header {
			continue
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			header = false
			continue
		}
		if seq == "" && len(line) > len(seqField) && strings.EqualFold(string(line[:len(seqField)]), seqField) {
			seq = string(bytes.TrimSpace(line[len(seqField):]))
		}
		if len(line) > len(dkimField) && strings.EqualFold(string(line[:len(dkimField)]), dkimField) {
			dkim = true
		}
	}
}

// dkimField starts a DKIM signature (RFC 6376 §3.5).
const dkimField = "DKIM-Signature:"

// Signed returns how many of this run's messages arrived signed.
func (s *Sink) Signed() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signed
}

func (s *Sink) record(seq string, dkim bool) {
	s.total.Add(1)
	if seq == "" || !strings.HasPrefix(seq, s.run+"-") {
		s.stray.Add(1)
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.arrivals[seq]; ok {
		s.dups++
		return
	}
	s.arrivals[seq] = now
	if dkim {
		s.signed++
	}
}
