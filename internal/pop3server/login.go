package pop3server

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/auth"
)

// Login failure texts; they never say whether the user exists.
const (
	msgAuthFailed   = "-ERR " + codeAuth + "Authentication failed"
	msgPlaintext    = "-ERR " + codeAuth + "Plaintext authentication disallowed on non-secure connections: use STLS first"
	msgTempFail     = "-ERR " + codeSysTemp + "Authentication temporarily unavailable, try again later"
	msgRateLimited  = "-ERR " + codeSysTemp + "Too many failed logins, try again later"
	msgNoDevice     = "-ERR " + codeAuth + "Per-device logins (ADDRESS#DEVICE) are disabled on this server: log in with the address alone"
	msgInUse        = "-ERR " + codeInUse + "Maildrop already in use by another POP3 session"
	msgLoginDelay   = "-ERR " + codeLoginDelay + "Logged in too recently, wait before logging in again"
	msgMaildropFail = "-ERR " + codeSysTemp + "Cannot open the maildrop, try again later"
)

// cmdUser takes the user name (RFC 1939 §7). The answer is the same for
// every name.
func (x *session) cmdUser(cmd command) error {
	name := strings.TrimSpace(cmd.rest)
	if name == "" {
		return x.badCommand("USER needs a user name")
	}
	if !x.secure() {
		x.reply(msgPlaintext)
		return x.failedLogin()
	}
	x.user = name
	x.reply("+OK Send PASS")
	return nil
}

// cmdPass checks the password for the preceding USER (RFC 1939 §7). The
// whole rest of the line is the password, spaces included.
func (x *session) cmdPass(cmd command) error {
	user := x.user
	if user == "" {
		return x.badCommand("Send USER first")
	}
	if !x.secure() {
		x.reply(msgPlaintext)
		return x.failedLogin()
	}
	wctx, cancel := x.loginWaitCtx()
	p, err := x.s.opt.Auth.Login(wctx, auth.Credentials{Username: user, Password: cmd.rest, Remote: x.remote, Service: "pop3"})
	cancel()
	if err != nil {
		return x.loginError(err)
	}
	return x.startTransaction(x.loginCtx(), p)
}

// cmdAuth runs a SASL exchange (RFC 5034 §4). Without a mechanism it lists
// the mechanisms, as many clients expect.
func (x *session) cmdAuth(cmd command) error {
	if len(cmd.args) == 0 {
		x.reply("+OK Mechanisms follow")
		if x.secure() {
			for _, m := range x.s.mechs {
				if auth.OfferMechanism(m, x.tls) {
					x.reply("%s", m)
				}
			}
		}
		x.reply(".")
		return nil
	}
	if len(cmd.args) > 2 {
		return x.badCommand("AUTH takes a mechanism and an optional initial response")
	}
	mech := strings.ToUpper(cmd.args[0])
	supported := false
	for _, m := range x.s.mechs {
		supported = supported || strings.EqualFold(m, mech) && auth.OfferMechanism(m, x.tls)
	}
	if !supported {
		return x.badCommand("Unsupported authentication mechanism")
	}
	if !x.secure() {
		x.reply(msgPlaintext)
		return x.failedLogin()
	}
	sasl, err := x.s.opt.Auth.NewSASL(mech, x.connInfo())
	if err != nil {
		return x.badCommand("Unsupported authentication mechanism")
	}
	var resp []byte // nil: no initial response
	if len(cmd.args) == 2 {
		// RFC 5034 §4: "=" is an empty initial response.
		if cmd.args[1] == "=" {
			resp = []byte{}
		} else if resp, err = decodeBase64(cmd.args[1]); err != nil {
			return x.saslBase64Error()
		}
	}
	wctx, cancel := x.loginWaitCtx()
	defer cancel()
	for {
		challenge, p, err := sasl.Next(wctx, resp)
		if err != nil {
			return x.loginError(err)
		}
		if p != nil {
			return x.startTransaction(x.loginCtx(), p)
		}
		// RFC 5034 §4: a server challenge is "+" SP base64.
		x.reply("+ %s", base64.StdEncoding.EncodeToString(challenge))
		if err := x.w.Flush(); err != nil {
			return err
		}
		x.setReadDeadline(time.Now().Add(x.s.idle))
		line, err := x.readLine()
		if errors.Is(err, errLineTooLong) {
			return x.badCommand("Authentication response too long")
		}
		if errors.Is(err, errPreAuthLimit) {
			return err
		}
		if err != nil {
			x.readFailed(err)
			return err
		}
		l := strings.TrimRight(string(line), "\r\n")
		x.releaseLine()
		if l == "*" {
			// RFC 5034 §4: the client cancelled.
			x.reply("-ERR Authentication cancelled")
			return x.failedLogin()
		}
		if resp, err = decodeBase64(l); err != nil {
			return x.saslBase64Error()
		}
	}
}

