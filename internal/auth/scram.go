package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/text/secure/precis"

	"github.com/postfach/postfach/internal/mail"
)

// SCRAM-SHA-256 (RFC 7677, RFC 5802) keys. What the store keeps of a
// password for SCRAM is its salt, the iteration count, StoredKey and
// ServerKey (RFC 5802 §3), in the form of RFC 5803 §3:
// "SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY" (base64). StoredKey is a
// hash of a key derived from the password, so the password cannot be
// recovered from it other than by guessing; each guess costs the
// iteration count in HMACs, far less than argon2id, which is why the
// account password's argon2id hash is kept too and used for PLAIN and
// LOGIN.
//
// All credentials of one account (its password, its devices' passwords)
// share one salt and iteration count (accountSalt), so that a SCRAM
// exchange with the plain address can check the client's proof against
// every one of them and so learn which device signs in, as PLAIN does.
const (
	scramPrefix = "SCRAM-SHA-256$"
	// ScramIterations is the PBKDF2 iteration count of new SCRAM keys
	// (RFC 7677 §4: at least 4096).
	ScramIterations = 16384
	scramSaltLen    = 16
	// Mechanism names.
	mechSCRAM     = "SCRAM-SHA-256"
	mechSCRAMPlus = "SCRAM-SHA-256-PLUS"
	// Channel binding types: RFC 9266, RFC 5929 §4.
	cbExporter  = "tls-exporter"
	cbEndPoint  = "tls-server-end-point"
	exporterLbl = "EXPORTER-Channel-Binding"
)

// scramKeys are parsed SCRAM credentials.
type scramKeys struct {
	iter                 int
	salt                 []byte
	storedKey, serverKey []byte
}

// saslPrep prepares a password as RFC 5802 §2.2 asks (SASLprep, RFC
// 4013). Printable ASCII is left as it is, which is what SASLprep does to
// it; other passwords go through PRECIS OpaqueString (RFC 8265, which
// replaces SASLprep for passwords and agrees with it on what people
// type), and are used unchanged when it refuses them.
func saslPrep(pw string) string {
	ascii := true
	for i := 0; i < len(pw); i++ {
		if pw[i] < 0x20 || pw[i] > 0x7e {
			ascii = false
			break
		}
	}
	if ascii {
		return pw
	}
	if p, err := precis.OpaqueString.String(pw); err == nil {
		return p
	}
	return pw
}

