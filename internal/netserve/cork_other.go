//go:build !linux

package netserve

import (
	"errors"
	"syscall"
)

// corkSupported: TCP_CORK is Linux's; elsewhere replies go out as
// written (TCP_NOPUSH on the BSDs behaves differently and is not used).
const corkSupported = false

func setCork(syscall.RawConn, bool) error { return errors.ErrUnsupported }