// connInfo describes the connection to a SASL mechanism: SCRAM-PLUS binds
// to its TLS channel.
func (x *session) connInfo() auth.ConnInfo {
	c := auth.ConnInfo{Remote: x.remote, Service: "pop3"}
	if tc, ok := x.conn.(*tls.Conn); ok && x.tls {
		cs := tc.ConnectionState()
		c.TLS = &cs
		c.ServerCert = auth.ServerCertificate(x.s.opt.TLSConfig, &cs)
	}
	return c
}

// decodeBase64 decodes a SASL response; padding is optional.
func decodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// saslBase64Error answers a response that is not base64 (RFC 5034 §4: the
// AUTH command fails).
func (x *session) saslBase64Error() error {
	if fr, ok := x.s.opt.Auth.(failureRecorder); ok {
		fr.RecordFailure(x.remote)
	}
	x.reply("-ERR Invalid base64 in authentication response")
	return x.failedLogin()
}

// failedLogin counts a failed authentication like a bad command, so one
// connection cannot try passwords forever.
func (x *session) failedLogin() error {
	x.metric("failed")
	if x.countBad() {
		return errCloseSession
	}
	return nil
}

func (x *session) metric(result string) {
	if f := x.s.opt.Metrics.Login; f != nil {
		f(result)
	}
}

// loginError answers a failed Login or SASL step (RFC 3206: [AUTH] for
// credentials, [SYS/TEMP] for what a retry later may fix).
func (x *session) loginError(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded) && x.tc != nil && x.tc.LoginExpired():
		// The guessing protection's delay was cut off at the login
		// deadline: the session ends as at the login timeout.
		x.reply("-ERR " + codeSysTemp + "Login timeout, closing connection")
		x.log.Info("login timeout, closing")
		x.metric("failed")
		return errCloseSession
	case errors.Is(err, auth.ErrRateLimited):
		x.reply(msgRateLimited)
	case errors.Is(err, auth.ErrUnavailable):
		x.log.Warn("login unavailable", "err", err)
		x.reply(msgTempFail)
		x.metric("temp_fail")
		return nil
	case errors.Is(err, auth.ErrAborted):
		x.reply("-ERR Authentication cancelled")
	default:
		x.reply(msgAuthFailed)
	}
	return x.failedLogin()
}

// startTransaction opens the maildrop for an authenticated principal and
// enters the TRANSACTION state.
func (x *session) startTransaction(ctx context.Context, p *auth.Principal) error {
	acct, err := x.s.opt.Store.AccountByID(ctx, p.Account)
	if err != nil {
		x.log.Error("login: account lookup failed", "user", p.Name, "err", err)
		x.reply(msgTempFail)
		x.metric("temp_fail")
		return nil
	}
	pol := x.s.policy(acct.Settings)
	// Device names are matched case-insensitively: "Office-PC" and
	// "office-pc" are one device. A device found by its password (no
	// "#NAME" in the login name) gets its view too, when views are on;
	// with them off it gets the plain maildrop.
	device := strings.ToLower(p.Device)
	if device != "" && !pol.deviceViews {
		if p.Named {
			x.reply(msgNoDevice)
			return x.failedLogin()
		}
		device = ""
	}
	key := maildropKey{acct: acct.ID, device: device}
	if !x.s.lockMaildrop(key) {
		x.log.Info("login refused: maildrop in use", "user", acct.Name, "device", device)
		x.reply(msgInUse)
		x.metric("in_use")
		return nil
	}
	if !x.s.loginAllowed(key, time.Now()) {
		x.s.unlockMaildrop(key)
		x.reply(msgLoginDelay)
		x.metric("login_delay")
		return nil
	}
	md, err := openMaildrop(ctx, x.s, acct, device, pol, x.log)
	if err != nil {
		x.s.unlockMaildrop(key)
		x.log.Error("open maildrop failed", "user", acct.Name, "device", device, "err", err)
		x.reply(msgMaildropFail)
		x.metric("temp_fail")
		return nil
	}
	md.key = key
	x.md = md
	x.watchRevocation(md.sub, strings.ToLower(p.Device))
	x.state = stateTransaction
	x.progressed()
	x.loggedIn()
	x.log = x.log.With("user", acct.Name)
	if p.Device != "" {
		x.log = x.log.With("device", strings.ToLower(p.Device))
	}
	if x.tc != nil {
		x.tc.SetLogger(x.log)
	}
	x.metric("ok")
	n, size := md.stat()
	x.log.Info("login", "messages", n, "mode", md.modeName())
	x.reply("+OK Logged in, %d %s (%d octets)", n, plural(n, "message", "messages"), size)
	return nil
}
