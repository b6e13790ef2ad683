package pop3server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/netserve"
)

// Response codes (RFC 2449 §8, RFC 3206), with the space that follows
// them.
const (
	codeInUse      = "[IN-USE] "
	codeLoginDelay = "[LOGIN-DELAY] "
	codeAuth       = "[AUTH] "
	codeSysTemp    = "[SYS/TEMP] "
	codeSysPerm    = "[SYS/PERM] "
)

// handshakeTimeout bounds a TLS handshake (implicit TLS or STLS).
const handshakeTimeout = 30 * time.Second

// state is the POP3 session state (RFC 1939 §3).
type state int

const (
	stateAuthorization state = iota
	stateTransaction
)

// errCloseSession ends the session after the handler has written its last
// response.
var errCloseSession = errors.New("close session")

// errLineTooLong is returned by readLine for a line over maxLine.
var errLineTooLong = errors.New("line too long")

// session is one POP3 connection. Its fields are owned by the connection's
// goroutine.
type session struct {
	s      *Server
	conn   net.Conn // a *tls.Conn after STLS or on an implicit-TLS listener
	tc     *netserve.Conn
	log    *slog.Logger
	r      *bufio.Reader
	w      *bufio.Writer
	tls    bool
	remote netip.Addr

	state state
	// k ends the session on revocation (revoke.go); kill sets conn's read
	// deadline from another goroutine, so conn is replaced (STLS) only
	// with k.mu held.
	k    killer
	held int64 // bytes of the current line charged to the Budget (guard.go)
	bad  int   // bad commands so far
	// junk counts the commands without progress after login, and
	// progressBy is when the next RETR, TOP or DELE must come
	// (progress.go).
	junk       int
	progressBy time.Time
	user       string // the USER argument waiting for PASS; "" when none
	md         *maildrop
	ahead      []*readAhead // the next messages' bodies, opened ahead (RETR), in order
	// cork holds a reply written in several pieces back from the wire
	// until it is complete or full segments can go (RETR of a large
	// message); run releases it before waiting for the next command.
	cork netserve.Cork
	// aheadAfter is the message a RETR just sent, whose next one run
	// opens ahead (openAhead) before it waits; 0 when none.
	aheadAfter int
}

func newSession(s *Server, conn net.Conn, tc *netserve.Conn, implicitTLS bool) *session {
	x := &session{s: s, conn: conn, tc: tc, tls: implicitTLS, remote: remoteAddr(conn)}
	if s.remoteFor != nil {
		x.remote = s.remoteFor(conn)
	}
	x.log = s.log
	if tc != nil {
		x.log = tc.Logger()
	}
	x.r = bufio.NewReaderSize(conn, 4096)
	x.w = bufio.NewWriterSize(deadlineWriter{conn, s.idle}, 32<<10)
	if tc != nil {
		x.cork = netserve.NewCork(tc) // the socket, also under TLS
	} else {
		x.cork = netserve.NewCork(conn)
	}
	return x
}

// run serves the connection until QUIT, an error, the idle timeout or a
// shutdown.
func (x *session) run() {
	defer func() {
		x.discardReadAhead()
		if x.md != nil {
			x.md.close()
			x.md = nil
		}
	}()
	if x.tls {
		if tc, ok := x.conn.(*tls.Conn); ok && !x.handshake(tc) {
			return
		}
	}
	host := x.s.opt.Hostname
	if host == "" {
		host = "postfach"
	}
	// RFC 1939 §4: the greeting.
	x.reply("+OK %s POP3 server ready", host)
	for {
		if !x.pendingLine() {
			if err := x.w.Flush(); err != nil {
				x.log.Debug("write failed", "err", err)
				return
			}
			// The client waits for what the kernel holds back.
			x.cork.Release()
			// While the client reads the reply.
			x.openAhead()
		}
		x.setReadDeadline(x.readDeadline())
		line, err := x.readLine()
		if errors.Is(err, errLineTooLong) {
			x.reply("-ERR Line too long")
			if x.countBad() {
				return
			}
			continue
		}
		if errors.Is(err, errPreAuthLimit) {
			_ = x.w.Flush()
			return
		}
		if err != nil {
			x.readFailed(err)
			return
		}
		err = x.dispatch(line)
		x.releaseLine()
		if err != nil {
			_ = x.w.Flush()
			return
		}
		if x.endIfKilled() {
			return
		}
	}
}

// handshake completes an implicit-TLS handshake.
func (x *session) handshake(tc *tls.Conn) bool {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		x.log.Info("tls handshake failed", "err", err)
		return false
	}
	return true
}

