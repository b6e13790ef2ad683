package imapserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/store"
)

// connState is the IMAP connection state (RFC 9051 §3).
type connState uint8

const (
	stateNotAuth connState = iota
	stateAuth
	stateSelected
	stateLogout
)

// handshakeTimeout bounds a TLS handshake (implicit TLS or STARTTLS).
const handshakeTimeout = 30 * time.Second

// session is one IMAP connection. All its fields are owned by the
// connection's goroutine, except wake, which the store's event publisher
// touches (see waker).
type session struct {
	srv    *Server
	conn   net.Conn // a *tls.Conn after STARTTLS or on an implicit-TLS listener
	tc     *netserve.Conn
	log    *slog.Logger
	remote netip.Addr
	id     uint64
	ctx    context.Context // store calls; carries the session id as origin

	// The io layers: in and out are the connection as the protocol sees
	// it (after TLS; a COMPRESS=DEFLATE stream would go here). src feeds
	// br with bytes read while waiting (pending) first. br and bw are nil
	// while the session waits for its client: their buffers go back to
	// the server's pools.
	in    io.Reader
	out   io.Writer
	src   pendingReader
	small [64]byte
	br    *bufio.Reader
	bw    *bufio.Writer
	r     *imap.Reader
	enc   *imap.Encoder

	state connState
	tls   bool

	// Enabled extensions (RFC 5161).
	rev2      bool // IMAP4rev2 enabled: rev2 responses
	utf8      bool // UTF8=ACCEPT or IMAP4rev2
	condstore bool // RFC 7162 §3.1: a CONDSTORE-enabling command was seen
	qresync   bool // RFC 7162 §3.2.3: ENABLE QRESYNC

	// admit: the current command adds what it reads of message bodies
	// to the server's cache (blobCache.admits).
	admit bool
	gone  bool
	// (The booleans and small numbers are kept together, so that the
	// struct has no padding to speak of: an idle session is this
	// struct, 552 bytes in the 576-byte size class.)

	user *auth.Principal
	// client is the client's name and version from IMAP ID, "" until it
	// sends one.
	client string
	sub    store.Subscription
	// queued are events taken from sub by readFence (viewread.go) and
	// not yet applied; the next sync point applies them first.
	queued []store.Event
	sel    *selected
	// saved is the SEARCHRES result (RFC 5182), as UIDs.
	saved mail.UIDSet

	// idle is the IDLE command in progress, waited for in run.
	idle *idling

	// ok is the tagged OK a handler asks for (code and text); empty means
	// "<NAME> completed".
	okCode, okText string

	wake waker
	// waitUntil is the idle deadline of the current wait for the client;
	// inWait says that a wait has begun and not ended (it survives a
	// park).
	waitUntil time.Time
	inWait    bool
	// keepWaitUntil: the last wait ended for a store event, not for the
	// client; the next wait keeps its idle deadline.
	keepWaitUntil bool
	// graceOver says that this wait has waited Server.parkAfter in a
	// read already and parks when nothing is there.
	graceOver bool
	// condstoreBefore is condstore before the current command.
	condstoreBefore bool
	bad             int32 // consecutive BAD responses
	// litRead counts literal data received since the idle timer last
	// restarted (guard.go).
	litRead int
	// raw and fd are the connection's, for parking (park.go); raw is nil
	// when the session cannot park.
	raw syscall.RawConn
	fd  int32

	// comp is set after COMPRESS DEFLATE (compress.go); notify after
	// NOTIFY (notify.go). Both are nil for most sessions.
	comp   *compression
	notify *notifyState
}

// waker lets the store's event publisher interrupt a session that waits
// in IDLE (or with NOTIFY between commands): it sets the read deadline
// into the past, so the blocked Read returns and the session reports the
// change, or it resumes the session when it is parked (park.go). Only a
// session in such a wait is interrupted; otherwise the wake is
// remembered.
type waker struct {
	mu      sync.Mutex
	conn    net.Conn // the connection whose deadline is set; guarded by mu
	waiting bool     // a Read in IDLE is blocked; guarded by mu
	woken   bool     // an event arrived; guarded by mu
	// killed is why the session was ended (revoke.go), "" while it was
	// not; guarded by mu.
	killed string

	// Parking (park.go), all guarded by mu: parked is true while the
	// session has no goroutine; parkedInterruptible says that an event
	// resumes it; noPark, once set, keeps the session from parking;
	// timer is the idle timeout of a parked session.
	parked              bool
	parkedInterruptible bool
	noPark              bool
	timer               *time.Timer
}

