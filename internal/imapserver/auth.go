package imapserver

import (
	"crypto/tls"
	"errors"
	"strings"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/store"
)

// cmdCapability: RFC 9051 §6.1.1.
func (s *session) cmdCapability(imap.Command) error {
	s.enc.Untagged().Atom("CAPABILITY").Atom(s.capabilities()).End()
	return nil
}

// cmdNoop: RFC 9051 §6.1.2. The updates go out in finish.
func (s *session) cmdNoop(imap.Command) error { return nil }

// cmdLogout: RFC 9051 §6.1.3.
func (s *session) cmdLogout(cmd imap.Command) error {
	s.enc.Untagged().Atom(imap.BYE).Text("Logging out").End()
	_ = s.enc.StatusResponse(cmd.Base().Tag, imap.OK, "", "LOGOUT completed")
	_ = s.flush()
	s.state = stateLogout
	return errLogout
}

// cmdID: RFC 2971. The client's fields are logged at debug level; its
// name and version are kept for the device it signs in as (or has signed
// in as), for `postfach device list`.
func (s *session) cmdID(cmd imap.Command) error {
	c := cmd.(*imap.ID)
	if len(c.Params) > 0 {
		args := make([]any, 0, 2*len(c.Params))
		var name, version string
		for _, p := range c.Params {
			args = append(args, strings.ToLower(p.Key), p.Value)
			switch strings.ToLower(p.Key) {
			case "name":
				name = p.Value
			case "version":
				version = p.Value
			}
		}
		s.log.Debug("client id", args...)
		s.client = clientName(name, version)
		s.noteClient()
	}
	s.enc.Untagged().Atom("ID").BeginList().String("name").String("postfach").EndList().End()
	return nil
}

// clientName makes the client's name and version from IMAP ID fit for a
// one-line listing: printable characters only, at most 100 bytes.
func clientName(name, version string) string {
	s := strings.TrimSpace(strings.TrimSpace(name) + " " + strings.TrimSpace(version))
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
	if len(s) > 100 {
		s = strings.ToValidUTF8(s[:100], "")
	}
	return s
}

// noteClient records the client's name for the device the session signed
// in as.
func (s *session) noteClient() {
	if s.user == nil || s.user.Device == "" || s.client == "" {
		return
	}
	if cr, ok := s.srv.opt.Auth.(clientRecorder); ok {
		cr.NoteClient(s.ctx, s.user, s.client)
	}
}

// connInfo describes the connection to a SASL mechanism: SCRAM-PLUS binds
// to its TLS channel.
func (s *session) connInfo() auth.ConnInfo {
	c := auth.ConnInfo{Remote: s.remote, Service: "imap"}
	if tc, ok := s.conn.(*tls.Conn); ok && s.tls {
		cs := tc.ConnectionState()
		c.TLS = &cs
		c.ServerCert = auth.ServerCertificate(s.srv.opt.TLSConfig, &cs)
	}
	return c
}

// offered reports whether AUTHENTICATE offers a mechanism on this
// connection.
func (s *session) offered(mech string) bool {
	for _, m := range s.srv.mechs {
		if strings.EqualFold(m, mech) {
			return auth.OfferMechanism(m, s.tls)
		}
	}
	return false
}

// cmdStartTLS: RFC 9051 §6.2.1.
func (s *session) cmdStartTLS(cmd imap.Command) error {
	if s.srv.opt.TLSConfig == nil || s.tls {
		return bad("", "STARTTLS not available")
	}
	if s.r.Buffered() > 0 {
		// RFC 9051 §6.2.1, RFC 8314: data pipelined after STARTTLS
		// would be treated as if it came over TLS: refuse it.
		_ = s.enc.StatusResponse(cmd.Base().Tag, imap.BAD, "", "Data after STARTTLS")
		_ = s.flush()
		return errLogout
	}
	_ = s.enc.StatusResponse(cmd.Base().Tag, imap.OK, "", "Begin TLS negotiation now")
	if err := s.flush(); err != nil {
		return &connError{err}
	}
	tc := tls.Server(s.conn, s.srv.startTLS)
	if !s.handshake(tc) {
		return errLogout
	}
	s.conn = tc
	s.in, s.out = tc, tc
	s.src = pendingReader{r: tc, s: s}
	s.br.Reset(&s.src)
	s.r.Reset(s.br)
	s.bw.Reset(deadlineWriter{s})
	s.enc.Reset(s.bw)
	s.tls = true
	return errResponded
}

// errResponded says the handler has written the tagged response itself.
var errResponded = errors.New("responded")

// cmdLogin: RFC 9051 §6.2.3.
func (s *session) cmdLogin(cmd imap.Command) error {
	c := cmd.(*imap.Login)
	if !s.secure() {
		return no("PRIVACYREQUIRED", "Plaintext login disallowed on non-secure connections: use STARTTLS first")
	}
	ctx, cancel := s.loginCtx()
	defer cancel()
	p, err := s.srv.opt.Auth.Login(ctx, auth.Credentials{Username: c.Username, Password: c.Password, Remote: s.remote, Service: "imap"})
	if err != nil {
		s.loginMetric(err)
		if s.loginTimedOut(err) {
			return errLogout
		}
		return err
	}
	return s.loggedIn(p)
}