// ComputeSCRAM returns the stored SCRAM-SHA-256 keys of a password.
func ComputeSCRAM(password string, salt []byte, iter int) string {
	salted, _ := pbkdf2.Key(sha256.New, saslPrep(password), salt, iter, sha256.Size) // cannot fail for these sizes
	clientKey := hmacSum(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	serverKey := hmacSum(salted, "Server Key")
	return fmt.Sprintf("%s%d:%s$%s:%s", scramPrefix, iter, base64.StdEncoding.EncodeToString(salt),
		base64.StdEncoding.EncodeToString(stored[:]), base64.StdEncoding.EncodeToString(serverKey))
}

// newSCRAMSalt returns a random salt.
func newSCRAMSalt() []byte {
	b := make([]byte, scramSaltLen)
	rand.Read(b)
	return b
}

func hmacSum(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func parseSCRAM(s string) (scramKeys, error) {
	rest, ok := strings.CutPrefix(s, scramPrefix)
	if !ok {
		return scramKeys{}, errBadHash
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return scramKeys{}, errBadHash
	}
	it, salt, ok1 := strings.Cut(params, ":")
	st, sv, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return scramKeys{}, errBadHash
	}
	var k scramKeys
	var err error
	if k.iter, err = strconv.Atoi(it); err != nil || k.iter < 1 || k.iter > 1<<24 {
		return scramKeys{}, errBadHash
	}
	var e1, e2, e3 error
	k.salt, e1 = base64.StdEncoding.DecodeString(salt)
	k.storedKey, e2 = base64.StdEncoding.DecodeString(st)
	k.serverKey, e3 = base64.StdEncoding.DecodeString(sv)
	if e1 != nil || e2 != nil || e3 != nil || len(k.salt) == 0 || len(k.storedKey) != sha256.Size || len(k.serverKey) != sha256.Size {
		return scramKeys{}, errBadHash
	}
	return k, nil
}

// ConnInfo describes the connection a SASL exchange runs on.
type ConnInfo struct {
	// Remote is the client's IP, for the guessing protection and logs.
	Remote netip.Addr
	// Service is "imap", "pop3" or "submission".
	Service string
	// TLS is the connection's TLS state; nil without TLS.
	TLS *tls.ConnectionState
	// ServerCert is the DER certificate the server presented on this
	// connection, for the tls-server-end-point channel binding (RFC 5929
	// §4); nil when unknown (that binding is then refused).
	ServerCert []byte
}

// ServerCertificate returns the leaf certificate (DER) that a server with
// cfg presents to the client of cs: what GetCertificate gives for its
// server name, or the first of cfg.Certificates. nil when there is none.
func ServerCertificate(cfg *tls.Config, cs *tls.ConnectionState) []byte {
	if cfg == nil || cs == nil {
		return nil
	}
	if cfg.GetCertificate != nil {
		c, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: cs.ServerName})
		if err == nil && c != nil && len(c.Certificate) > 0 {
			return c.Certificate[0]
		}
	}
	if len(cfg.Certificates) > 0 && len(cfg.Certificates[0].Certificate) > 0 {
		return cfg.Certificates[0].Certificate[0]
	}
	return nil
}

// channelBinding returns the channel binding data of a type on the
// connection, or an error when the type cannot be had there.
func (c ConnInfo) channelBinding(typ string) ([]byte, error) {
	if c.TLS == nil {
		return nil, errors.New("no TLS")
	}
	switch typ {
	case cbExporter:
		// RFC 9266 §3: only with TLS 1.3 (TLS 1.2 would need the
		// extended master secret, which is not checked here).
		if c.TLS.Version != tls.VersionTLS13 {
			return nil, errors.New("tls-exporter needs TLS 1.3")
		}
		return c.TLS.ExportKeyingMaterial(exporterLbl, nil, 32)
	case cbEndPoint:
		if c.ServerCert == nil {
			return nil, errors.New("server certificate unknown")
		}
		cert, err := x509.ParseCertificate(c.ServerCert)
		if err != nil {
			return nil, err
		}
		// RFC 5929 §4.1: the hash of the certificate's signature
		// algorithm, SHA-256 for MD5 and SHA-1 (and, by common practice,
		// for algorithms without a hash of their own, such as Ed25519).
		var h hash.Hash
		switch cert.SignatureAlgorithm {
		case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
			h = sha512.New384()
		case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
			h = sha512.New()
		default:
			h = sha256.New()
		}
		h.Write(c.ServerCert)
		return h.Sum(nil), nil
	}
	return nil, fmt.Errorf("unsupported channel binding type %q", typ)
}

// scramSASL is the server side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS
// (RFC 5802 §5, RFC 7677).
type scramSASL struct {
	s    *Service
	c    ConnInfo
	plus bool // SCRAM-SHA-256-PLUS
	step int

	gs2Header       string // as sent, with the trailing comma
	cbData          []byte // the channel binding data expected (PLUS)
	user            string // the username (decoded saslname)
	clientFirstBare string
	serverFirst     string
	nonce           string // client nonce + server nonce

	cand      candidates
	principal *Principal
}

