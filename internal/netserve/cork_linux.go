//go:build linux

package netserve

import (
	"fmt"
	"syscall"
)

const corkSupported = true

func setCork(raw syscall.RawConn, on bool) error {
	v := 0
	if on {
		v = 1
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, v)
	}); err != nil {
		return fmt.Errorf("tcp cork: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("tcp cork: %w", serr)
	}
	return nil
}