// notifyWake is the subscription's notify function (store.Notifier): it
// runs on the store's event publisher, sets a flag, and interrupts or
// resumes a session that waits for events. It never calls into the
// store.
func (s *session) notifyWake() {
	w := &s.wake
	w.mu.Lock()
	w.woken = true
	if w.waiting && w.conn != nil {
		_ = w.conn.SetReadDeadline(time.Unix(1, 0))
	}
	resume := w.parked && w.parkedInterruptible
	w.mu.Unlock()
	if resume {
		s.unpark()
	}
}

// pendingReader returns the bytes read while waiting for the client, then
// reads from r. Before a read from the connection, which may block, it
// flushes the responses written so far: a client may wait for them
// before it sends the rest (a partial line, an empty line after a
// pipelined command).
type pendingReader struct {
	pending []byte
	r       io.Reader
	s       *session
}

func (p *pendingReader) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		return n, nil
	}
	s := p.s
	if s != nil && s.bw != nil && (s.bw.Buffered() > 0 || s.comp != nil && s.comp.out.dirty) {
		if err := s.enc.Flush(); err != nil {
			return 0, err
		}
	}
	n, err := p.r.Read(b)
	if n > 0 && s != nil && s.r != nil && s.r.InLiteral() {
		s.literalProgress(n)
	}
	return n, err
}

// deadlineWriter pushes the write deadline forward before every write, so
// a large FETCH to a slow but live client is not cut off while a client
// that stops reading is.
type deadlineWriter struct{ s *session }

func (w deadlineWriter) Write(p []byte) (int, error) {
	_ = w.s.conn.SetWriteDeadline(time.Now().Add(w.s.srv.idle))
	return w.s.out.Write(p)
}

func newSession(srv *Server, conn net.Conn, tc *netserve.Conn, implicitTLS bool) *session {
	s := &session{srv: srv, conn: conn, tc: tc, tls: implicitTLS, remote: remoteAddr(conn)}
	if srv.remoteFor != nil {
		s.remote = srv.remoteFor(conn)
	}
	s.id = srv.sessionIDs.Add(1)
	s.ctx = store.WithOrigin(context.Background(), s.id)
	s.log = srv.log
	if tc != nil {
		s.log = tc.Logger()
	}
	s.in, s.out = conn, conn
	s.src.r, s.src.s = s.in, s
	s.wake.conn = conn
	s.initPark(conn, tc)
	s.acquire()
	s.r = imap.NewReader(s.br, s.continuation, s.readerOptions())
	s.enc = imap.NewEncoder(s.bw)
	return s
}

// continuation is the Reader's callback before a synchronizing literal.
func (s *session) continuation() error {
	return s.enc.ContinuationRequest("Ready for literal data")
}

// acquire takes buffers from the pools.
func (s *session) acquire() {
	if s.br == nil {
		s.br = s.srv.readers.Get().(*bufio.Reader)
		s.br.Reset(&s.src)
		if s.r != nil {
			s.r.Reset(s.br)
		}
	}
	if s.bw == nil {
		s.bw = s.srv.writers.Get().(*bufio.Writer)
		s.bw.Reset(deadlineWriter{s})
		if s.enc != nil {
			s.enc.Reset(s.bw)
		}
	}
}

// release gives the buffers back; the writer must be flushed and the
// reader empty.
func (s *session) release() {
	if s.br != nil {
		s.br.Reset(nil)
		s.srv.readers.Put(s.br)
		s.br = nil
	}
	if s.bw != nil {
		s.bw.Reset(nil)
		s.srv.writers.Put(s.bw)
		s.bw = nil
	}
	if s.comp != nil {
		s.comp.out.release()
	}
	// The protocol reader and encoder point at the buffers just given
	// back: drop those pointers too, or a waiting session would keep
	// them alive after the pool let them go (acquire sets them again).
	s.r.Reset(nil)
	s.enc.Reset(nil)
	s.r.ReleaseBuffers()
	s.enc.ReleaseBuffers()
}

// run serves the connection until LOGOUT, an error, the idle timeout or a
// shutdown. It returns early when the session parks (park.go); resume
// goes on from there.
func (s *session) run() {
	s.serve(true)
}

