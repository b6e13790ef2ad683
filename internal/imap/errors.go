package imap

import (
	"errors"
	"fmt"
)

// Status words of a tagged or untagged status response (RFC 9051 §7.1).
const (
	OK      = "OK"
	NO      = "NO"
	BAD     = "BAD"
	BYE     = "BYE"
	PREAUTH = "PREAUTH"
)

// ParseError is a command the Reader could not accept. Unless Fatal is set,
// the Reader has already consumed the rest of the command (including any
// non-synchronizing literal the client sent with it), so the next read
// starts at the next command and the session can go on.
//
// The server answers it as
//
//	Tag Status [Code] Reason      (or "* BAD ..." when Tag is empty)
//
// and, when Fatal is set, sends "* BYE [Code] Reason" and closes the
// connection: the stream could not be resynchronised within the limits.
type ParseError struct {
	// Tag is the command's tag, or "" when it was not readable.
	Tag string
	// Status is BAD, or NO for a well-formed command the
	// server refuses before reading its data (APPEND over the size limit:
	// RFC 7889 "NO [TOOBIG]").
	Status string
	// Code is a response code without brackets ("TOOBIG", "CLIENTBUG"),
	// or "".
	Code string
	// Reason is short, human-readable text for the response. It never
	// contains CR or LF and echoes no client data longer than a few bytes.
	Reason string
	// Fatal means the connection must be closed.
	Fatal bool
	// Limit names the limit of Options the command went over: "line"
	// (MaxLine), "literal" (MaxLiteral), "command" (MaxCommand) or
	// "memory" (Budget); "" for other errors.
	Limit string
}

// Error implements error.
func (e *ParseError) Error() string {
	tag := e.Tag
	if tag == "" {
		tag = "*"
	}
	code := ""
	if e.Code != "" {
		code = "[" + e.Code + "] "
	}
	fatal := ""
	if e.Fatal {
		fatal = " (fatal)"
	}
	return fmt.Sprintf("imap: %s %s %s%s%s", tag, e.Status, code, e.Reason, fatal)
}

// ErrSASLCancelled is returned by Reader.ReadSASLResponse when the client
// cancels an AUTHENTICATE exchange with "*" (RFC 9051 §6.2.2); the server
// answers the AUTHENTICATE command with BAD.
var ErrSASLCancelled = errors.New("imap: authentication cancelled by client")

// ErrStreamDone is returned by the methods of Append, Replace, AppendMessage
// and Literal when they are used after the command they belong to was
// finished or abandoned (for example after the next ReadCommand).
var ErrStreamDone = errors.New("imap: command stream already finished")

// parseFail carries an error through a panic inside the parser; run turns it
// back into a return value. It never crosses the package boundary.
type parseFail struct{ err error }

// fail aborts parsing with a BAD error.
func fail(reason string) {
	panic(parseFail{&ParseError{Status: BAD, Reason: reason}})
}

// failf aborts parsing with a formatted BAD error.
func failf(format string, args ...any) {
	fail(fmt.Sprintf(format, args...))
}

// failCode aborts parsing with an error carrying a status and response code.
func failCode(status, code, reason string) {
	panic(parseFail{&ParseError{Status: status, Code: code, Reason: reason}})
}

// failIO aborts parsing because the connection failed.
func failIO(err error) {
	panic(parseFail{err})
}
