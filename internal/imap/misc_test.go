package imap

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestAccessors(t *testing.T) {
	seen := []struct {
		it   FetchItem
		want bool
	}{
		{FetchItem{Kind: FetchBodySection}, true},
		{FetchItem{Kind: FetchBodySection, Peek: true}, false},
		{FetchItem{Kind: FetchBinary}, true},
		{FetchItem{Kind: FetchBinary, Peek: true}, false},
		{FetchItem{Kind: FetchRFC822}, true},
		{FetchItem{Kind: FetchRFC822Text}, true},
		{FetchItem{Kind: FetchRFC822Header}, false},
		{FetchItem{Kind: FetchFlags}, false},
	}
	for _, tc := range seen {
		if tc.it.SetsSeen() != tc.want {
			t.Errorf("SetsSeen(%+v) = %v", tc.it, !tc.want)
		}
	}
	if !(&Select{CommandBase: CommandBase{Name: "EXAMINE"}}).ReadOnly() || (&Select{CommandBase: CommandBase{Name: "SELECT"}}).ReadOnly() {
		t.Error("ReadOnly")
	}
	items := StatusMessages | StatusSize | StatusHighestModSeq
	if !items.Has(StatusSize) || items.Has(StatusUnseen) {
		t.Error("Has")
	}
	if got := strings.Join(items.Names(), " "); got != "MESSAGES SIZE HIGHESTMODSEQ" {
		t.Errorf("Names = %q", got)
	}
	pe := &ParseError{Tag: "a1", Status: NO, Code: "TOOBIG", Reason: "message too big", Fatal: true}
	if pe.Error() != "imap: a1 NO [TOOBIG] message too big (fatal)" {
		t.Errorf("%q", pe.Error())
	}
	if (&ParseError{Status: BAD, Reason: "x"}).Error() != "imap: * BAD x" {
		t.Error("untagged Error")
	}
	_, err := CanonicalMailbox("a//b")
	var ne *MailboxNameError
	if !errors.As(err, &ne) || err.Error() != "invalid mailbox name: empty hierarchy level" {
		t.Errorf("%v", err)
	}
	if !IsInbox("INBOX") || IsInbox("inbox") {
		t.Error("IsInbox works on canonical names")
	}
}

func TestReaderReset(t *testing.T) {
	// STARTTLS: the server checks that nothing was pipelined after the
	// command before switching.
	r, _ := newTestReader("a STARTTLS\r\nb NOOP\r\n", Options{})
	if _, err := r.ReadCommand(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() == 0 {
		t.Fatal("pipelined command not seen as buffered")
	}
	r.Reset(bufio.NewReader(strings.NewReader("c NOOP\r\n")))
	if c, err := r.ReadCommand(); err != nil || c.Base().Tag != "c" || r.Buffered() != 0 {
		t.Fatalf("after Reset: %v %v", c, err)
	}
	r.ReleaseBuffers()
	if _, err := r.ReadCommand(); err == nil {
		t.Fatal("read past the end")
	}
}

func TestEncoderReset(t *testing.T) {
	var a, b bytes.Buffer
	e := NewEncoder(bufio.NewWriter(&a))
	e.StatusResponse("x", OK, "", "one")
	e.Flush()
	e.Reset(bufio.NewWriter(&b))
	e.StatusResponse("y", OK, "", "two")
	e.Flush()
	e.ReleaseBuffers()
	if a.String() != "x OK one\r\n" || b.String() != "y OK two\r\n" || e.Err() != nil || e.UTF8() {
		t.Errorf("%q %q", a.String(), b.String())
	}
}
