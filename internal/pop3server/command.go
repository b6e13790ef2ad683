package pop3server

import (
	"errors"
	"strings"
)

// Limits on what a client sends.
const (
	// maxLine bounds a command line and a SASL response line, CRLF
	// included. RFC 2449 §4 limits commands to 255 octets; SASL responses
	// (RFC 5034 §4) may be longer, so the bound is generous.
	maxLine = 8192
	// maxKeyword is the longest command keyword accepted (RFC 1939 §3
	// keywords have 3 or 4 characters; RFC 2449 §4 allows extensions).
	maxKeyword = 16
	// maxArgs is the most arguments any command takes, with room to
	// report "too many arguments" sensibly.
	maxArgs = 8
)

// command is one parsed command line.
type command struct {
	// name is the keyword in upper case.
	name string
	// args are the space-separated arguments.
	args []string
	// rest is everything after the keyword and the space that follows it,
	// as sent: PASS takes it whole, since a password may contain spaces
	// (RFC 1939 §7).
	rest string
}

// Errors of parseCommand; their text is sent to the client after "-ERR ".
var (
	errEmptyLine   = errors.New("empty command line")
	errBadChars    = errors.New("command line contains control characters")
	errBadKeyword  = errors.New("malformed command keyword")
	errTooManyArgs = errors.New("too many arguments")
)

// parseCommand parses one command line (RFC 1939 §3): a keyword of
// printable ASCII letters, then arguments separated by spaces. The line may
// end in CRLF or LF. Control characters other than a tab inside the rest of
// the line are refused; 8-bit bytes are allowed in arguments (UTF-8 user
// names and passwords).
func parseCommand(line []byte) (command, error) {
	s := string(line)
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return command{}, errBadChars
		}
	}
	if strings.TrimSpace(s) == "" {
		return command{}, errEmptyLine
	}
	kw, rest, _ := strings.Cut(s, " ")
	if len(kw) == 0 || len(kw) > maxKeyword {
		return command{}, errBadKeyword
	}
	for i := 0; i < len(kw); i++ {
		c := kw[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return command{}, errBadKeyword
		}
	}
	cmd := command{name: strings.ToUpper(kw), rest: rest}
	cmd.args = strings.Fields(rest)
	if len(cmd.args) > maxArgs {
		return command{}, errTooManyArgs
	}
	return cmd, nil
}

// parseNumber parses a message number or line count: decimal digits only
// (RFC 1939 §3), at most 10 of them, no sign.
func parseNumber(s string) (int, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
