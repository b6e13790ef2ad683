package queue

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"

	"github.com/postfach/postfach/internal/dnsr"
)

// tlsPolicy says how TLS must go with one host. The zero value is
// opportunistic: STARTTLS when offered, any certificate (RFC 7435).
type tlsPolicy struct {
	// dane holds the usable TLSA records of a host whose records were
	// authenticated (RFC 7672): TLS is required and the certificate must
	// match one of them. daneNoUsable: there were TLSA records but none
	// usable, so TLS is required without authentication (RFC 7672
	// §2.2).
	dane         []dnsr.TLSA
	daneNoUsable bool
	// sts is the name to verify under an MTA-STS policy in enforce mode
	// (RFC 8461 §4.2): a certificate valid for the MX host name.
	sts string
	// relay: the smarthost, whose certificate is verified unless its TLS
	// is "none".
	relay *Relay
}

func (p tlsPolicy) required() bool {
	return len(p.dane) > 0 || p.daneNoUsable || p.sts != "" ||
		p.relay != nil && p.relay.TLS != RelayNone
}

func (p tlsPolicy) why() string {
	switch {
	case len(p.dane) > 0 || p.daneNoUsable:
		return "the host's DANE TLSA records"
	case p.sts != "":
		return "the domain's MTA-STS policy"
	case p.relay != nil:
		return "the relay's tls setting"
	}
	return "nothing"
}

// tlsPolicy decides the policy for MX host mxHost of domain: DANE when
// the host's addresses were authenticated and it has TLSA records (RFC
// 7672 §2.2; DANE takes precedence over MTA-STS, RFC 8461 §2), else
// MTA-STS enforce, else opportunistic. An error means the host must not
// be used now (its TLSA lookup failed: RFC 7672 §2.2.2).
func (q *Queue) tlsPolicy(ctx context.Context, domain, mxHost string, port int, addrSecure bool, sts *stsPolicy) (tlsPolicy, error) {
	var p tlsPolicy
	if addrSecure {
		name := "_" + strconv.Itoa(port) + "._tcp." + mxHost
		recs, res, err := q.opt.Resolver.TLSA(ctx, name)
		switch {
		case err != nil && !dnsr.IsNotFound(err):
			return p, fmt.Errorf("TLSA lookup for a DNSSEC-signed host failed: %w", err)
		case err == nil && len(recs) > 0 && res.Authentic:
			for _, r := range recs {
				// RFC 7672 §3.1.3: PKIX-TA(0) and PKIX-EE(1) are not
				// usable for SMTP.
				if (r.Usage == 2 || r.Usage == 3) && r.Selector <= 1 && r.MatchingType <= 2 {
					p.dane = append(p.dane, r)
				}
			}
			p.daneNoUsable = len(p.dane) == 0
			return p, nil
		}
	}
	if sts != nil && sts.mode == "enforce" {
		p.sts = mxHost
	}
	return p, nil
}

// tlsConfig is the client TLS config for host h under its policy.
func (q *Queue) tlsConfig(h host) *tls.Config {
	cfg := &tls.Config{ServerName: h.name, RootCAs: q.opt.RootCAs, MinVersion: tls.VersionTLS12}
	switch {
	case len(h.pol.dane) > 0:
		recs := h.pol.dane
		name := h.name
		// crypto/tls would verify against the WebPKI; DANE replaces
		// that with the TLSA records.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyDANE(recs, cs.PeerCertificates, name)
		}
	case h.pol.sts != "" || h.pol.relay != nil:
		// Verified by crypto/tls against RootCAs and the host name.
	default:
		// Opportunistic (RFC 7435; RFC 7672 §2.2 for unusable TLSA): any
		// certificate will do, encryption is still better than none.
		cfg.InsecureSkipVerify = true
	}
	return cfg
}

// verifyDANE checks a server's certificates against TLSA records (RFC
// 7672 §3.1, RFC 6698 §2.1): DANE-EE (3) matches the server's own
// certificate, with no name or expiry check (RFC 7672 §3.1.1); DANE-TA
// (2) matches a certificate of the chain the server sent, which then
// must issue the server's certificate for name (RFC 7672 §3.1.2).
func verifyDANE(recs []dnsr.TLSA, chain []*x509.Certificate, name string) error {
	if len(chain) == 0 {
		return errors.New("dane: no certificate")
	}
	for _, r := range recs {
		switch r.Usage {
		case 3:
			if tlsaMatch(r, chain[0]) {
				return nil
			}
		case 2:
			for i, ta := range chain {
				if i == 0 && len(chain) > 1 {
					continue
				}
				if !tlsaMatch(r, ta) {
					continue
				}
				roots := x509.NewCertPool()
				roots.AddCert(ta)
				inter := x509.NewCertPool()
				for _, c := range chain[1:] {
					inter.AddCert(c)
				}
				if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter,
					KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
					return nil
				}
			}
		}
	}
	return errors.New("dane: the certificate matches none of the host's TLSA records")
}

// tlsaMatch reports whether cert matches one TLSA record: the selector
// picks the full certificate (0) or its public key (1), the matching type
// compares it exactly (0) or by SHA-256 (1) or SHA-512 (2).
func tlsaMatch(r dnsr.TLSA, cert *x509.Certificate) bool {
	var data []byte
	switch r.Selector {
	case 0:
		data = cert.Raw
	case 1:
		data = cert.RawSubjectPublicKeyInfo
	default:
		return false
	}
	switch r.MatchingType {
	case 0:
	case 1:
		h := sha256.Sum256(data)
		data = h[:]
	case 2:
		h := sha512.Sum512(data)
		data = h[:]
	default:
		return false
	}
	return bytes.Equal(data, r.Data)
}
