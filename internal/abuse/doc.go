// Package abuse holds the abuse and fault tests: the whole server, on
// loopback, driven the way a hostile or broken client, a busy day or a
// failing machine would drive it (floods of connections, half-sent
// commands, oversized literals, password guessing, restarts under load,
// damaged files, a full disk). Each test names the hardening rule it keeps
// (issue 11) and must fail when that rule is broken.
//
// The tests are bounded in count and time, use 127.0.0.1 only, and run in
// CI with the rest of `go test ./...`. Files are named by the area they
// attack (smtp_test.go, auth_test.go, store_test.go, ...); helpers that are
// used by one file only are prefixed with that area's name.
package abuse
