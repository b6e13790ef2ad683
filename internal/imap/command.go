package imap

// Command is a parsed client command: a pointer to one of the command
// types of this package (*Fetch, *Login, ...). Use a type switch, or
// Base().Name, to dispatch.
type Command interface {
	// Base returns the parts every command has.
	Base() *CommandBase
}

// CommandBase holds what every command has: its tag, its name, and the UID
// prefix (RFC 9051 §6.4.9).
type CommandBase struct {
	// Tag is the client's tag for the command.
	Tag string
	// Name is the command name in upper case, without the UID prefix:
	// "FETCH", "EXAMINE", "LSUB".
	Name string
	// UID reports the UID prefix: UID FETCH, UID STORE, UID SEARCH, UID
	// COPY, UID MOVE, UID EXPUNGE, UID SORT, UID THREAD, UID REPLACE.
	UID bool
}

// Base implements Command.
func (b *CommandBase) Base() *CommandBase { return b }

// Commands without arguments.
type (
	// Capability is CAPABILITY (RFC 9051 §6.1.1).
	Capability struct{ CommandBase }
	// Noop is NOOP (RFC 9051 §6.1.2).
	Noop struct{ CommandBase }
	// Logout is LOGOUT (RFC 9051 §6.1.3).
	Logout struct{ CommandBase }
	// StartTLS is STARTTLS (RFC 9051 §6.2.1).
	StartTLS struct{ CommandBase }
	// Unauthenticate is UNAUTHENTICATE (RFC 8437).
	Unauthenticate struct{ CommandBase }
	// Namespace is NAMESPACE (RFC 9051 §6.3.10).
	Namespace struct{ CommandBase }
	// Idle is IDLE (RFC 9051 §6.3.13). After answering "+ idling" the
	// server reads the end of it with Reader.ReadDone.
	Idle struct{ CommandBase }
	// Check is CHECK (RFC 3501 §6.4.1; IMAP4rev1 only).
	Check struct{ CommandBase }
	// Close is CLOSE (RFC 9051 §6.4.1).
	Close struct{ CommandBase }
	// Unselect is UNSELECT (RFC 9051 §6.4.2).
	Unselect struct{ CommandBase }
)

// Expunge is EXPUNGE (RFC 9051 §6.4.3) or UID EXPUNGE (§6.4.9, RFC 4315).
type Expunge struct {
	CommandBase
	// UIDs is the set of UID EXPUNGE; empty for plain EXPUNGE.
	UIDs SeqSet
}

// parseFunc parses the arguments of a command after its name. The
// returned command's CommandBase is filled in by ReadCommand.
type parseFunc func(r *Reader, uid bool) Command

// cmdEntry is a command's canonical name and parser.
type cmdEntry struct {
	name  string
	parse parseFunc
}

// commands maps command names to their parsers. It is never modified.
var commands = func() map[string]cmdEntry {
	m := make(map[string]cmdEntry, len(commandTable))
	for name, f := range commandTable {
		m[name] = cmdEntry{name, f}
	}
	return m
}()

// commandTable lists the commands and their parsers.
var commandTable = map[string]parseFunc{
	"CAPABILITY":     simple(func() Command { return &Capability{} }),
	"NOOP":           simple(func() Command { return &Noop{} }),
	"LOGOUT":         simple(func() Command { return &Logout{} }),
	"STARTTLS":       simple(func() Command { return &StartTLS{} }),
	"UNAUTHENTICATE": simple(func() Command { return &Unauthenticate{} }),
	"NAMESPACE":      simple(func() Command { return &Namespace{} }),
	"IDLE":           simple(func() Command { return &Idle{} }),
	"CHECK":          simple(func() Command { return &Check{} }),
	"CLOSE":          simple(func() Command { return &Close{} }),
	"UNSELECT":       simple(func() Command { return &Unselect{} }),
	"EXPUNGE":        parseExpunge,
	"LOGIN":          parseLogin,
	"AUTHENTICATE":   parseAuthenticate,
	"ENABLE":         parseEnable,
	"ID":             parseID,
	"COMPRESS":       parseCompress,
	"SELECT":         parseSelect,
	"EXAMINE":        parseSelect,
	"CREATE":         parseCreate,
	"DELETE":         parseMailboxCmd,
	"SUBSCRIBE":      parseMailboxCmd,
	"UNSUBSCRIBE":    parseMailboxCmd,
	"GETQUOTAROOT":   parseMailboxCmd,
	"RENAME":         parseRename,
	"LIST":           parseList,
	"LSUB":           parseLsub,
	"STATUS":         parseStatus,
	"APPEND":         parseAppend,
	"REPLACE":        parseReplace,
	"GETMETADATA":    parseGetMetadata,
	"SETMETADATA":    parseSetMetadata,
	"GETQUOTA":       parseGetQuota,
	"SETQUOTA":       parseSetQuota,
	"NOTIFY":         parseNotify,
	"FETCH":          parseFetch,
	"STORE":          parseStore,
	"COPY":           parseCopyMove,
	"MOVE":           parseCopyMove,
	"SEARCH":         parseSearch,
	"SORT":           parseSort,
	"THREAD":         parseThread,
	"CANCELUPDATE":   parseCancelUpdate,
	"GENURLAUTH":     parseGenURLAuth,
	"RESETKEY":       parseResetKey,
	"URLFETCH":       parseURLFetch,
}