// Next implements SASL.
func (m *scramSASL) Next(ctx context.Context, resp []byte) ([]byte, *Principal, error) {
	switch m.step {
	case 0:
		if resp == nil {
			m.step = 1
			return []byte{}, nil, nil // ask for the client-first-message
		}
		fallthrough
	case 1:
		m.step = 2
		return m.first(ctx, resp)
	case 2:
		m.step = 3
		return m.final(ctx, resp)
	case 3:
		// RFC 5802 §5: the client has checked the server signature; it
		// sends nothing more (an empty response to the last challenge).
		m.step = 4
		if len(resp) != 0 || m.principal == nil {
			return nil, nil, m.malformed()
		}
		return nil, m.principal, nil
	}
	return nil, nil, m.malformed()
}

func (m *scramSASL) malformed() error {
	m.s.guard.failClient(m.c.Remote, m.c.Service)
	return ErrMalformed
}

// first handles the client-first-message and answers the
// server-first-message (RFC 5802 §5.1, §7).
func (m *scramSASL) first(ctx context.Context, msg []byte) ([]byte, *Principal, error) {
	s := string(msg)
	// gs2-header: gs2-cbind-flag "," [authzid] ","
	flag, rest, ok := strings.Cut(s, ",")
	if !ok {
		return nil, nil, m.malformed()
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, nil, m.malformed()
	}
	m.gs2Header = s[:len(s)-len(bare)]
	switch {
	case flag == "n":
		if m.plus {
			return nil, nil, m.malformed() // -PLUS needs channel binding
		}
	case flag == "y":
		// RFC 5802 §6: the client could bind but thinks the server
		// cannot. Where -PLUS was offered (TLS), that is a downgrade.
		if m.plus || m.c.TLS != nil {
			m.s.guard.failClient(m.c.Remote, m.c.Service)
			return nil, nil, ErrFailed
		}
	case strings.HasPrefix(flag, "p="):
		if !m.plus {
			return nil, nil, m.malformed()
		}
		data, err := m.c.channelBinding(flag[2:])
		if err != nil {
			m.s.log.Debug("scram: channel binding refused", "type", flag[2:], "err", err)
			m.s.guard.failClient(m.c.Remote, m.c.Service)
			return nil, nil, ErrFailed
		}
		m.cbData = data
	default:
		return nil, nil, m.malformed()
	}
	var authzid string
	if authz != "" {
		v, ok := strings.CutPrefix(authz, "a=")
		if !ok {
			return nil, nil, m.malformed()
		}
		if authzid, ok = decodeSaslname(v); !ok {
			return nil, nil, m.malformed()
		}
	}
	// client-first-message-bare: [reserved-mext ","] username "," nonce ["," extensions]
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || strings.HasPrefix(attrs[0], "m=") {
		return nil, nil, m.malformed() // RFC 5802 §5.1: m= is reserved; fail
	}
	u, ok1 := strings.CutPrefix(attrs[0], "n=")
	cnonce, ok2 := strings.CutPrefix(attrs[1], "r=")
	if !ok1 || !ok2 || cnonce == "" || !printableNonce(cnonce) {
		return nil, nil, m.malformed()
	}
	if m.user, ok = decodeSaslname(u); !ok || m.user == "" {
		return nil, nil, m.malformed()
	}
	if authzid != "" && mail.NameKey(authzid) != mail.NameKey(m.user) {
		// No proxy authorization: acting as another user is refused
		// (another account by the store's key, as in PLAIN).
		m.s.guard.failClient(m.c.Remote, m.c.Service)
		return nil, nil, ErrFailed
	}
	m.clientFirstBare = bare
	cand, err := m.s.scramCandidates(ctx, m.user)
	if err != nil {
		return nil, nil, err
	}
	m.cand = cand
	m.nonce = cnonce + m.s.serverNonce()
	m.serverFirst = "r=" + m.nonce + ",s=" + base64.StdEncoding.EncodeToString(cand.salt) + ",i=" + strconv.Itoa(cand.iter)
	return []byte(m.serverFirst), nil, nil
}

