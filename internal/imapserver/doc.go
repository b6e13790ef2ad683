// Package imapserver is postfach's IMAP server: IMAP4rev2 (RFC 9051) and
// IMAP4rev1 (RFC 3501) on one port, with the extensions listed in
// docs/imap.md, over the store contract (internal/store). The wire syntax
// is internal/imap; SEARCH, SORT and THREAD are evaluated by
// internal/imapsearch.
//
// # Shape
//
// New(Options) returns a Server; Serve(ln) serves a plain listener (with
// STARTTLS), ServeTLS(ln) an implicit-TLS one, Shutdown(ctx) says BYE to
// every session. Connections come through internal/netserve (limits,
// draining, panic recovery, per-connection logger).
//
// One goroutine per connection reads a command, runs it and writes the
// responses; commands of one session never run concurrently. The
// dispatch table (session.go) lists each command's handler and the states
// it is allowed in; handlers return errors and one function, mapError,
// turns them into NO/BAD responses with generic text and response codes.
// Files follow the command groups: auth.go (any state, not
// authenticated), mailbox.go (folders), select.go (SELECT, CLOSE,
// EXPUNGE, QRESYNC), fetch.go, store.go (STORE, COPY, MOVE), append.go
// (APPEND, CATENATE, REPLACE), search.go, context.go (search contexts:
// SEARCH and SORT with RETURN (UPDATE), CANCELUPDATE), idle.go,
// notify.go (NOTIFY), metadata.go (GETMETADATA, SETMETADATA),
// compress.go and inflate.go (COMPRESS=DEFLATE), urlauth.go
// (GENURLAUTH, URLFETCH, RESETKEY: URLAUTH, with its keys, tokens and
// URL rules in internal/imapurl), trace.go (the debug-level protocol
// trace).
//
// # The selected mailbox
//
// A session keeps its own view of the selected mailbox (view.go): the UIDs
// it has announced, as ranges (a message's sequence number is its
// position), and the MODSEQ it has caught up to. Store events are hints:
// when one says the mailbox changed beyond that MODSEQ, the session asks
// store.Changes and reports what changed at the next point the RFC allows
// (RFC 9051 §7.5.1, §5.5): new messages and flag changes before any
// tagged response, expunges only when no command that works on sequence
// numbers (FETCH, STORE, SEARCH, SORT, THREAD, COPY) is being answered.
// Until then an expunged message keeps its sequence number. Search
// contexts (RFC 5267) are part of the view: they hear of the same
// changes at the same points, and go with it. Sessions of
// one mailbox that wake for the same event share one store.Changes answer
// (changes.go), but only an answer that covers the MODSEQ the events
// announced. The
// session's own flag changes are answered in the command's own response
// and never repeated (store.WithOrigin tags its writes; the view
// remembers the MODSEQ and UIDs of each own change).
//
// # Mailbox caches
//
// Reads of the selected mailbox (FETCH, SEARCH, SORT, THREAD, the
// catch-ups above, EXPUNGE's search for \Deleted) go through
// viewread.go, which serves them from the mailbox's cache (mbcache.go)
// when it can: one per mailbox for all the sessions of the server, an
// immutable snapshot of the messages' metadata at a MODSEQ, brought up to
// date from store.Changes once per commit by the first session that needs
// it, with a log of what each update changed, so that a session's
// catch-up needs no store read either. A snapshot is used only when it is
// at least as new as everything the session must reflect (readFence: the
// view's MODSEQ and the MODSEQ of every event the session has been sent;
// the events are set aside in session.queued, unapplied, for the next sync
// point); otherwise the store is read, as it is for a mailbox not worth
// caching. Summaries, SORT and THREAD keys and the text SEARCH looks
// through are kept by message body (blobcache.go). Both caches are shared
// and bounded (Options.CacheMessages, CacheBytes); a session holds none of
// it while it waits.
//
// # Waiting
//
// A session waiting for its client flushes and gives its read and write
// buffers back to the server's pools; they are taken again when bytes
// arrive. A plaintext session without COMPRESS then parks (park.go): its
// goroutine ends, and its connection waits in the Server's poller (one
// epoll instance and one goroutine, poller_linux.go) until it becomes
// readable, a store event arrives for a session in IDLE or with NOTIFY
// (the subscription's notify function, store.Notifier, resumes it), its
// idle timeout passes (a timer) or Shutdown begins (every parked session
// is resumed and drained like a running one). It resumes on a new
// goroutine in the same wait. So an idle session costs its heap state
// (a few KiB) and no goroutine.
//
// TLS sessions (a tls.Conn may hold decrypted bytes the fd does not
// show), COMPRESS sessions, and all sessions where epoll is not available
// wait in a read of a 64-byte array instead, from the session's main loop
// so the goroutine's stack is shallow and shrinks; in IDLE the notify
// function moves that read's deadline into the past to wake it. A session
// with NOTIFY waits the same ways between commands and reports what the
// events say as soon as they arrive (pushWake), not only in IDLE.
//
// After COMPRESS=DEFLATE the input is decoded by the package's own
// inflater (inflate.go), which returns a command as soon as it is
// decoded, whichever flush the client used. Its source (deflateIn) does
// the blocking read: a wake while the session waits is handled right
// there (the push runs, the read goes on), because an error would break
// the inflater's stream. The compressor is taken from a pool for each
// burst of output and given back, flushed, before the session waits.
//
// # Before login
//
// A session that has not logged in has small limits (8 KiB lines, 4 KiB
// literals, its command's bytes charged to the client's budget) and must
// log in within Options.LoginTimeout of connecting; idle timers restart
// at complete lines, not at single bytes (guard.go).
//
// # Concurrency and locking
//
// All session state belongs to the session goroutine (NOTIFY's
// configuration and what it collected included; after a park, the
// goroutine that resumes it), except session.wake, whose mutex guards
// the waiting/woken flags shared with the store's publisher and the
// parking state shared with the poller and the idle timer; the notify
// function only sets a flag and a read deadline, or resumes a parked
// session, and never calls back into the store. The mailbox caches are
// shared: a snapshot is immutable and read without a lock; mbCache.mu
// serialises the updates of one mailbox (held during the store read, so
// the sessions that need the same update wait for it instead of reading
// the store themselves) and mailboxCaches.mu the map and the budget;
// blobCache.mu (a read lock for lookups) guards its map. No lock is held
// during network I/O.
// Store calls use a context that is not cancelled by a shutdown, so a
// command in progress finishes (and its write is acknowledged) before the
// session says BYE. The package has no mutable package-level state.
package imapserver
