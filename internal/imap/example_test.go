package imap_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
)

// Example shows how a session drives the Reader and the Encoder: read a
// command, answer a ParseError with its tag and reason, stream APPEND
// data, and write responses.
func Example() {
	// What a client sends: a login with a literal password, a bad
	// command, an APPEND with a synchronizing literal, a FETCH.
	client := "a1 LOGIN alice {6}\r\nsecret\r\n" +
		"a2 FETCH 1:* (FLAGS BOGUS)\r\n" +
		"a3 APPEND INBOX (\\Seen) {12}\r\nHello world!\r\n" +
		"a4 UID FETCH 1:* (FLAGS)\r\n" +
		"a5 LOGOUT\r\n"

	w := bufio.NewWriter(stripCR{os.Stdout}) // CRLF shown as LF below
	enc := imap.NewEncoder(w)
	r := imap.NewReader(bufio.NewReader(strings.NewReader(client)), func() error {
		return enc.ContinuationRequest("Ready for literal data")
	}, imap.Options{MaxAppend: 50 << 20, LiteralMinus: true})

	for {
		cmd, err := r.ReadCommand()
		var pe *imap.ParseError
		if errors.As(err, &pe) {
			enc.ErrorResponse(pe)
			enc.Flush()
			if pe.Fatal {
				return
			}
			continue
		}
		if err != nil {
			return // io.EOF: the client went away
		}
		switch c := cmd.(type) {
		case *imap.Login:
			enc.StatusResponse(c.Tag, imap.OK, "", "LOGIN completed for "+c.Username)
		case *imap.Append:
			for {
				msg, err := c.Next()
				if err != nil {
					enc.ErrorResponse(err.(*imap.ParseError))
					break
				}
				if msg == nil {
					enc.StatusResponse(c.Tag, imap.OK, "APPENDUID 1 1", "APPEND completed")
					break
				}
				data, _ := msg.Literal.Open()
				n, _ := io.Copy(io.Discard, data) // a server streams it to the store
				fmt.Fprintf(w, "(stored %d bytes with flags %v)\n", n, msg.Flags)
			}
		case *imap.Fetch:
			enc.Untagged().Number(1).Atom("FETCH").BeginList().
				Atom("UID").Number(1).Atom("FLAGS").Flags(mail.Flags{`\Seen`}).
				EndList().End()
			enc.StatusResponse(c.Tag, imap.OK, "", "FETCH completed")
		case *imap.Logout:
			enc.StatusResponse("", imap.BYE, "", "logging out")
			enc.StatusResponse(c.Tag, imap.OK, "", "LOGOUT completed")
			enc.Flush()
			return
		}
		enc.Flush()
	}
	// Output:
	// + Ready for literal data
	// a1 OK LOGIN completed for alice
	// a2 BAD unknown fetch item
	// + Ready for literal data
	// (stored 12 bytes with flags [\Seen])
	// a3 OK [APPENDUID 1 1] APPEND completed
	// * 1 FETCH (UID 1 FLAGS (\Seen))
	// a4 OK FETCH completed
	// * BYE logging out
	// a5 OK LOGOUT completed
}

// stripCR drops the CRs of CRLF so that the example output reads as lines.
type stripCR struct{ w io.Writer }

func (s stripCR) Write(p []byte) (int, error) {
	_, err := s.w.Write([]byte(strings.ReplaceAll(string(p), "\r", "")))
	return len(p), err
}
