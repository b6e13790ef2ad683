package auth

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/postfach/postfach/internal/mail"
)

// SASL is the server side of one SASL exchange (RFC 4422). The protocol
// layer moves the bytes (base64 on the wire); Next is called with each
// client response, starting with the initial response (nil when the client
// sent none, an empty slice for an empty one).
type SASL interface {
	// Next consumes a client response. It returns a challenge to send, or
	// done with the authenticated Principal, or an error.
	Next(ctx context.Context, response []byte) (challenge []byte, p *Principal, err error)
}

// Mechanisms lists the SASL mechanisms NewSASL supports, in order of
// preference for advertising. SCRAM-SHA-256-PLUS works only on TLS
// connections: servers offer it there only (OfferMechanism).
func Mechanisms() []string {
	return []string{mechSCRAMPlus, mechSCRAM, "PLAIN", "LOGIN"}
}

// OfferMechanism reports whether a mechanism is offered on a connection:
// SCRAM-SHA-256-PLUS binds to the TLS channel, so it needs TLS.
func OfferMechanism(mech string, tls bool) bool {
	return tls || !strings.EqualFold(mech, mechSCRAMPlus)
}

// NewSASL starts an exchange for a mechanism name (case-insensitive) on
// the connection c.
func (s *Service) NewSASL(mech string, c ConnInfo) (SASL, error) {
	switch strings.ToUpper(mech) {
	case "PLAIN":
		return &plainSASL{s: s, remote: c.Remote, service: c.Service}, nil
	case "LOGIN":
		return &loginSASL{s: s, remote: c.Remote, service: c.Service}, nil
	case mechSCRAM:
		return &scramSASL{s: s, c: c}, nil
	case mechSCRAMPlus:
		if c.TLS == nil {
			return nil, fmt.Errorf("%s needs TLS", mechSCRAMPlus)
		}
		return &scramSASL{s: s, c: c, plus: true}, nil
	}
	return nil, fmt.Errorf("unsupported mechanism %q", mech)
}

// plainSASL implements PLAIN (RFC 4616): one message
// "authzid NUL authcid NUL passwd"; an authzid other than the authcid is
// refused (no proxy authorization, RFC 4616 §2). "Other" is by the
// store's key (mail.NameKey): an authzid in another case is the user, a
// look-alike that names another account is not.
type plainSASL struct {
	s       *Service
	remote  netip.Addr
	service string
}

func (m *plainSASL) Next(ctx context.Context, resp []byte) ([]byte, *Principal, error) {
	if resp == nil {
		return []byte{}, nil, nil // ask for the message with an empty challenge
	}
	parts := bytes.Split(resp, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		m.s.guard.failClient(m.remote, m.service)
		return nil, nil, ErrMalformed
	}
	authz, user, pass := string(parts[0]), string(parts[1]), string(parts[2])
	if authz != "" && mail.NameKey(authz) != mail.NameKey(user) {
		m.s.guard.failClient(m.remote, m.service)
		return nil, nil, ErrFailed
	}
	p, err := m.s.Login(ctx, Credentials{Username: user, Password: pass, Remote: m.remote, Service: m.service})
	return nil, p, err
}

// loginSASL implements the LOGIN mechanism (draft-murchison-sasl-login):
// the server asks "Username:" then "Password:".
type loginSASL struct {
	s       *Service
	remote  netip.Addr
	service string
	step    int
	user    string
}

func (m *loginSASL) Next(ctx context.Context, resp []byte) ([]byte, *Principal, error) {
	switch m.step {
	case 0:
		m.step = 1
		if resp == nil {
			return []byte("Username:"), nil, nil
		}
		fallthrough
	case 1:
		if len(resp) == 0 {
			m.s.guard.failClient(m.remote, m.service)
			return nil, nil, ErrMalformed
		}
		m.user = string(resp)
		m.step = 2
		return []byte("Password:"), nil, nil
	default:
		p, err := m.s.Login(ctx, Credentials{Username: m.user, Password: string(resp), Remote: m.remote, Service: m.service})
		return nil, p, err
	}
}