// serve runs the session: from the greeting (start), or back into the
// wait it parked in.
func (s *session) serve(start bool) {
	parked := false
	defer func() {
		if !parked {
			s.cleanup()
		}
	}()
	defer func() {
		if x := recover(); x != nil {
			parked = false
			s.log.Error("panic in imap session", "panic", x, "stack", string(debug.Stack()))
			if s.bw != nil && s.enc.Err() == nil {
				_ = s.enc.StatusResponse("", imap.BYE, "SERVERBUG", "Internal server error, closing connection")
				_ = s.enc.Flush()
			}
		}
	}()
	if start {
		if s.tls {
			if tc, ok := s.conn.(*tls.Conn); ok && !s.handshake(tc) {
				return
			}
		}
		// RFC 9051 §7.1.1: the greeting, with the capabilities (§7.2.2).
		host := s.srv.opt.Hostname
		if host == "" {
			host = "postfach"
		}
		s.enc.Untagged().Atom(imap.OK).Code("CAPABILITY " + s.capabilities()).Text(host + " IMAP server ready").End()
	}
	parked = s.loop()
}

// loop reads and runs commands until the session ends (false) or parks
// (true).
func (s *session) loop() (parked bool) {
	for {
		if s.idle != nil || s.notifying() {
			// IDLE, or NOTIFY (RFC 5465) between commands: store events
			// wake the wait. RFC 9051 §6.3.13: the idle timeout still
			// applies in IDLE (clients re-issue IDLE every 29 minutes).
			s.setBusy(false)
			err := s.wait(true)
			if errors.Is(err, errPark) {
				if s.park(true) {
					return true
				}
				continue
			}
			if s.idle != nil || err != nil {
				if err := s.idleStep(err); err != nil {
					if !errors.Is(err, errLogout) {
						s.log.Debug("session ended", "err", err)
					}
					_ = s.flush()
					return false
				}
				s.setBusy(false)
				continue
			}
		} else if err := s.waitInput(); err != nil {
			if errors.Is(err, errPark) {
				if s.park(false) {
					return true
				}
				continue
			}
			s.readFailed(err)
			return false
		}
		s.setBusy(true)
		cmd, err := s.r.ReadCommand()
		if err != nil {
			var pe *imap.ParseError
			if !errors.As(err, &pe) {
				s.readFailed(err)
				return false
			}
			if !s.parseError(pe) {
				return false
			}
			s.setBusy(false)
			continue
		}
		if err := s.execute(cmd); err != nil {
			if s.byeIfKilled() {
				return false
			}
			if !errors.Is(err, errLogout) {
				s.log.Debug("session ended", "err", err)
			}
			_ = s.flush()
			return false
		}
		s.setBusy(false)
		if s.byeIfKilled() {
			return false
		}
		if s.gone {
			_ = s.flush()
			return false
		}
	}
}

// parseError answers a command the Reader refused; false ends the session.
func (s *session) parseError(pe *imap.ParseError) bool {
	s.log.Debug("bad command", "status", pe.Status, "reason", pe.Reason)
	if pe.Limit != "" && s.state == stateNotAuth && s.tc != nil {
		s.tc.RefusedBeforeLogin(preAuthReason(pe.Limit))
	}
	if pe.Fatal && pe.Tag != "" {
		// The command gets its answer before the BYE that closes the
		// connection (RFC 7888 §4: a literal refused unread; RFC 9051
		// §7.1.5).
		_ = s.enc.StatusResponse(pe.Tag, imap.BAD, pe.Code, pe.Reason)
	}
	_ = s.enc.ErrorResponse(pe)
	if pe.Fatal {
		_ = s.flush()
		s.log.Info("closing after unrecoverable protocol error", "reason", pe.Reason)
		return false
	}
	if pe.Status == imap.BAD {
		return s.countBad()
	}
	return true
}

// countBad counts a BAD response; false means the limit is reached and the
// session ends with BYE.
func (s *session) countBad() bool {
	s.bad++
	if int(s.bad) < s.srv.maxBad {
		return true
	}
	_ = s.enc.StatusResponse("", imap.BYE, "", "Too many bad commands, closing connection")
	_ = s.flush()
	s.log.Info("too many bad commands, closing")
	return false
}

