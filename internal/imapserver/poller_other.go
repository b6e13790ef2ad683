//go:build !linux

package imapserver

import (
	"errors"
	"log/slog"
	"sync/atomic"
)

// parkSupported: without epoll, waiting sessions keep their goroutine
// (blocked in a small read, as on Linux over TLS or COMPRESS).
const parkSupported = false

// poller is not available on this platform; newPoller says so and no
// session parks.
type poller struct {
	closing atomic.Bool
}

func newPoller(*slog.Logger) (*poller, error) { return nil, errors.ErrUnsupported }

func (p *poller) add(*session) error { return errors.ErrUnsupported }

func (p *poller) forget(*session) {}

func (p *poller) close() {}

func (p *poller) len() int { return 0 }

func (s *session) tryRead([]byte) (int, bool, error) { return 0, false, errors.ErrUnsupported }
