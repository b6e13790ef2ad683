package auth

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/xdg-go/scram"

	"github.com/postfach/postfach/internal/netserve"
)

// runSCRAM drives a server exchange with an independent client (xdg-go's)
// and returns the principal, or the error of the side that failed.
func runSCRAM(t *testing.T, s *Service, mech string, ci ConnInfo, conv *scram.ClientConversation) (*Principal, error) {
	t.Helper()
	ctx := context.Background()
	m, err := s.NewSASL(mech, ci)
	if err != nil {
		return nil, err
	}
	msg, err := conv.Step("")
	if err != nil {
		t.Fatalf("client first: %v", err)
	}
	resp := []byte(msg)
	for i := 0; i < 5; i++ {
		ch, p, err := m.Next(ctx, resp)
		if err != nil || p != nil {
			if p != nil && !conv.Valid() {
				t.Fatal("server accepted, but the client did not verify the server's signature")
			}
			return p, err
		}
		out, err := conv.Step(string(ch))
		if err != nil {
			return nil, err
		}
		resp = []byte(out)
	}
	t.Fatal("exchange did not end")
	return nil, nil
}

// TestSCRAMVector: the exchange of RFC 7677 §3, byte for byte.
func TestSCRAMVector(t *testing.T) {
	ctx := context.Background()
	s, st, _ := newSQLiteService(t, Options{})
	hash, _ := HashPassword("pencil")
	acct, err := st.CreateAccount(ctx, "user", hash)
	if err != nil {
		t.Fatal(err)
	}
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	if ok, err := st.SetAccountSCRAM(ctx, acct.ID, hash, ComputeSCRAM("pencil", salt, 4096)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	s.serverNonce = func() string { return "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" }
	m, _ := s.NewSASL("SCRAM-SHA-256", ConnInfo{Remote: ip, Service: "imap"})
	ch, p, err := m.Next(ctx, []byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
	if err != nil || p != nil {
		t.Fatal(err)
	}
	if want := "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"; string(ch) != want {
		t.Fatalf("server-first %q\nwant %q", ch, want)
	}
	ch, p, err = m.Next(ctx, []byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	if err != nil || p != nil {
		t.Fatal(err)
	}
	if want := "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="; string(ch) != want {
		t.Fatalf("server-final %q, want %q", ch, want)
	}
	if _, p, err = m.Next(ctx, []byte{}); err != nil || p == nil || p.Name != "user" {
		t.Fatalf("end: %+v %v", p, err)
	}
	// A wrong proof fails.
	m, _ = s.NewSASL("SCRAM-SHA-256", ConnInfo{Remote: ip, Service: "imap"})
	m.Next(ctx, []byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
	if _, _, err := m.Next(ctx, []byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")); !errors.Is(err, ErrFailed) {
		t.Fatalf("wrong proof: %v", err)
	}
}

func xdgClient(t *testing.T, user, pw, authz string) *scram.Client {
	t.Helper()
	c, err := scram.SHA256.NewClient(user, pw, authz)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSCRAMWithoutChannelBinding: an independent client signs in with the
// account password (keys made at the first PLAIN login of an account from
// before SCRAM) and with a device password, which tells the device.
func TestSCRAMWithoutChannelBinding(t *testing.T) {
	ctx := context.Background()
	s, st, acct := newSQLiteService(t, Options{})
	ci := ConnInfo{Remote: ip, Service: "imap"}
	// No keys yet: the exchange fails at the end, like a wrong password.
	if _, err := runSCRAM(t, s, "SCRAM-SHA-256", ci, xdgClient(t, "alice@example.org", "correct horse", "").NewConversation()); !errors.Is(err, ErrFailed) {
		t.Fatalf("before keys: %v", err)
	}
	if _, err := s.Login(ctx, Credentials{Username: "alice@example.org", Password: "correct horse", Remote: ip}); err != nil {
		t.Fatal(err)
	}
	if k, _ := st.AccountSCRAM(ctx, acct.ID); !strings.HasPrefix(k, "SCRAM-SHA-256$16384:") || strings.Contains(k, "correct") {
		t.Fatalf("keys after PLAIN: %q", k)
	}
	p, err := runSCRAM(t, s, "SCRAM-SHA-256", ci, xdgClient(t, "alice@example.org", "correct horse", "").NewConversation())
	if err != nil || p.Name != "Alice@Example.org" || p.Device != "" {
		t.Fatalf("account password: %+v %v", p, err)
	}
	pw, _, err := AddDevice(ctx, st, acct, "phone")
	if err != nil {
		t.Fatal(err)
	}
	p, err = runSCRAM(t, s, "SCRAM-SHA-256", ci, xdgClient(t, "alice@example.org", pw, "").NewConversation())
	if err != nil || p.Device != "phone" || p.Named {
		t.Fatalf("device password with the plain address: %+v %v", p, err)
	}
	p, err = runSCRAM(t, s, "SCRAM-SHA-256", ci, xdgClient(t, "alice@example.org#phone", pw, "").NewConversation())
	if err != nil || p.Device != "phone" || !p.Named {
		t.Fatalf("device password with #phone: %+v %v", p, err)
	}
	for _, c := range []struct{ user, pw, authz string }{
		{"alice@example.org", "wrong", ""},
		{"alice@example.org#other", pw, ""},
		{"nobody@example.org", "correct horse", ""},
		{"alice@example.org", "correct horse", "bob@example.org"}, // another identity
	} {
		if p, err := runSCRAM(t, s, "SCRAM-SHA-256", ci, xdgClient(t, c.user, c.pw, c.authz).NewConversation()); !errors.Is(err, ErrFailed) {
			t.Errorf("%+v: %+v, %v", c, p, err)
		}
	}
	// The authzid of the user itself is fine.
	if _, err := runSCRAM(t, s, "SCRAM-SHA-256", ci, xdgClient(t, "alice@example.org", "correct horse", "alice@example.org").NewConversation()); err != nil {
		t.Fatalf("own authzid: %v", err)
	}
	// Device passwords only: the account password's keys stop working.
	if err := st.SetAccountSetting(ctx, acct.ID, RequireDevicePasswords, "true"); err != nil {
		t.Fatal(err)
	}
	if _, err := runSCRAM(t, s, "SCRAM-SHA-256", ci, xdgClient(t, "alice@example.org", "correct horse", "").NewConversation()); !errors.Is(err, ErrFailed) {
		t.Fatalf("account password with device passwords required: %v", err)
	}
	if p, err := runSCRAM(t, s, "SCRAM-SHA-256", ci, xdgClient(t, "alice@example.org", pw, "").NewConversation()); err != nil || p.Device != "phone" {
		t.Fatalf("device password with device passwords required: %+v %v", p, err)
	}
	// Revoked: its keys go.
	if err := st.RevokeDevice(ctx, acct.ID, "phone"); err != nil {
		t.Fatal(err)
	}
	if _, err := runSCRAM(t, s, "SCRAM-SHA-256", ci, xdgClient(t, "alice@example.org", pw, "").NewConversation()); !errors.Is(err, ErrFailed) {
		t.Fatalf("revoked device: %v", err)
	}
}

// TestSCRAMUnknownUserSalt: an unknown user gets a salt that is the same
// every time and looks like any other (RFC 5802 §9), and the same
// iteration count; two servers with one secret agree.
func TestSCRAMUnknownUserSalt(t *testing.T) {
	ctx := context.Background()
	secret := []byte("0123456789abcdef0123456789abcdef")
	s1, _, _ := newSQLiteService(t, Options{Secret: secret})
	s2, _, _ := newSQLiteService(t, Options{Secret: secret})
	first := func(s *Service, user string) string {
		m, _ := s.NewSASL("SCRAM-SHA-256", ConnInfo{Remote: ip, Service: "imap"})
		ch, _, err := m.Next(ctx, []byte("n,,n="+user+",r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(string(ch), ",")
		return parts[1] + "," + parts[2]
	}
	a, b, c := first(s1, "nobody@example.org"), first(s2, "nobody@example.org"), first(s1, "other@example.org")
	if a != b || a == c || !strings.HasPrefix(a, "s=") || !strings.HasSuffix(a, ",i=16384") {
		t.Fatalf("fake salts %q %q %q", a, b, c)
	}
}

// TestSCRAMMalformed: bad messages fail cleanly and count against the
// client.
func TestSCRAMMalformed(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newSQLiteService(t, Options{})
	for _, msg := range []string{"", "n", "n,,", "x,,n=a,r=b", "n,,m=x,n=a,r=b", "n,,n=a", "n,,n=a=x,r=b", "n,,n=,r=b", "n,x,n=a,r=b",
		"p=tls-exporter,,n=a,r=b", "n,,n=a,r=b,c"} {
		m, _ := s.NewSASL("SCRAM-SHA-256", ConnInfo{Remote: ip, Service: "imap"})
		if _, _, err := m.Next(ctx, []byte(msg)); err == nil && msg != "n,,n=a,r=b,c" {
			t.Errorf("first message %q accepted", msg)
		}
	}
	m, _ := s.NewSASL("SCRAM-SHA-256", ConnInfo{Remote: ip, Service: "imap"})
	if _, _, err := m.Next(ctx, []byte("n,,n=a,r=b")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Next(ctx, []byte("c=biws,r=b")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("final without proof: %v", err)
	}
	if _, err := s.NewSASL("SCRAM-SHA-256-PLUS", ConnInfo{Remote: ip}); err == nil {
		t.Fatal("-PLUS without TLS")
	}
}

// tlsPair returns the server and client ends of a TLS connection of the
// given version over loopback, handshaken, and the server's config.
func tlsPair(t *testing.T, version uint16) (*tls.Conn, *tls.Conn, *tls.Config) {
	t.Helper()
	cfg, err := netserve.TLSConfig("", "", t.TempDir(), "mx.test.example")
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.Clone()
	cfg.MinVersion, cfg.MaxVersion = version, version
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   *tls.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- res{err: err}
			return
		}
		sc := tls.Server(c, cfg)
		ch <- res{sc, sc.Handshake()}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: "mx.test.example", MinVersion: version, MaxVersion: version})
	if err := cc.Handshake(); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { cc.Close(); r.c.Close() })
	return r.c, cc, cfg
}

// TestSCRAMChannelBinding: SCRAM-SHA-256-PLUS with tls-exporter (TLS 1.3
// only) and tls-server-end-point, checked with an independent client; a
// binding of another connection (a relay) fails, and so does "y" where
// -PLUS is offered (a downgrade).
func TestSCRAMChannelBinding(t *testing.T) {
	ctx := context.Background()
	s, st, acct := newSQLiteService(t, Options{})
	pw, _, err := AddDevice(ctx, st, acct, "phone")
	if err != nil {
		t.Fatal(err)
	}
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		srv, cli, cfg := tlsPair(t, version)
		scs, ccs := srv.ConnectionState(), cli.ConnectionState()
		ci := ConnInfo{Remote: ip, Service: "imap", TLS: &scs, ServerCert: ServerCertificate(cfg, &scs)}
		endPoint, err := scram.NewTLSServerEndpointBinding(&ccs)
		if err != nil {
			t.Fatal(err)
		}
		p, err := runSCRAM(t, s, "SCRAM-SHA-256-PLUS", ci, xdgClient(t, "alice@example.org", pw, "").NewConversationWithChannelBinding(endPoint))
		if err != nil || p.Device != "phone" {
			t.Fatalf("TLS %x tls-server-end-point: %+v %v", version, p, err)
		}
		exporter, err := scram.NewTLSExporterBinding(&ccs)
		if version == tls.VersionTLS13 {
			if err != nil {
				t.Fatal(err)
			}
			if p, err := runSCRAM(t, s, "SCRAM-SHA-256-PLUS", ci, xdgClient(t, "alice@example.org", pw, "").NewConversationWithChannelBinding(exporter)); err != nil || p.Device != "phone" {
				t.Fatalf("tls-exporter: %+v %v", p, err)
			}
		} else {
			// RFC 9266 §3: not with TLS 1.2.
			exporter = scram.ChannelBinding{Type: scram.ChannelBindingTLSExporter, Data: []byte("x")}
			if _, err := runSCRAM(t, s, "SCRAM-SHA-256-PLUS", ci, xdgClient(t, "alice@example.org", pw, "").NewConversationWithChannelBinding(exporter)); !errors.Is(err, ErrFailed) {
				t.Fatalf("tls-exporter on TLS 1.2: %v", err)
			}
		}
		// The binding of another connection: a relay in the middle.
		_, other, _ := tlsPair(t, version)
		ocs := other.ConnectionState()
		otherEP, _ := scram.NewTLSServerEndpointBinding(&ocs) // another certificate
		if _, err := runSCRAM(t, s, "SCRAM-SHA-256-PLUS", ci, xdgClient(t, "alice@example.org", pw, "").NewConversationWithChannelBinding(otherEP)); !errors.Is(err, ErrFailed) {
			t.Fatalf("TLS %x: binding of another connection: %v", version, err)
		}
		// Without binding, SCRAM-SHA-256 works on TLS; "y" does not.
		if _, err := runSCRAM(t, s, "SCRAM-SHA-256", ci, xdgClient(t, "alice@example.org", pw, "").NewConversation()); err != nil {
			t.Fatalf("no binding on TLS: %v", err)
		}
		if _, err := runSCRAM(t, s, "SCRAM-SHA-256", ci, xdgClient(t, "alice@example.org", pw, "").NewConversationAdvertisingChannelBinding()); !errors.Is(err, ErrFailed) {
			t.Fatalf("'y' where -PLUS is offered: %v", err)
		}
	}
	// Without TLS "y" is what a binding client says: fine.
	if _, err := runSCRAM(t, s, "SCRAM-SHA-256", ConnInfo{Remote: ip}, xdgClient(t, "alice@example.org", pw, "").NewConversationAdvertisingChannelBinding()); err != nil {
		t.Fatalf("'y' without TLS: %v", err)
	}
}