// final checks the client-final-message and answers the server signature
// (RFC 5802 §5.1, §7).
func (m *scramSASL) final(ctx context.Context, msg []byte) ([]byte, *Principal, error) {
	s := string(msg)
	i := strings.LastIndex(s, ",p=")
	if i < 0 {
		return nil, nil, m.malformed()
	}
	withoutProof := s[:i]
	proof, err := base64.StdEncoding.DecodeString(s[i+3:])
	if err != nil || len(proof) != sha256.Size {
		return nil, nil, m.malformed()
	}
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 {
		return nil, nil, m.malformed()
	}
	cb, ok1 := strings.CutPrefix(attrs[0], "c=")
	nonce, ok2 := strings.CutPrefix(attrs[1], "r=")
	if !ok1 || !ok2 {
		return nil, nil, m.malformed()
	}
	cbind, err := base64.StdEncoding.DecodeString(cb)
	if err != nil {
		return nil, nil, m.malformed()
	}
	want := append([]byte(m.gs2Header), m.cbData...)
	// The guessing protection sees every proof, and may make it wait.
	att, err := m.s.Begin(ctx, m.c.Remote, strings.ToLower(m.cand.account), m.c.Service)
	if err != nil {
		return nil, nil, err
	}
	if subtle.ConstantTimeCompare(cbind, want) != 1 || nonce != m.nonce {
		// A channel binding that does not match is a connection that is
		// not the client's own (a relay): fail like a wrong password.
		att.Fail("scram channel binding or nonce mismatch")
		return nil, nil, ErrFailed
	}
	authMsg := m.clientFirstBare + "," + m.serverFirst + "," + withoutProof
	match := -1
	for j, k := range m.cand.keys {
		sig := hmacSum(k.storedKey, authMsg)
		clientKey := make([]byte, len(proof))
		subtle.XORBytes(clientKey, proof, sig)
		h := sha256.Sum256(clientKey)
		if subtle.ConstantTimeCompare(h[:], k.storedKey) == 1 && match < 0 {
			match = j
		}
	}
	if match < 0 || m.cand.acct == nil {
		att.Fail(m.cand.failReason)
		return nil, nil, ErrFailed
	}
	att.Succeed()
	k := m.cand.keys[match]
	device := m.cand.devices[match]
	if device == "" {
		device = m.cand.device
	}
	m.principal = &Principal{Account: m.cand.acct.ID, Name: m.cand.acct.Name, Device: device, Named: m.cand.device != ""}
	if device != "" {
		m.s.recordDevice(ctx, m.cand.acct, device, m.c.Remote, m.c.Service)
	}
	return []byte("v=" + base64.StdEncoding.EncodeToString(hmacSum(k.serverKey, authMsg))), nil, nil
}

// randomNonce is the server's part of a SCRAM nonce: 144 random bits.
func randomNonce() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeSaslname decodes a SCRAM saslname (RFC 5802 §7: "=2C" is ",",
// "=3D" is "="; any other "=" is an error).
func decodeSaslname(s string) (string, bool) {
	if !strings.Contains(s, "=") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// printableNonce: RFC 5802 §7, printable ASCII except ",".
func printableNonce(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}

// fakeSalt is the salt shown for a user that does not exist (or has no
// SCRAM keys): RFC 5802 §9 asks that probing cannot tell. It is derived
// from the server's secret and the name, so it is the same every time,
// like a real user's.
func (s *Service) fakeSalt(name string) []byte {
	m := hmac.New(sha256.New, s.saltSecret)
	m.Write([]byte("postfach scram salt\x00"))
	m.Write([]byte(strings.ToLower(name)))
	return m.Sum(nil)[:scramSaltLen]
}

// dummySCRAM stands in for a user's keys when there are none, so that the
// final step does the same work.
var dummySCRAM = scramKeys{storedKey: bytes.Repeat([]byte{0x5a}, sha256.Size), serverKey: bytes.Repeat([]byte{0xa5}, sha256.Size)}
