package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/postfach/postfach/internal/admin"
)

// cmdDeviceList prints an account's POP3 device views (docs/pop3.md).
func cmdDeviceList(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if !oneAddress(e, fs, args, 1) {
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		devs, err := api.DeviceList(ctx, args[0])
		if err != nil {
			return adminFail(e, args[0], err)
		}
		if len(devs) == 0 {
			fmt.Fprintf(e.stdout, "%s: no POP3 devices (a device appears after its first login as %s#DEVICE)\n", args[0], args[0])
			return exitOK
		}
		for _, d := range devs {
			fmt.Fprintf(e.stdout, "%s done=%d created=%s last_used=%s\n", d.Name, d.Hidden,
				d.Created.UTC().Format(time.RFC3339), d.LastUsed.UTC().Format(time.RFC3339))
		}
		return exitOK
	})
}

// cmdDeviceForget removes a POP3 device view: at its next login the device
// is offered everything in INBOX again.
func cmdDeviceForget(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if !oneAddress(e, fs, args, 2) {
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		err := api.DeviceForget(ctx, args[0], args[1])
		switch {
		case errors.Is(err, admin.ErrNoDevice):
			fmt.Fprintf(e.stderr, "postfach: %s has no device %q\n", args[0], args[1])
			return exitError
		case errors.Is(err, admin.ErrInvalid):
			fmt.Fprintln(e.stderr, "postfach:", err)
			return exitUsage
		case err != nil:
			return adminFail(e, args[0], err)
		}
		fmt.Fprintf(e.stdout, "%s: device %s forgotten; it will be offered all of INBOX at its next login\n", args[0], args[1])
		return exitOK
	})
}
