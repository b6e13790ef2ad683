package imapserver_test

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/testenv"
)

// TestTraceNamesWhatWasAsked: the debug trace logs a FETCH's items as the
// client wrote them: BODY.PEEK[] (which leaves \Seen alone) is not logged
// as BODY[] (which sets it), and a partial keeps its count.
func TestTraceNamesWhatWasAsked(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	e.AddUser("alice@"+testenv.Domain, "secret password")
	c := e.Dial("imap")
	c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprintf(c, "a LOGIN alice@%s \"secret password\"\r\nb SELECT INBOX\r\nc FETCH 1:* (BODY.PEEK[] BODY.PEEK[HEADER]<0.10> FLAGS)\r\n", testenv.Domain)
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(l, "c ") {
			break
		}
	}
	want := ` cmd=FETCH items="BODY.PEEK[] BODY.PEEK[HEADER]<0.10> FLAGS"`
	for _, l := range strings.Split(e.Logs(), "\n") {
		if strings.Contains(l, `msg="imap command"`) && strings.HasSuffix(l, want) {
			return
		}
	}
	t.Fatalf("the trace does not show%s", want)
}
