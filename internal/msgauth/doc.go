// Package msgauth is postfach's message authentication: DKIM signing of
// outgoing mail (RFC 6376 with rsa-sha256 and ed25519-sha256, RFC 8463),
// and on the MX the checks of incoming mail: SPF (RFC 7208), DKIM
// verification (RFC 6376, RFC 8301), DMARC (RFC 7489), written down in an
// Authentication-Results header field (RFC 8601).
//
// Signatures and verification are github.com/emersion/go-msgauth's, SPF
// is blitiri.com.ar/go/spf's; DNS goes through internal/dnsr, so answers
// are cached and a DNS failure is told from a missing record.
//
// Private keys are secrets: nothing here logs them or puts them in an
// error.
package msgauth
