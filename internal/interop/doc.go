// Package interop holds the interoperability suite: sync clients that
// nobody here wrote, from Debian's packages, run against the whole
// postfach server (internal/testenv) over real sockets.
//
// Each client (mbsync from isync, offlineimap3) syncs a populated account
// to a local Maildir; then flags change and messages move on both sides
// (on the server through go-imap v2's client, in the Maildir by renaming
// files as a mail reader would, following the Maildir flag conventions);
// after the next sync both sides must agree, folder by folder, message
// by message, flag by flag. A further sync without changes must download
// no message text: the server's protocol trace (imapserver logs every
// FETCH at debug level with the number of message texts it returned)
// proves it. go-imap v2's client also exercises CONDSTORE from outside.
// offlineimap also syncs over STARTTLS many times in a row (issue 11,
// item 16: a race in its TLS threads that the server's session tickets
// used to trigger).
//
// The ACME test (acme_test.go) builds Let's Encrypt's test CA, Pebble,
// from the module proxy (it is a tool of this module), runs it on
// loopback with a DNS server that resolves every name to 127.0.0.1, and
// has postfach get its certificate from it by TLS-ALPN-01 and by HTTP-01,
// validated for real; IMAPS must then serve a certificate that verifies
// under Pebble's root.
//
// The clients are found on PATH; .ci/run installs them. A missing client
// skips its test, except with POSTFACH_REQUIRE_TOOLS=1 (set by .ci/run),
// where it fails. Every client run is bounded by a timeout.
//
// The package has no code besides its tests.
package interop