// cmdAuthenticate: RFC 9051 §6.2.2, with SASL-IR (RFC 4959).
func (s *session) cmdAuthenticate(cmd imap.Command) error {
	c := cmd.(*imap.Authenticate)
	if !s.offered(c.Mechanism) {
		return no("CANNOT", "Unsupported authentication mechanism")
	}
	if !s.secure() {
		return no("PRIVACYREQUIRED", "Plaintext authentication disallowed on non-secure connections: use STARTTLS first")
	}
	sasl, err := s.srv.opt.Auth.NewSASL(c.Mechanism, s.connInfo())
	if err != nil {
		return no("CANNOT", "Unsupported authentication mechanism")
	}
	var resp []byte // nil: no initial response
	if c.HasInitialResponse {
		resp = c.InitialResponse
	}
	ctx, cancel := s.loginCtx()
	defer cancel()
	for {
		challenge, p, err := sasl.Next(ctx, resp)
		if err != nil {
			s.loginMetric(err)
			if s.loginTimedOut(err) {
				return errLogout
			}
			return err
		}
		if p != nil {
			return s.loggedIn(p)
		}
		if err := s.enc.Continuation(challenge); err != nil {
			return &connError{err}
		}
		resp, err = s.r.ReadSASLResponse()
		var pe *imap.ParseError
		switch {
		case errors.Is(err, imap.ErrSASLCancelled):
			return bad("", "Authentication cancelled")
		case errors.As(err, &pe):
			if fr, ok := s.srv.opt.Auth.(failureRecorder); ok {
				fr.RecordFailure(s.remote)
			}
			return bad("", "Invalid base64 in authentication response")
		case err != nil:
			return &connError{err}
		}
	}
}

func (s *session) loginMetric(err error) {
	f := s.srv.opt.Metrics.Login
	if f == nil {
		return
	}
	if errors.Is(err, auth.ErrFailed) || errors.Is(err, auth.ErrMalformed) {
		f("failed")
	} else {
		f("temp_fail")
	}
}

// loggedIn enters the authenticated state.
func (s *session) loggedIn(p *auth.Principal) error {
	if f := s.srv.opt.Metrics.Login; f != nil {
		f("ok")
	}
	s.user = p
	s.state = stateAuth
	s.enterAuthenticated()
	s.sub = s.srv.opt.Store.Subscribe(p.Account)
	if n, ok := s.sub.(store.Notifier); ok {
		n.SetNotify(s.notifyWake)
	}
	s.log = s.log.With("user", p.Name)
	if p.Device != "" {
		s.log = s.log.With("device", p.Device)
	}
	if s.tc != nil {
		s.tc.SetLogger(s.log)
	}
	s.watchRevocation()
	s.log.Info("logged in")
	s.noteClient()
	// RFC 9051 §6.2.3: the capabilities may change after login.
	s.okCode = "CAPABILITY " + s.capabilities()
	s.okText = "Logged in"
	return nil
}

// cmdUnauthenticate: RFC 8437. The session returns to the not
// authenticated state; enabled extensions are reset.
func (s *session) cmdUnauthenticate(imap.Command) error {
	s.sel = nil
	if s.sub != nil {
		s.sub.Close()
		s.sub = nil
	}
	s.queued = nil
	s.user = nil
	s.setNotify(nil)
	s.state = stateNotAuth
	s.leaveAuthenticated()
	s.rev2, s.utf8, s.condstore, s.qresync = false, false, false, false
	s.enc.SetUTF8(false)
	s.saved = nil
	s.log = s.srv.log
	if s.tc != nil {
		s.log = s.tc.Logger()
	}
	return nil
}

// cmdEnable: RFC 5161, RFC 9051 §6.3.1. ENABLED lists what this command
// newly enabled.
func (s *session) cmdEnable(cmd imap.Command) error {
	c := cmd.(*imap.Enable)
	e := s.enc
	e.Untagged().Atom("ENABLED")
	for _, name := range c.Capabilities {
		switch name {
		case "IMAP4REV2":
			if !s.rev2 {
				s.rev2, s.utf8 = true, true
				e.Atom("IMAP4rev2")
			}
		case "UTF8=ACCEPT":
			// RFC 6855 §3.
			if !s.utf8 || s.rev2 {
				e.Atom("UTF8=ACCEPT")
			}
			s.utf8 = true
		case "CONDSTORE":
			if !s.condstore {
				s.condstore = true
				e.Atom("CONDSTORE")
			}
		case "QRESYNC":
			// RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
			if !s.qresync {
				s.qresync, s.condstore = true, true
				e.Atom("QRESYNC")
			}
		}
	}
	e.End()
	s.enc.SetUTF8(s.utf8)
	return nil
}
