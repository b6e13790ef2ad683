// Package bench is the load generator behind cmd/postfach-bench: lean IMAP,
// POP3 and LMTP clients, a deterministic test corpus, the workloads of
// issue 6 (IMAP mixed, IMAP login, LMTP delivery, POP3 retrieval, IDLE
// memory and push latency, mailbox population) and of issue 13 (IMAP
// sessions sharing mailboxes, with a Checker that follows each session's
// view and counts the responses that contradict it), and their reports.
//
// Every workload drives a server by host:port only, so the very same load
// runs against postfach and against Dovecot. The clients are written for
// throughput rather than generality: responses are scanned, not parsed
// into trees; literals are skipped with bufio.Reader.Discard; message
// bodies are encoded once (CRLF, dot-stuffing) and reused. Each workload
// measures the tool's own CPU time (getrusage) so a report says whether the
// client could have been the bottleneck.
//
// Concurrency: a workload runs one goroutine per simulated client; each
// goroutine owns its connection and its Recorder, and the Recorders are
// merged after all goroutines have returned. Nothing in this package keeps
// package-level mutable state.
package bench