func (s *session) setBusy(b bool) {
	if s.tc != nil {
		s.tc.SetBusy(b)
	}
}

func (s *session) flush() error {
	if s.bw == nil {
		return nil
	}
	return s.enc.Flush()
}

// handshake completes an implicit-TLS handshake.
func (s *session) handshake(tc *tls.Conn) bool {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		s.log.Info("tls handshake failed", "err", err)
		return false
	}
	return true
}

// errWake is returned by wait(true) (IDLE, NOTIFY) when store events
// arrived.
var errWake = errors.New("woken by store event")

// waitInput waits until the client sends something. When nothing is
// buffered it first flushes the responses and gives the buffers back to
// the pools, and reads the first bytes into a small array; the buffers
// are taken again when data has arrived. This keeps a waiting session
// small. (Sessions in IDLE or with NOTIFY wait in run with wait(true):
// store events wake them.)
func (s *session) waitInput() error {
	return s.wait(false)
}

// pushWake reports store events while the session waits for its client:
// in IDLE, or with NOTIFY between commands. It leaves the buffers
// released.
func (s *session) pushWake() error {
	s.acquire()
	var err error
	if s.idle != nil {
		err = s.sync(true)
	} else {
		err = s.syncBetween()
	}
	if err == nil {
		err = s.flush()
	}
	if err != nil {
		return err
	}
	if s.gone {
		_ = s.enc.StatusResponse("", imap.BYE, "", "Account removed, closing connection")
		_ = s.flush()
		return errLogout
	}
	s.release()
	return nil
}

// wait waits for input (see waitInput). When interruptible (IDLE, NOTIFY),
// a store event ends the wait with errWake. It returns errPark when the
// session should park instead of blocking (park.go); the resumed session
// calls wait again and the same wait goes on.
func (s *session) wait(interruptible bool) error {
	err := s.waitOrPark(interruptible)
	if !errors.Is(err, errPark) {
		s.inWait = false
	}
	// RFC 9051 §5.4: the autologout timer measures the client's
	// inactivity; updates pushed to it (errWake) do not restart it.
	s.keepWaitUntil = errors.Is(err, errWake)
	return err
}

func (s *session) waitOrPark(interruptible bool) error {
	if !s.inWait {
		if s.br != nil && s.br.Buffered() > 0 {
			return nil
		}
		if err := s.flush(); err != nil {
			return err
		}
		s.release()
		if !s.keepWaitUntil {
			s.waitUntil = s.idleDeadline()
		}
		s.inWait, s.graceOver = true, false
	}
	deadline := s.waitUntil
	for {
		if s.killedReason() != "" {
			s.acquire()
			return errKilled
		}
		if interruptible {
			s.wake.mu.Lock()
			if s.wake.woken {
				s.wake.woken = false
				s.wake.mu.Unlock()
				s.acquire()
				return errWake
			}
			s.wake.mu.Unlock()
		}
		readUntil := deadline
		grace := false
		if s.parkable() && !s.tc.Draining() {
			if s.graceOver || s.srv.parkAfter <= 0 {
				// Whatever arrived is read without waiting; with
				// nothing there, and time left, the session parks.
				n, again, err := s.tryRead(s.small[:])
				if n > 0 {
					// The command must be complete by the wait's
					// deadline: only a complete line restarts the
					// timer (lineRead).
					s.src.pending = s.small[:n]
					s.setReadDeadline(s.waitUntil)
					s.acquire()
					return nil
				}
				if !again {
					s.acquire()
					return err
				}
				if time.Now().Before(deadline) {
					return errPark
				}
				// The idle timeout: the read below fails at once.
			} else if g := time.Now().Add(s.srv.parkAfter); g.Before(deadline) {
				// A client in the middle of its work sends the next
				// command soon: wait for it a little in a read before
				// parking, which costs a trip through the poller.
				readUntil, grace = g, true
			}
		}
		if interruptible {
			s.wake.mu.Lock()
			if s.wake.woken {
				s.wake.mu.Unlock()
				continue
			}
			s.setReadDeadlineLocked(readUntil)
			s.wake.waiting = true
			s.wake.mu.Unlock()
		} else {
			s.setReadDeadline(readUntil)
		}
		n, err := s.in.Read(s.small[:])
		woken := false
		if interruptible {
			s.wake.mu.Lock()
			s.wake.waiting = false
			woken = s.wake.woken
			s.wake.mu.Unlock()
		}
		if n > 0 {
			s.src.pending = s.small[:n]
			s.setReadDeadline(s.waitUntil)
			s.acquire()
			return nil
		}
		if err == nil {
			continue
		}
		if s.killedReason() != "" {
			s.acquire()
			return errKilled
		}
		if s.comp != nil {
			// The inflater handled wakes below itself (deflateIn.fill);
			// its errors are final.
			s.acquire()
			return err
		}
		timedOut := errors.Is(err, os.ErrDeadlineExceeded) && (s.tc == nil || !s.tc.Draining())
		if woken && timedOut {
			continue // the loop top reports the wake
		}
		if grace && timedOut {
			s.graceOver = true
			continue // park
		}
		s.acquire()
		return err
	}
}

