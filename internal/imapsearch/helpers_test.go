package imapsearch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// crlf turns "\n" line endings into CRLF, as the store keeps messages.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// countingBody is a stored message that records how it is read.
type countingBody struct {
	data     []byte
	read     atomic.Int64 // bytes handed out
	maxEnd   atomic.Int64 // highest offset read up to
	failRead bool
}

func (b *countingBody) ReadAt(p []byte, off int64) (int, error) {
	if b.failRead {
		return 0, errors.New("disk on fire")
	}
	n, err := bytes.NewReader(b.data).ReadAt(p, off)
	b.read.Add(int64(n))
	for {
		cur := b.maxEnd.Load()
		if off+int64(n) <= cur || b.maxEnd.CompareAndSwap(cur, off+int64(n)) {
			break
		}
	}
	return n, err
}

func (b *countingBody) Size() int64 { return int64(len(b.data)) }

// testSource is a Source over a parsed test message that counts loads.
type testSource struct {
	sum          *message.Summary
	body         *countingBody
	summaryCalls int
	bodyCalls    int
	fail         bool
}

func (s *testSource) Summary() (*message.Summary, error) {
	s.summaryCalls++
	if s.fail {
		return nil, errors.New("summary unavailable")
	}
	return s.sum, nil
}

func (s *testSource) Body() (imap.MessageSource, error) {
	s.bodyCalls++
	if s.fail {
		return nil, errors.New("body unavailable")
	}
	return s.body, nil
}

// fixture is one test message: its metadata and its source.
type fixture struct {
	meta     store.Message
	recent   bool
	threadID string
	src      *testSource
}

// newSource parses raw (LF or CRLF line endings) into a testSource.
func newSource(t testing.TB, raw string) *testSource {
	t.Helper()
	data := []byte(crlf(raw))
	sum, err := message.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse test message: %v", err)
	}
	return &testSource{sum: sum, body: &countingBody{data: data}}
}

// parseKey parses a search program written as after "SEARCH ", with the
// parser of internal/imap. Literals may be used ("{3}\r\nabc").
func parseKey(t testing.TB, program string) *imap.Search {
	t.Helper()
	s, err := parseSearch("a SEARCH " + program + "\r\n")
	if err != nil {
		t.Fatalf("parse %q: %v", program, err)
	}
	return s
}

func parseSearch(line string) (*imap.Search, error) {
	r := imap.NewReader(bufio.NewReader(strings.NewReader(line)), nil, imap.Options{})
	cmd, err := r.ReadCommand()
	if err != nil {
		return nil, err
	}
	s, ok := cmd.(*imap.Search)
	if !ok {
		return nil, errors.New("not a SEARCH command")
	}
	return s, nil
}

// run evaluates prog over the fixtures (sequence numbers from 1) and
// returns the matching sequence numbers.
func run(t testing.TB, prog *Program, fx []*fixture) []uint32 {
	t.Helper()
	var out []uint32
	var m Message
	for i, f := range fx {
		m = Message{Seq: uint32(i + 1), Meta: &f.meta, Recent: f.recent, ThreadID: f.threadID, Source: f.src}
		ok, err := prog.Match(context.Background(), &m)
		if err != nil {
			t.Fatalf("match message %d: %v", i+1, err)
		}
		if ok {
			out = append(out, uint32(i+1))
		}
	}
	return out
}

// preparedSource is a testSource that also gives its text prepared for
// search (TextSource), as a server with a text cache does; it fails the
// test if Match reads the body anyway.
type preparedSource struct {
	*testSource
	t  testing.TB
	ht *HeaderText
	bt *BodyText
}

func prepare(t testing.TB, src *testSource) *preparedSource {
	t.Helper()
	h, err := ReadTopHeader(src.body, src.sum)
	if err != nil {
		t.Fatal(err)
	}
	bt, err := ReadBodyText(context.Background(), src.body, src.sum, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &preparedSource{testSource: src, t: t, ht: NewHeaderText(h), bt: bt}
}

func (s *preparedSource) HeaderText() (*HeaderText, error) { return s.ht, nil }
func (s *preparedSource) BodyText() (*BodyText, error)     { return s.bt, nil }

func (s *preparedSource) Body() (imap.MessageSource, error) {
	s.t.Errorf("a search over prepared text read the body")
	return s.testSource.Body()
}

// runPrepared is run with every message's text prepared.
func runPrepared(t testing.TB, prog *Program, fx []*fixture) []uint32 {
	t.Helper()
	var out []uint32
	var m Message
	for i, f := range fx {
		m = Message{Seq: uint32(i + 1), Meta: &f.meta, Recent: f.recent, ThreadID: f.threadID, Source: prepare(t, f.src)}
		ok, err := prog.Match(context.Background(), &m)
		if err != nil {
			t.Fatalf("match message %d: %v", i+1, err)
		}
		if ok {
			out = append(out, uint32(i+1))
		}
	}
	return out
}
