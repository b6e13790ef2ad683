package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
		fmt.Fprintf(e.stderr, "postfach: %s already has a device %q with a password; postfach device setup %s %s gives it a new password and setup link (or revoke it first: postfach device revoke %s %s), or choose another name\n",
			args[0], args[1], args[0], args[1], args[0], args[1])
		return exitError, true
	}
	return adminFail(e, args[0], err), true
}

// cmdDeviceAdd gives a device a generated password and prints what the
// device needs to be set up: a setup link with its QR code when listen.web
// is on, and the settings to type in.
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
		fmt.Fprintf(e.stdout, "device %s of %s added.\n\n", nd.Device.Name, args[0])
		writeDeviceSetup(e.stdout, cfg, args[0], nd, qrColorsFor(e.stdout, e.getenv))
		return exitOK
	})
}

// cmdDeviceSetup gives a device that has a password a new password and a
// new setup link. The old password is kept only as a hash and its link
// (if any) only sealed under that link's token, so a new link needs a new
// password; the old password stops working (sessions signed in with it
// stay until they end, as after user passwd; device revoke ends them).
func cmdDeviceSetup(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if !oneAddress(e, fs, args, 2) {
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		nd, err := api.DeviceSetup(ctx, args[0], args[1])
		switch {
		case errors.Is(err, admin.ErrNoSetupLinks):
			fmt.Fprintf(e.stderr, "postfach: setup links need the web listener: set listen.web (see docs/devices.md); to give %s a new password without one: postfach device revoke %s %s, then postfach device add %s %s\n",
				args[1], args[0], args[1], args[0], args[1])
			return exitError
		case errors.Is(err, admin.ErrNoDevice):
			fmt.Fprintf(e.stderr, "postfach: %s has no device %q with a password; give it one with postfach device add %s %s\n", args[0], args[1], args[0], args[1])
			return exitError
		}
		if code, done := deviceFail(e, args, err); done {
			return code
		}
		fmt.Fprintf(e.stdout, "device %s of %s has a new password and setup link; the old password and link no longer work.\n\n", nd.Device.Name, args[0])
		writeDeviceSetup(e.stdout, cfg, args[0], nd, qrColorsFor(e.stdout, e.getenv))
		return exitOK
	})
}

// writeDeviceSetup prints what a person needs to set up a new device: the
// setup link and its QR code (colors: the code sets its own colours,
// for a terminal), and for setting it up by hand the password (shown this
// once), the user name and the server's name and ports.
func writeDeviceSetup(w io.Writer, cfg *config.Config, address string, nd *admin.NewDevice, colors bool) {
	switch {
	case nd.SetupLink != "":
		fmt.Fprintf(w, "  setup link: %s\n", nd.SetupLink)
		fmt.Fprintf(w, "              (works once, until %s)\n\n", nd.SetupExpires.UTC().Format("2006-01-02 15:04 MST"))
		fmt.Fprintf(w, "Open the link on the new device, or scan this code with its camera:\n\n")
		if err := writeQR(w, nd.SetupLink, "  ", colors); err != nil {
			fmt.Fprintf(w, "  (no QR code: %v)\n", err)
		}
		fmt.Fprintf(w, "\nAn iPhone, iPad or Mac installs the account from it (a configuration profile);\n")
		fmt.Fprintf(w, "other devices are shown the settings and the password. Or set it up by hand:\n\n")
	case nd.SetupError != "":
		fmt.Fprintf(w, "  setup link: none, it could not be made (%s);\n", nd.SetupError)
		fmt.Fprintf(w, "              postfach device setup %s %s tries again (with a new password)\n\n", address, nd.Device.Name)
	default:
		fmt.Fprintf(w, "  (A setup link and QR code that set the device up in one step need the web\n")
		fmt.Fprintf(w, "  listener: set listen.web, see docs/devices.md; then postfach device setup\n")
		fmt.Fprintf(w, "  %s %s makes one.)\n\n", address, nd.Device.Name)
	}
	fmt.Fprintf(w, "  password:   %s\n", auth.FormatDevicePassword(nd.Password))
	fmt.Fprintf(w, "              (shown only now; the spaces may be left out, capitals do not matter)\n")
	fmt.Fprintf(w, "  user name:  %s\n", address)
	fmt.Fprintf(w, "  server:     %s\n", cfg.PublicHost())
	for _, p := range []struct{ what, tls, plain, plainHow string }{
		{"IMAP", "imaps", "imap", "STARTTLS"},
		{"POP3", "pop3s", "pop3", "STLS"},
		{"sending (submission)", "submissions", "submission", "STARTTLS"},
	} {
		var ports []string
		if port := cfg.PublicPort(p.tls, ""); port != 0 {
			ports = append(ports, fmt.Sprintf("port %d with TLS", port))
		}
		if port := cfg.PublicPort(p.plain, ""); port != 0 {
			ports = append(ports, fmt.Sprintf("port %d with %s", port, p.plainHow))
		}
		if len(ports) == 0 {
			continue
		}
		line := strings.Join(ports, ", or ")
		fmt.Fprintf(w, "  %-11s %s\n", p.what+":", line)
	}
	fmt.Fprintf(w, "\nIf the device is lost: postfach device revoke %s %s\n", address, nd.Device.Name)
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