// readFailed handles the end of input: a shutdown or an idle timeout gets
// its BYE (RFC 9051 §7.1.5).
func (s *session) readFailed(err error) {
	if s.byeIfKilled() {
		return
	}
	var ne net.Error
	switch {
	case s.tc != nil && s.tc.Draining():
		_ = s.enc.StatusResponse("", imap.BYE, "UNAVAILABLE", "Server shutting down, try again later")
		_ = s.flush()
		s.log.Debug("session ended by shutdown")
	case errors.As(err, &ne) && ne.Timeout() && s.tc != nil && s.tc.LoginExpired():
		_ = s.enc.StatusResponse("", imap.BYE, "", "Login timeout, closing connection")
		_ = s.flush()
		s.log.Info("login timeout")
	case errors.As(err, &ne) && ne.Timeout():
		_ = s.enc.StatusResponse("", imap.BYE, "", "Idle timeout, closing connection")
		_ = s.flush()
		s.log.Info("idle timeout")
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF):
		s.log.Debug("connection closed by client")
	default:
		s.log.Debug("read failed", "err", err)
	}
}

// cleanup ends the session's subscription and idle timer.
func (s *session) cleanup() {
	s.stopParking()
	s.setNotify(nil)
	if s.sub != nil {
		s.sub.Close()
		s.sub = nil
	}
	s.queued = nil
	if s.br != nil || s.bw != nil {
		s.release()
	}
	if s.comp != nil {
		s.comp.out.release()
	}
}

// secure reports whether plaintext authentication is allowed on this
// connection (RFC 9051 §11.1, RFC 8314): TLS, loopback, or allowed by the
// operator.
func (s *session) secure() bool {
	if s.tls || s.srv.opt.AllowInsecureAuth {
		return true
	}
	return s.srv.loopbackSec && s.remote.IsLoopback()
}

// capabilities returns the capability list for the current state (RFC
// 9051 §7.2.2). A capability is listed only when it works.
func (s *session) capabilities() string {
	var b strings.Builder
	b.WriteString("IMAP4rev1 IMAP4rev2")
	if s.state == stateNotAuth {
		if s.srv.opt.TLSConfig != nil && !s.tls {
			b.WriteString(" STARTTLS")
		}
		if s.secure() {
			for _, m := range s.srv.mechs {
				if auth.OfferMechanism(m, s.tls) {
					b.WriteString(" AUTH=" + m)
				}
			}
		} else {
			// RFC 9051 §6.2.3, RFC 3501 §7.2.1.
			b.WriteString(" LOGINDISABLED")
		}
		b.WriteString(" SASL-IR")
	}
	b.WriteString(" LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN" +
		" SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED LIST-STATUS STATUS=SIZE" +
		" MULTIAPPEND CATENATE BINARY UTF8=ACCEPT CONDSTORE QRESYNC PREVIEW" +
		" UNAUTHENTICATE REPLACE APPENDLIMIT=")
	b.WriteString(itoa64(s.srv.maxMsg))
	b.WriteString(searchCapabilities)
	// RFC 5465, RFC 5464, RFC 8474.
	b.WriteString(" NOTIFY METADATA METADATA-SERVER OBJECTID")
	if s.srv.urlauth {
		// RFC 4467, RFC 5524 (urlauth.go).
		b.WriteString(urlCapabilities)
	}
	b.WriteString(quotaCapabilities)
	if s.state != stateNotAuth && s.comp == nil {
		// RFC 4978 §3: after authentication, once.
		b.WriteString(" COMPRESS=DEFLATE")
	}
	return b.String()
}

