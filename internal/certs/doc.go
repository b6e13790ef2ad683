// Package certs supplies the server's TLS certificate to every listener
// through tls.Config.GetCertificate, and replaces it while the server
// runs, without touching open connections (a handshake takes the
// certificate current at its start and keeps it).
//
// Two sources:
//
//   - Files: a PEM certificate chain and key, given by the operator or
//     the self-signed pair postfach generates. Reloaded when the files
//     change (their inode, size or modification time; polled, and loaded
//     once two polls agree, so that a pair being rewritten is not read
//     half-way) and on Reload (SIGHUP). A pair that does not load, or
//     whose key does not match, is logged and the old certificate stays.
//
//   - ACME: a certificate from an ACME CA (RFC 8555) by
//     github.com/mholt/acmez/v3, which does the protocol; this package
//     keeps the account key and the certificate in its directory (0700,
//     files 0600), answers the challenges (TLS-ALPN-01, RFC 8737, on the
//     web listener through GetConfigForClient; HTTP-01, RFC 8555 §8.3,
//     through HTTPHandler on the plain HTTP listener), and renews when a
//     third of the certificate's lifetime is left. Until the first
//     certificate arrives it serves a placeholder (the self-signed one).
//
// # Locking
//
// The current certificate is an atomic pointer: GetCertificate takes no
// lock. Files.mu serialises loads and guards the file state they record.
// ACME.mu guards the challenge answers; only the Run goroutine talks to the
// CA and writes the files.
package certs
