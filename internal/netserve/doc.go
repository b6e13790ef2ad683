// Package netserve holds what every postfach protocol server needs around
// its connections: opening listeners (TCP, and unix:PATH for LMTP), TLS
// configuration (files, or a self-signed certificate generated once), a
// tracking Listener that enforces connection limits per client IP and in
// total, per-connection loggers and contexts, graceful draining at shutdown,
// and a small Server that runs a handler per connection with panic
// recovery.
//
// # Draining
//
// Shutdown of a protocol server goes in two steps. Listener.Drain stops
// accepting and marks every connection as draining: its Context is
// cancelled, and a Read on a connection that is not busy (see Conn.SetBusy)
// fails at once with a timeout error, so the protocol's own read loop
// answers with its "closing" reply (SMTP 421, IMAP BYE, POP3 -ERR) and
// ends. A busy connection (a message being received and stored) is left
// alone until it calls SetBusy(false). Listener.Wait then waits for every
// connection to close, and Listener.CloseAll cuts off what is left when the
// shutdown deadline passes.
//
// # Parking
//
// A connection that waits for its client need not keep a goroutine: its
// handler may call Conn.Park and return. The connection stays open and
// counted (limits, Shutdown's wait), the goroutine ends, and the arm
// function given to Park runs once the handler has returned; it hands the
// connection to whatever will wake it (imapserver's epoll poller), which
// calls Conn.Resume to run the handler's continuation on a new goroutine.
// Shutdown does not resume parked connections itself: their owner must,
// before or while the server drains.
//
// # Before login
//
// With Options.LoginTimeout a connection must log in (Conn.LoggedIn)
// within that time of its accept, in total: until then no read deadline
// is set later than it, whatever the protocol asks for, so input does not
// extend it. With Options.PreAuth (a Budget shared by the listeners of a
// server) the bytes a protocol holds for the commands of a connection
// before login (Conn.Grow, Conn.Shrink) count against a limit per client
// (IPv4 address or IPv6 /64).
//
// # Locking
//
// Listener.mu guards the connection set and the per-IP counts; Conn.mu
// guards busy, draining, the login deadline and what the connection holds
// of the Budget; Budget.mu is taken after Conn.mu. No lock is held during
// network I/O.
// Conn.arm belongs to the goroutine running the connection's handler.
package netserve