// handler runs one command. It returns nil for OK (the dispatcher writes
// the tagged response), a *statusError or a store/auth error for NO or
// BAD, and errLogout or a connection error to end the session.
type handler func(s *session, cmd imap.Command) error

// state sets for the dispatch table.
const (
	inNotAuth  = 1 << stateNotAuth
	inAuth     = 1 << stateAuth
	inSelected = 1 << stateSelected
	inAny      = inNotAuth | inAuth | inSelected
	inLoggedIn = inAuth | inSelected
)

type command struct {
	h      handler
	states uint8
}

// commands is the dispatch table: the handler of each command and the
// states it is allowed in. It is never modified.
var commands = map[string]command{
	// RFC 9051 §6.1: any state.
	"CAPABILITY": {(*session).cmdCapability, inAny},
	"NOOP":       {(*session).cmdNoop, inAny},
	"LOGOUT":     {(*session).cmdLogout, inAny},
	"ID":         {(*session).cmdID, inAny},
	// RFC 9051 §6.2: not authenticated.
	"STARTTLS":     {(*session).cmdStartTLS, inNotAuth},
	"AUTHENTICATE": {(*session).cmdAuthenticate, inNotAuth},
	"LOGIN":        {(*session).cmdLogin, inNotAuth},
	// RFC 9051 §6.3: authenticated (and selected).
	"ENABLE":         {(*session).cmdEnable, inAuth},
	"SELECT":         {(*session).cmdSelect, inLoggedIn},
	"EXAMINE":        {(*session).cmdSelect, inLoggedIn},
	"CREATE":         {(*session).cmdCreate, inLoggedIn},
	"DELETE":         {(*session).cmdDelete, inLoggedIn},
	"RENAME":         {(*session).cmdRename, inLoggedIn},
	"SUBSCRIBE":      {(*session).cmdSubscribe, inLoggedIn},
	"UNSUBSCRIBE":    {(*session).cmdUnsubscribe, inLoggedIn},
	"LIST":           {(*session).cmdList, inLoggedIn},
	"LSUB":           {(*session).cmdLsub, inLoggedIn},
	"NAMESPACE":      {(*session).cmdNamespace, inLoggedIn},
	"STATUS":         {(*session).cmdStatus, inLoggedIn},
	"APPEND":         {(*session).cmdAppend, inLoggedIn},
	"IDLE":           {(*session).cmdIdle, inLoggedIn},
	"UNAUTHENTICATE": {(*session).cmdUnauthenticate, inLoggedIn},
	// RFC 9051 §6.4: selected.
	"CHECK":    {(*session).cmdCheck, inSelected},
	"CLOSE":    {(*session).cmdClose, inSelected},
	"UNSELECT": {(*session).cmdUnselect, inSelected},
	"EXPUNGE":  {(*session).cmdExpunge, inSelected},
	"SEARCH":   {(*session).cmdSearch, inSelected},
	"SORT":     {(*session).cmdSort, inSelected},
	"THREAD":   {(*session).cmdThread, inSelected},
	// RFC 5267 §4.3.5.
	"CANCELUPDATE": {(*session).cmdCancelUpdate, inSelected},
	"FETCH":        {(*session).cmdFetch, inSelected},
	"STORE":        {(*session).cmdStore, inSelected},
	"COPY":         {(*session).cmdCopy, inSelected},
	"MOVE":         {(*session).cmdMove, inSelected},
	"REPLACE":      {(*session).cmdReplace, inSelected},
	// Extensions valid in the authenticated and selected states.
	"COMPRESS":    {(*session).cmdCompress, inLoggedIn},
	"NOTIFY":      {(*session).cmdNotify, inLoggedIn},
	"GETMETADATA": {(*session).cmdGetMetadata, inLoggedIn},
	"SETMETADATA": {(*session).cmdSetMetadata, inLoggedIn},
	// RFC 9208 §4.1 (quota.go).
	"GETQUOTA":     {(*session).cmdGetQuota, inLoggedIn},
	"GETQUOTAROOT": {(*session).cmdGetQuotaRoot, inLoggedIn},
	"SETQUOTA":     {(*session).cmdSetQuota, inLoggedIn},
	// RFC 4467 §6, RFC 5524 (urlauth.go).
	"GENURLAUTH": {(*session).cmdGenURLAuth, inLoggedIn},
	"RESETKEY":   {(*session).cmdResetKey, inLoggedIn},
	"URLFETCH":   {(*session).cmdURLFetch, inLoggedIn},
}

