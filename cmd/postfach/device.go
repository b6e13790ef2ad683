package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/admin"
	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/store"
)

// cmdDeviceList prints an account's devices (docs/devices.md), one line
// each.
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
			fmt.Fprintf(e.stdout, "%s: no devices (add one with postfach device add %s NAME; POP3 clients that log in as %s#NAME appear too)\n",
				args[0], args[0], args[0])
			return exitOK
		}
		for _, d := range devs {
			fmt.Fprintln(e.stdout, deviceLine(d))
		}
		return exitOK
	})
}

// deviceLine is one line of `device list`:
// "phone last_login=2026-12-07T09:12:03Z remote=203.0.113.7 proto=imap
// client="K-9 Mail 6.8" password=yes pop3_done=0 created=...".
func deviceLine(d admin.Device) string {
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	var b strings.Builder
	b.WriteString(d.Name)
	if d.LastLogin.IsZero() {
		b.WriteString(" last_login=never")
	} else {
		fmt.Fprintf(&b, " last_login=%s remote=%s proto=%s", ts(d.LastLogin), orDash(d.LastRemote), orDash(d.LastProto))
	}
	if d.LastClient != "" {
		fmt.Fprintf(&b, " client=%q", d.LastClient)
	}
	switch {
	case d.Password:
		b.WriteString(" password=yes")
	case !d.Revoked.IsZero():
		b.WriteString(" password=revoked")
	default:
		b.WriteString(" password=no")
	}
	fmt.Fprintf(&b, " pop3_done=%d created=%s", d.Hidden, ts(d.Created))
	if !d.LastUsed.IsZero() {
		fmt.Fprintf(&b, " pop3_last_used=%s", ts(d.LastUsed))
	}
	if !d.Revoked.IsZero() {
		fmt.Fprintf(&b, " revoked=%s", ts(d.Revoked))
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cmdDeviceForget removes a device's POP3 views (at its next login the
// device is offered everything in INBOX again), and the device itself
// when it has no password.
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
		if code, done := deviceFail(e, args, err); done {
			return code
		}
		fmt.Fprintf(e.stdout, "%s: device %s forgotten; it will be offered all of INBOX at its next POP3 login\n", args[0], args[1])
		return exitOK
	})
}

// deviceFail reports an error of a device command; done is false when
// there was none.
func deviceFail(e *env, args []string, err error) (code int, done bool) {
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, admin.ErrNoDevice):
		fmt.Fprintf(e.stderr, "postfach: %s has no device %q\n", args[0], args[1])
		return exitError, true
	case errors.Is(err, admin.ErrInvalid):
		fmt.Fprintln(e.stderr, "postfach:", err)
		return exitUsage, true
	case errors.Is(err, store.ErrExists):
		fmt.Fprintf(e.stderr, "postfach: %s already has a device %q with a password; revoke it first (postfach device revoke %s %s) to give it a new one, or choose another name\n",
			args[0], args[1], args[0], args[1])
		return exitError, true
	}
	return adminFail(e, args[0], err), true
}

// cmdDeviceAdd gives a device a generated password and prints what the
// device needs to be set up.
func cmdDeviceAdd(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if !oneAddress(e, fs, args, 2) {
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		nd, err := api.DeviceAdd(ctx, args[0], args[1])
		if code, done := deviceFail(e, args, err); done {
			return code
		}
		writeDeviceSetup(e.stdout, cfg, args[0], nd)
		return exitOK
	})
}

// writeDeviceSetup prints what a person needs to set up a new device by
// hand: the password (shown this once), the user name and the server's
// name and ports. A setup link (and its QR code) for automatic setup will
// go here too once the HTTPS setup listener exists.
func writeDeviceSetup(w io.Writer, cfg *config.Config, address string, nd *admin.NewDevice) {
	fmt.Fprintf(w, "device %s of %s added.\n\n", nd.Device.Name, address)
	fmt.Fprintf(w, "  password:   %s\n", auth.FormatDevicePassword(nd.Password))
	fmt.Fprintf(w, "              (shown only now; the spaces may be left out, capitals do not matter)\n")
	fmt.Fprintf(w, "  user name:  %s\n", address)
	fmt.Fprintf(w, "  server:     %s\n", cfg.Hostname)
	l := cfg.Listen
	for _, p := range []struct{ what, tls, plain, plainHow string }{
		{"IMAP", l.IMAPS, l.IMAP, "STARTTLS"},
		{"POP3", l.POP3S, l.POP3, "STLS"},
		{"sending (submission)", l.Submissions, l.Submission, "STARTTLS"},
	} {
		var ports []string
		if port := listenPort(p.tls); port != "" {
			ports = append(ports, "port "+port+" with TLS")
		}
		if port := listenPort(p.plain); port != "" {
			ports = append(ports, "port "+port+" with "+p.plainHow)
		}
		if len(ports) == 0 {
			continue
		}
		line := strings.Join(ports, ", or ")
		if p.what == "sending (submission)" {
			line += " (not served by this version of postfach yet)"
		}
		fmt.Fprintf(w, "  %-11s %s\n", p.what+":", line)
	}
	fmt.Fprintf(w, "\nIf the device is lost: postfach device revoke %s %s\n", address, nd.Device.Name)
}

// listenPort returns the port of a listen address, "" when it is off.
func listenPort(addr string) string {
	if addr == "" {
		return ""
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return port
}

// cmdDeviceRevoke removes a device's password; the running server ends
// the device's sessions at once.
func cmdDeviceRevoke(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if !oneAddress(e, fs, args, 2) {
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		err := api.DeviceRevoke(ctx, args[0], args[1])
		if code, done := deviceFail(e, args, err); done {
			return code
		}
		fmt.Fprintf(e.stdout, "%s: device %s revoked: its password no longer works and its open sessions are ended; the other devices are not affected\n", args[0], args[1])
		return exitOK
	})
}