// uidCommands are the commands that take the UID prefix.
var uidCommands = map[string]bool{
	"FETCH": true, "STORE": true, "SEARCH": true, "COPY": true, "MOVE": true,
	"EXPUNGE": true, "SORT": true, "THREAD": true, "REPLACE": true,
}

// simple returns the parser of a command without arguments.
func simple(mk func() Command) parseFunc {
	return func(r *Reader, uid bool) Command { return mk() }
}

// ReadCommand reads the next command. It returns:
//
//   - the command, fully read, except for APPEND and REPLACE: for those
//     the mailbox is read and the messages follow through Append.Next or
//     Replace.Next, so that message data streams;
//   - a *ParseError for a command that cannot be accepted; the rest of it
//     has been consumed unless the error is Fatal;
//   - io.EOF when the client closed the connection between commands, or
//     another error from the connection (the session then ends).
//
// Empty lines between commands are skipped. If the previous command was an
// APPEND or REPLACE whose messages were not all read, its remainder is
// skipped first.
func (r *Reader) ReadCommand() (Command, error) {
	if err := r.begin(); err != nil {
		return nil, err
	}
	var cmd Command
	err := r.run(func() {
		for {
			if err := r.readLine(); err != nil {
				if pe, ok := err.(*ParseError); ok {
					if tag, n := readTag(r.line); n < len(r.line) && r.line[n] == ' ' {
						r.tag = tag
					}
					panic(parseFail{pe})
				}
				failIO(err)
			}
			if len(r.line) > 0 || r.ann.present {
				break
			}
			r.state = stBoundary
		}
		cmd = r.command()
	})
	if err != nil {
		return nil, err
	}
	return cmd, nil
}

// command parses one command from the current line.
func (r *Reader) command() Command {
	tag, n := readTag(r.line)
	if n == 0 {
		fail("invalid tag")
	}
	r.pos = n
	if r.peek() != ' ' {
		if r.atEnd() {
			r.tag = tag
			fail("missing command")
		}
		fail("invalid tag")
	}
	r.tag = tag
	r.pos++
	var buf [32]byte
	name := r.keyword(buf[:], "command name")
	uid := false
	if string(name) == "UID" {
		uid = true
		r.sp()
		name = r.keyword(buf[:], "command name after UID")
		if !uidCommands[string(name)] {
			fail("unknown UID command")
		}
	}
	e, ok := commands[string(name)]
	if !ok {
		fail("unknown command")
	}
	r.cmdName = e.name
	cmd := e.parse(r, uid)
	b := cmd.Base()
	b.Tag = tag
	b.Name = e.name
	b.UID = uid
	if _, streaming := cmd.(streamer); !streaming {
		r.end()
	}
	return cmd
}

// streamer is implemented by commands whose end is read later (APPEND,
// REPLACE).
type streamer interface{ streaming() }

// parseExpunge parses EXPUNGE and UID EXPUNGE (RFC 9051 §6.4.9 uid-expunge).
func parseExpunge(r *Reader, uid bool) Command {
	c := &Expunge{}
	if uid {
		r.sp()
		c.UIDs = r.seqSet(true)
	}
	return c
}