// readFailed handles the end of input: a shutdown gets its goodbye, an
// idle timeout closes silently (RFC 1939 §3), both without UPDATE.
func (x *session) readFailed(err error) {
	if x.endIfKilled() {
		return
	}
	var ne net.Error
	switch {
	case x.tc != nil && x.tc.Draining():
		x.reply("-ERR " + codeSysTemp + "Server shutting down, try again later")
		_ = x.w.Flush()
		x.log.Debug("session ended by shutdown")
	case errors.As(err, &ne) && ne.Timeout() && x.tc != nil && x.tc.LoginExpired():
		// Closed without a response, like an idle timeout (RFC 1939 §3).
		x.log.Info("login timeout, closing")
	case errors.As(err, &ne) && ne.Timeout() && x.progressExpired():
		x.log.Info("no mail retrieved in time, closing without update", "junk", x.junk)
	case errors.As(err, &ne) && ne.Timeout():
		x.log.Info("idle timeout, closing without update")
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		if x.md != nil {
			x.log.Info("connection closed without QUIT: nothing deleted")
		}
	default:
		x.log.Debug("read failed", "err", err)
	}
}

// pendingLine reports whether a whole command line is already buffered,
// so the response can wait for the next one (RFC 2449 §6.6 PIPELINING:
// responses to pipelined commands go out together).
func (x *session) pendingLine() bool {
	n := x.r.Buffered()
	if n == 0 {
		return false
	}
	b, _ := x.r.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// readLine reads one line, CRLF included. A line longer than maxLine is
// consumed (never held: the rest passes through the read buffer) and
// reported as errLineTooLong. Before login, a client whose connections
// together would hold more than the Budget allows is told so and the
// connection closes (errPreAuthLimit, guard.go).
func (x *session) readLine() ([]byte, error) {
	var long []byte
	for {
		chunk, err := x.r.ReadSlice('\n')
		if err == nil {
			if long == nil {
				return chunk, nil
			}
			if len(long)+len(chunk) > maxLine {
				// The last piece takes the line over the limit; it
				// has been read to its end.
				if x.state == stateAuthorization && x.tc != nil {
					x.tc.RefusedBeforeLogin("line_too_long")
				}
				x.releaseLine()
				return nil, errLineTooLong
			}
			if err := x.holdLine(len(chunk)); err != nil {
				return nil, err
			}
			return append(long, chunk...), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		if len(long)+len(chunk) > maxLine {
			if x.state == stateAuthorization && x.tc != nil {
				x.tc.RefusedBeforeLogin("line_too_long")
			}
			x.releaseLine()
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = x.r.ReadSlice('\n')
			}
			if err != nil {
				return nil, err
			}
			return nil, errLineTooLong
		}
		if err := x.holdLine(len(chunk)); err != nil {
			return nil, err
		}
		long = append(long, chunk...)
	}
}

// reply writes one response line (RFC 2449 §4: at most 512 octets with
// CRLF; what we send is far shorter).
func (x *session) reply(format string, args ...any) {
	if len(args) == 0 {
		x.w.WriteString(format)
	} else {
		fmt.Fprintf(x.w, format, args...)
	}
	x.w.WriteString("\r\n")
}

// countBad counts a bad command; true means the limit is reached and the
// session ends.
func (x *session) countBad() bool {
	x.bad++
	if x.bad < x.s.maxBad {
		return false
	}
	x.reply("-ERR Too many bad commands, closing connection")
	_ = x.w.Flush()
	x.log.Info("too many bad commands, closing")
	return true
}

// bad answers a bad command; it returns errCloseSession when the limit is
// reached.
func (x *session) badCommand(format string, args ...any) error {
	x.reply("-ERR "+format, args...)
	if x.countBad() {
		return errCloseSession
	}
	return nil
}

// handler runs one command; a non-nil error ends the session.
type handler func(x *session, cmd command) error

// lookup returns the handler of a command and whether it is allowed in
// the state (RFC 1939 §4-§7, RFC 2449 §5, RFC 2595 §4, RFC 5034 §4).
func lookup(name string, st state) (h handler, known, allowed bool) {
	auth, trans := st == stateAuthorization, st == stateTransaction
	switch name {
	case "CAPA":
		return (*session).cmdCapa, true, true
	case "QUIT":
		return (*session).cmdQuit, true, true
	case "USER":
		return (*session).cmdUser, true, auth
	case "PASS":
		return (*session).cmdPass, true, auth
	case "AUTH":
		return (*session).cmdAuth, true, auth
	case "STLS":
		return (*session).cmdStls, true, auth
	case "STAT":
		return (*session).cmdStat, true, trans
	case "LIST":
		return (*session).cmdList, true, trans
	case "RETR":
		return (*session).cmdRetr, true, trans
	case "DELE":
		return (*session).cmdDele, true, trans
	case "NOOP":
		return (*session).cmdNoop, true, trans
	case "RSET":
		return (*session).cmdRset, true, trans
	case "TOP":
		return (*session).cmdTop, true, trans
	case "UIDL":
		return (*session).cmdUidl, true, trans
	}
	return nil, false, false
}

// dispatch parses and runs one command line.
func (x *session) dispatch(line []byte) error {
	cmd, err := parseCommand(line)
	if err != nil {
		return x.badCommand("%s", err.Error())
	}
	if cmd.name != "USER" {
		// PASS must come right after USER (RFC 1939 §7): anything else
		// forgets the user name.
		defer func() { x.user = "" }()
	}
	h, known, allowed := lookup(cmd.name, x.state)
	switch {
	case !known:
		return x.badCommand("Unknown command")
	case !allowed:
		if x.state == stateAuthorization {
			return x.badCommand("Command not valid before login")
		}
		return x.badCommand("Command not valid after login")
	}
	switch cmd.name {
	case "RETR", "TOP", "DELE", "LIST", "UIDL", "NOOP", "STAT":
		// The commands a client sends between retrievals keep the body
		// opened ahead (RETR); anything else gives it back.
	default:
		x.discardReadAhead()
	}
	if x.state == stateTransaction {
		if x.countJunk(cmd) {
			return errCloseSession
		}
		if err := x.md.refresh(context.Background()); err != nil {
			x.log.Warn("maildrop refresh failed", "err", err)
		}
		if x.md.accountGone {
			x.reply("-ERR " + codeSysPerm + "Account deleted, closing connection")
			return errCloseSession
		}
	}
	return h(x, cmd)
}

// secure reports whether plaintext authentication is allowed on this
// connection (RFC 2595 §4, DESIGN §6): with TLS, from loopback, or when
// the operator allows it everywhere.
func (x *session) secure() bool {
	return x.tls || x.s.opt.AllowInsecureAuth || x.s.loopback && x.remote.IsLoopback()
}

// cmdCapa lists the capabilities (RFC 2449 §5). USER and SASL appear only
// where they would be accepted (RFC 2595 §4); STLS only before login on a
// connection without TLS.
func (x *session) cmdCapa(cmd command) error {
	if len(cmd.args) != 0 {
		return x.badCommand("CAPA takes no arguments")
	}
	x.reply("+OK Capability list follows")
	for _, c := range []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"} {
		x.reply("%s", c)
	}
	if x.secure() {
		x.reply("USER")
		if len(x.s.mechs) > 0 {
			x.w.WriteString("SASL")
			for _, m := range x.s.mechs {
				if auth.OfferMechanism(m, x.tls) {
					x.w.WriteString(" " + m)
				}
			}
			x.w.WriteString("\r\n")
		}
	}
	if x.state == stateAuthorization && !x.tls && x.s.opt.TLSConfig != nil {
		x.reply("STLS")
	}
	if d := x.s.opt.LoginDelay; d > 0 {
		// RFC 2449 §6.5: seconds; the same for every user.
		x.reply("LOGIN-DELAY %d", int64((d+time.Second-1)/time.Second))
	}
	x.reply("IMPLEMENTATION postfach")
	x.reply(".")
	return nil
}