// aborter is implemented by the streaming commands (APPEND, REPLACE),
// whose remaining data must be skipped when they are refused unread.
type aborter interface{ Abort() error }

// execute runs one command and writes its tagged response. A non-nil
// error ends the session.
func (s *session) execute(cmd imap.Command) error {
	b := cmd.Base()
	c, ok := commands[b.Name]
	if !ok {
		return s.refuseUnread(cmd, &statusError{imap.BAD, "", "Command not supported"})
	}
	if c.states&(1<<s.state) == 0 {
		text := "Command not allowed in this state"
		switch s.state {
		case stateNotAuth:
			text = "Log in first"
		case stateAuth:
			if c.states&inSelected != 0 {
				text = "Select a mailbox first"
			}
		}
		return s.refuseUnread(cmd, &statusError{imap.BAD, "", text})
	}
	s.okCode, s.okText = "", ""
	s.condstoreBefore = s.condstore
	s.trace(cmd)
	err := c.h(s, cmd)
	return s.finish(b, err)
}

// refuseUnread answers a command without running it, skipping the data of
// a streaming command.
func (s *session) refuseUnread(cmd imap.Command, se *statusError) error {
	if a, ok := cmd.(aborter); ok {
		if err := a.Abort(); err != nil {
			var pe *imap.ParseError
			if errors.As(err, &pe) {
				pe.Tag = cmd.Base().Tag
				s.parseError(pe)
				return errLogout
			}
			return err
		}
	}
	return s.finish(cmd.Base(), se)
}

// errLogout ends the session after the response was written.
var errLogout = errors.New("logout")

// connError marks an error of the connection itself (a failed read or
// write): the session ends.
type connError struct{ err error }

