package bench

import (
	"context"
	"strings"
	"testing"
)

// TestSinkCounts: the submission client talks to the sink as to any SMTP
// server (pipelined); the sink counts this run's messages once, their
// second copies, the messages of other runs, and the signed ones.
func TestSinkCounts(t *testing.T) {
	t.Parallel()
	sink, err := StartSink("127.0.0.1:0", "run1")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	c, err := DialSubmit(context.Background(), &Dialer{}, SubmitDial{Addr: sink.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Pipelining() {
		t.Error("sink offers no PIPELINING")
	}
	send := func(header string) {
		t.Helper()
		data := SMTPData([]byte(header + "From: <a@bench.test>\r\nSubject: x\r\n\r\n.body\r\n"))
		if code, text, err := c.Send("a@bench.test", []string{"r1@sink.test", "r2@sink.test"}, data); err != nil || code != 250 {
			t.Fatalf("send: %d %s %v", code, text, err)
		}
	}
	send("DKIM-Signature: v=1; d=bench.test\r\n\tb=x\r\nX-Bench-Seq: run1-0-0\r\n")
	send("X-Bench-Seq: run1-0-0\r\n")
	send("X-Bench-Seq: run0-0-0\r\n")
	send("")
	send("X-Bench-Seq: run1-0-1\r\n")
	arrived, dups, stray := sink.Counts()
	if arrived != 2 || dups != 1 || stray != 2 || sink.Signed() != 1 || sink.Total() != 5 {
		t.Fatalf("arrived %d, dups %d, stray %d, signed %d, total %d", arrived, dups, stray, sink.Signed(), sink.Total())
	}
	if _, ok := sink.Arrival("run1-0-1"); !ok {
		t.Error("no arrival time for run1-0-1")
	}
}

// TestPrepareSubmit: the corpus message loses its trace, author and
// recipient fields (folded ones whole) and keeps the rest, body included.
func TestPrepareSubmit(t *testing.T) {
	t.Parallel()
	msg := "Received: from a\r\n\tby b; Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: X <x@example.net>\r\nTo: a@example.org,\r\n b@example.org\r\n" +
		"Subject: kept\r\nMessage-ID: <1@x>\r\nMIME-Version: 1.0\r\n\r\nFrom: not a header\r\n.dot\r\n"
	got := string(prepareSubmit(&Corpus{Msgs: [][]byte{[]byte(msg)}})[0].rest)
	want := "Subject: kept\r\nMIME-Version: 1.0\r\n\r\nFrom: not a header\r\n..dot\r\n.\r\n"
	if got != want {
		t.Fatalf("prepared %q\nwant     %q", got, want)
	}
	if strings.Contains(got, "b@example.org") {
		t.Fatal("folded To: line kept")
	}
}