// cmdQuit ends the session; in the TRANSACTION state it enters UPDATE
// (RFC 1939 §6).
func (x *session) cmdQuit(cmd command) error {
	if x.state == stateAuthorization {
		x.reply("+OK Bye")
		return errCloseSession
	}
	md := x.md
	x.md = nil
	n, err := md.update(context.Background())
	md.close()
	if err != nil {
		x.log.Error("update failed", "err", err)
		// RFC 1939 §6: the -ERR of a failed UPDATE.
		x.reply("-ERR " + codeSysTemp + "Some deleted messages not removed, try again later")
		return errCloseSession
	}
	x.reply("+OK Bye (%d %s deleted)", n, plural(n, "message", "messages"))
	return errCloseSession
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// cmdStls upgrades the connection to TLS (RFC 2595 §4).
func (x *session) cmdStls(cmd command) error {
	if len(cmd.args) != 0 {
		return x.badCommand("STLS takes no arguments")
	}
	if x.tls {
		return x.badCommand("Command not permitted when TLS active")
	}
	if x.s.opt.TLSConfig == nil {
		return x.badCommand("STLS not available")
	}
	x.reply("+OK Begin TLS negotiation")
	if err := x.w.Flush(); err != nil {
		return err
	}
	if n := x.r.Buffered(); n > 0 {
		// Commands pipelined after STLS were sent in the clear and could
		// have been injected: they are dropped (RFC 2595 §4, RFC 3207 §6).
		x.log.Info("dropping input pipelined after STLS", "bytes", n)
	}
	tc := tls.Server(x.conn, x.s.startTLS)
	_ = x.conn.SetDeadline(time.Now().Add(handshakeTimeout))
	if !x.handshake(tc) {
		return errCloseSession
	}
	_ = x.conn.SetDeadline(time.Time{})
	x.k.mu.Lock()
	x.conn, x.tls = tc, true
	x.k.mu.Unlock()
	x.r.Reset(tc)
	x.w.Reset(deadlineWriter{tc, x.s.idle})
	x.user = ""
	return nil
}