func (e *connError) Error() string { return "connection: " + e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// finish writes the tagged response of a command (after the unsolicited
// responses the RFC allows at this point) and decides whether the session
// goes on.
func (s *session) finish(b *imap.CommandBase, err error) error {
	var ce *connError
	var pe *imap.ParseError
	switch {
	case errors.Is(err, errLogout):
		return err
	case errors.Is(err, errResponded):
		s.count(b.Name, imap.OK)
		return nil
	case errors.Is(err, errIdling):
		return s.enc.Err()
	case errors.As(err, &ce):
		return err
	case errors.As(err, &pe):
		// A streaming command's data failed to parse part-way.
		if pe.Tag == "" {
			pe.Tag = b.Tag
		}
		s.count(b.Name, pe.Status)
		if !s.parseError(pe) {
			return errLogout
		}
		return s.enc.Err()
	}
	if s.enc.Err() != nil {
		return &connError{s.enc.Err()}
	}
	status, code, text := imap.OK, s.okCode, s.okText
	if err != nil {
		status, code, text = s.mapError(err)
	} else if text == "" {
		text = b.Name + " completed"
		if b.UID {
			text = "UID " + text
		}
	}
	if status != imap.BAD && s.sub != nil {
		if serr := s.sync(expungeAllowed(b)); serr != nil {
			var ce *connError
			if errors.As(serr, &ce) {
				return serr
			}
			s.log.Warn("sync with store failed", "err", serr)
		}
	}
	if s.condstore && !s.condstoreBefore && s.sel != nil && b.Name != "SELECT" && b.Name != "EXAMINE" {
		// RFC 7162 §3.1: the first CONDSTORE-enabling command in the
		// selected state reports the mailbox's HIGHESTMODSEQ.
		s.enc.Untagged().Atom(imap.OK).Code("HIGHESTMODSEQ " + itoa64(int64(s.sel.modseq))).Text("Highest").End()
		s.condstoreBefore = true
	}
	if status == imap.BAD {
		s.count(b.Name, status)
		_ = s.enc.StatusResponse(b.Tag, status, code, text)
		if !s.countBad() {
			return errLogout
		}
	} else {
		s.bad = 0
		s.count(b.Name, status)
		_ = s.enc.StatusResponse(b.Tag, status, code, text)
	}
	if s.gone {
		_ = s.enc.StatusResponse("", imap.BYE, "", "Account removed, closing connection")
	}
	if err := s.enc.Err(); err != nil {
		return &connError{err}
	}
	return nil
}

func (s *session) count(name, status string) {
	if f := s.srv.opt.Metrics.Command; f != nil {
		f(name, status)
	}
}

// expungeAllowed reports whether EXPUNGE responses may be sent before the
// tagged response of a command: never during FETCH, STORE or SEARCH by
// sequence number (RFC 9051 §7.5.1, §5.5); we add SORT, THREAD and COPY,
// whose results are sequence numbers too.
func expungeAllowed(b *imap.CommandBase) bool {
	if b.UID {
		return true
	}
	switch b.Name {
	case "FETCH", "STORE", "SEARCH", "SORT", "THREAD", "COPY":
		return false
	}
	return true
}

// statusError is a NO or BAD response with a response code.
type statusError struct {
	status string // imap.NO or imap.BAD
	code   string // without brackets, or ""
	text   string
}

func (e *statusError) Error() string { return e.status + " " + e.code + " " + e.text }

func no(code, text string) error  { return &statusError{imap.NO, code, text} }
func bad(code, text string) error { return &statusError{imap.BAD, code, text} }

// mapError turns an error into a response: generic text, the response
// codes of RFC 5530 and the extensions. Unexpected errors are logged here,
// once, and answered with [SERVERBUG].
func (s *session) mapError(err error) (status, code, text string) {
	var se *statusError
	var ne *imap.MailboxNameError
	switch {
	case errors.As(err, &se):
		return se.status, se.code, se.text
	case errors.As(err, &ne):
		return imap.NO, "CANNOT", "Invalid mailbox name: " + ne.Reason
	case errors.Is(err, store.ErrNotFound):
		return imap.NO, "NONEXISTENT", "No such mailbox"
	case errors.Is(err, store.ErrExists):
		return imap.NO, "ALREADYEXISTS", "Mailbox already exists"
	case errors.Is(err, store.ErrDamaged):
		// Logged by the store, once per body.
		return imap.NO, "SERVERBUG", "A message's stored copy is damaged (the administrator can find it in the server log)"
	case errors.Is(err, store.ErrMailboxLimit):
		// RFC 5530 §3: LIMIT, an operational limit was reached.
		return imap.NO, "LIMIT", "Too many mailboxes"
	case errors.Is(err, store.ErrOverQuota):
		return imap.NO, "OVERQUOTA", "Quota exceeded"
	case errors.Is(err, store.ErrTooBig):
		return imap.NO, "TOOBIG", "Message too big"
	case errors.Is(err, store.ErrDiskFull):
		s.log.Error("store full", "err", err)
		return imap.NO, "LIMIT", "Server storage is full, try again later"
	case errors.Is(err, store.ErrInvalidName):
		return imap.NO, "CANNOT", "Invalid mailbox name"
	case errors.Is(err, store.ErrInbox):
		return imap.NO, "CANNOT", "Not allowed on INBOX"
	case errors.Is(err, store.ErrHasChildren):
		return imap.NO, "HASCHILDREN", "Mailbox has children"
	case errors.Is(err, store.ErrNoSelect):
		return imap.NO, "CANNOT", "Mailbox cannot hold messages"
	case errors.Is(err, store.ErrEmptyMessage):
		return imap.NO, "CANNOT", "Empty message"
	case errors.Is(err, store.ErrClosed):
		return imap.NO, "UNAVAILABLE", "Server shutting down, try again later"
	case errors.Is(err, auth.ErrFailed):
		return imap.NO, "AUTHENTICATIONFAILED", "Authentication failed"
	case errors.Is(err, auth.ErrRateLimited):
		return imap.NO, "UNAVAILABLE", "Too many failed logins, try again later"
	case errors.Is(err, auth.ErrUnavailable):
		return imap.NO, "UNAVAILABLE", "Authentication temporarily unavailable, try again later"
	case errors.Is(err, auth.ErrMalformed):
		return imap.BAD, "", "Malformed authentication exchange"
	case errors.Is(err, imap.ErrUnknownCTE):
		return imap.NO, "UNKNOWN-CTE", "Cannot decode the content transfer encoding"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return imap.NO, "UNAVAILABLE", "Server shutting down, try again later"
	}
	s.log.Error("command failed", "err", err)
	return imap.NO, "SERVERBUG", "Internal server error"
}
