package netserve

import (
	"net"
	"syscall"
)

// Cork holds back the partial segments of one TCP connection while a
// reply goes out in several writes (TCP_CORK, tcp(7)): a status line, a
// body sent with sendfile(2) in 64 KiB splices, the stuffing dots between
// its pieces and a terminator then leave as full segments, and the last
// one when the Cork is released, instead of one small segment per write
// that the client must wake up for. The zero Cork, and a Cork on a
// platform without TCP_CORK, does nothing. A Cork is used by the
// connection's own goroutine only.
type Cork struct {
	raw syscall.RawConn
	on  bool
}

// NewCork returns a Cork for conn when it is a TCP connection (pass the
// socket under TLS, Conn.Conn, not the *tls.Conn); for anything else, or
// where TCP_CORK does not exist, the zero Cork.
func NewCork(conn net.Conn) Cork {
	if !corkSupported {
		return Cork{}
	}
	if c, ok := conn.(*Conn); ok {
		conn = c.Conn
	}
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return Cork{}
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return Cork{}
	}
	return Cork{raw: raw}
}

// Hold corks the connection, if it is not corked already. It reports
// whether the connection is corked now; a failure only costs the
// coalescing, so it is not an error.
func (k *Cork) Hold() bool {
	if k.raw == nil || k.on {
		return k.on
	}
	k.on = setCork(k.raw, true) == nil
	return k.on
}

// Release uncorks the connection, so that what the kernel holds is sent
// at once; call it after the last write before waiting for the client.
func (k *Cork) Release() {
	if !k.on {
		return
	}
	k.on = false
	_ = setCork(k.raw, false)
}

// Held reports whether the connection is corked.
func (k *Cork) Held() bool { return k.on }
