package pop3server

import (
	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/store"
)

// sendfileMaxDots is the most dot lines a body sent with sendfile(2) may
// have: each costs two more system calls, and a body with many is
// cheaper to scan in the process.
const sendfileMaxDots = 16

// sendFile sends a body kept in a local file, whose dot lines the store
// knows, with sendfile(2): the pieces between those dots go from the page
// cache to the socket without passing through the process, and each dot
// is doubled by writing one more "." in front of the piece that begins
// with it (RFC 1939 §3). The terminating "." line is left in the write
// buffer. The caller corks a reply of this size, so the status line, the
// dots and the pieces leave as full segments. It reports false, having
// written nothing, when the connection (TLS) or the body does not allow
// this; the caller then scans the body.
func (x *session) sendFile(body store.Body) (bool, error) {
	tc := netserve.PlainTCP(x.conn, x.tc)
	if tc == nil {
		return false, nil
	}
	bf, ok := body.(store.BodyFile)
	if !ok {
		return false, nil
	}
	dots, endsLF, known := bf.DotLines()
	if !known || len(dots) > sendfileMaxDots || body.Size() == 0 {
		return false, nil
	}
	f := bf.File()
	size := body.Size()
	pos := int64(0)
	for i := 0; i <= len(dots); i++ {
		end := size
		if i < len(dots) {
			end = dots[i]
		}
		if end > pos {
			if err := x.w.Flush(); err != nil {
				return true, err
			}
			if err := netserve.SendFile(tc, f, pos, end-pos, x.s.idle); err != nil {
				return true, err
			}
		}
		if i < len(dots) {
			x.w.WriteByte('.')
		}
		pos = end
	}
	if !endsLF {
		x.w.WriteString("\r\n")
	}
	x.w.WriteString(".\r\n")
	x.s.sentByFile.Add(1)
	return true, nil
}
