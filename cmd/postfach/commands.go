package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/postfach/postfach/internal/admin"
	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/server"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
)

func cmdServe(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(e.stderr, "postfach serve: takes no arguments")
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	log := server.NewLogger(cfg.Log, e.stderr)
	if cfg.Path == "" {
		log.Info("no config file: running on the embedded defaults (see docs/configuration.md)")
	} else {
		log.Info("config loaded", "file", cfg.Path)
	}
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigc)
	// SIGHUP reloads the TLS certificate (and would otherwise end the
	// process).
	hupc := make(chan os.Signal, 1)
	signal.Notify(hupc, syscall.SIGHUP)
	defer signal.Stop(hupc)

	srv, err := server.Start(ctx, server.Options{Config: cfg, Logger: log})
	if err != nil {
		log.Error("start failed", "err", err)
		return exitError
	}
	code := exitOK
wait:
	for {
		select {
		case <-hupc:
			log.Info("signal received, reloading the tls certificate", "signal", "hangup")
			srv.Reload() // logs its own failure and keeps the old certificate
		case sig := <-sigc:
			log.Info("signal received, stopping", "signal", sig.String())
			break wait
		case err := <-srv.Err():
			log.Error("stopping after a listener failed", "err", err)
			code = exitError
			break wait
		}
	}
	// limits.shutdown_grace bounds the graceful part of the stop; a second
	// signal ends it at once. Past it, Shutdown cuts the connections off
	// and returns within its cut-off whatever the store does; the last
	// timer here is a backstop, so the process exits in every case.
	grace := cfg.Limits.ShutdownGrace.D()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(sctx) }()
	backstop := time.NewTimer(grace + 3*server.ShutdownCutoff)
	defer backstop.Stop()
	for {
		select {
		case sig := <-sigc:
			log.Warn("second signal, stopping now", "signal", sig.String())
			cancel()
		case err := <-done:
			if err != nil {
				return exitError
			}
			return code
		case <-backstop.C:
			log.Error("shutdown did not finish; exiting anyway", "shutdown_grace", grace)
			return exitError
		}
	}
}

// withAPI runs f with the admin API: through the running server's admin
// socket when there is one, else directly on the store. The int is the exit
// code to use when the API cannot be had.
func withAPI(e *env, cfg *config.Config, f func(api admin.API) int) int {
	c, err := admin.Dial(cfg.DataDir)
	if err == nil {
		return f(c)
	}
	if !errors.Is(err, admin.ErrNoServer) {
		fmt.Fprintln(e.stderr, "postfach:", err)
		return exTempFail
	}
	ctx := context.Background()
	be, err := server.OpenBackend(ctx, cfg, server.BackendOptions{})
	if errors.Is(err, store.ErrLocked) && cfg.Store.Backend == config.StorePostgres {
		fmt.Fprintf(e.stderr, "postfach: the database of store.dsn is in use by a running postfach, but its admin socket %s does not answer (is the server still starting, or stuck?); try again, or stop that process\n",
			filepath.Join(cfg.DataDir, admin.SocketName))
		return exTempFail
	}
	if errors.Is(err, store.ErrLocked) {
		fmt.Fprintf(e.stderr, "postfach: the data directory %s is locked by a running postfach, but its admin socket %s does not answer (is the server still starting, or stuck?); try again, or stop that process\n",
			cfg.DataDir, filepath.Join(cfg.DataDir, admin.SocketName))
		return exTempFail
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "postfach: open store:", err)
		return exTempFail
	}
	defer be.Close()
	st := be.Store
	ops := &admin.Ops{Store: st, Credentials: be.Credentials, Aliases: be.Aliases, DKIMKeys: be.DKIMKeys, Deliverer: server.NewDeliverer(cfg, st, be.Aliases, nil)}
	if cfg.Listen.Web != "" { // device setup links, served once the server runs
		ops.SetupLinks, ops.SetupURL = be.SetupLinks, cfg.PublicURL("")
	}
	return f(ops)
}

func passwordFlags(fs *flag.FlagSet) {
	fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	fs.Bool("generate", false, "generate a random password and print it")
}

func userAddFlags(fs *flag.FlagSet) {
	passwordFlags(fs)
	fs.Bool("force", false, "create the account even if its domain is not one of the local domains")
}

// minPasswordLen is the shortest password the user commands accept.
const minPasswordLen = 8

// readPassword gets a new password: a generated one with --generate, the
// first line of stdin with --password-stdin, else a terminal prompt
// (twice). generated reports a generated password, which the caller must
// show. A password shorter than minPasswordLen is refused.
func readPassword(e *env, fs *flag.FlagSet) (pw string, generated bool, err error) {
	gen := fs.Lookup("generate").Value.String() == "true"
	if gen && fs.Lookup("password-stdin").Value.String() == "true" {
		return "", false, errors.New("--generate and --password-stdin exclude each other")
	}
	if gen {
		// 26 characters of base32: 130 bits.
		return rand.Text(), true, nil
	}
	pw, err = enteredPassword(e, fs)
	if err != nil {
		return "", false, err
	}
	if n := utf8.RuneCountInString(pw); n < minPasswordLen {
		return "", false, fmt.Errorf("the password has %d characters; use at least %d, or --generate for a random one", n, minPasswordLen)
	}
	return pw, false, nil
}

// enteredPassword reads the password from stdin or the terminal.
func enteredPassword(e *env, fs *flag.FlagSet) (string, error) {
	if fs.Lookup("password-stdin").Value.String() == "true" {
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("empty password on stdin")
		}
		return pw, nil
	}
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("standard input is not a terminal: use --password-stdin")
	}
	fmt.Fprint(e.stderr, "Password: ")
	p1, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprint(e.stderr, "Repeat password: ")
	p2, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if string(p1) != string(p2) {
		return "", errors.New("the passwords do not match")
	}
	if len(p1) == 0 {
		return "", errors.New("empty password")
	}
	return string(p1), nil
}

// oneAddress checks the positional arguments of the user commands.
func oneAddress(e *env, fs *flag.FlagSet, args []string, n int) bool {
	if len(args) != n {
		fmt.Fprintf(e.stderr, "%s: wrong number of arguments\n", fs.Name())
		fs.Usage()
		return false
	}
	return true
}

// adminFail prints an admin error in words for an operator.
func adminFail(e *env, what string, err error) int {
	switch {
	case errors.Is(err, store.ErrNotFound):
		fmt.Fprintf(e.stderr, "postfach: %s: no such account\n", what)
	case errors.Is(err, store.ErrExists):
		fmt.Fprintf(e.stderr, "postfach: %s: the account already exists\n", what)
	default:
		fmt.Fprintf(e.stderr, "postfach: %s: %v\n", what, err)
	}
	return exitError
}

func cmdUserAdd(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	return setPassword(ctx, e, fs, args, true)
}

func cmdUserPasswd(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	return setPassword(ctx, e, fs, args, false)
}

func setPassword(ctx context.Context, e *env, fs *flag.FlagSet, args []string, create bool) int {
	if !oneAddress(e, fs, args, 1) {
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	name := args[0]
	if create {
		if i := strings.LastIndexByte(name, '@'); i > 0 && !cfg.IsLocalDomain(name[i+1:]) {
			if fs.Lookup("force").Value.String() != "true" {
				fmt.Fprintf(e.stderr, "postfach: %s is not a local domain (domains = %q): the account could log in but would receive no mail; add the domain to the config, or use --force\n", name[i+1:], cfg.Domains)
				return exitError
			}
			fmt.Fprintf(e.stderr, "postfach: warning: %s is not a local domain (domains = %q); the account can log in but receives no mail\n", name[i+1:], cfg.Domains)
		}
	}
	pw, generated, err := readPassword(e, fs)
	if err != nil {
		fmt.Fprintln(e.stderr, "postfach:", err)
		return exitError
	}
	return withAPI(e, cfg, func(api admin.API) int {
		if create {
			if err := api.UserAdd(ctx, name, pw); err != nil {
				return adminFail(e, name, err)
			}
			fmt.Fprintf(e.stdout, "account %s created\n", name)
		} else {
			if err := api.UserPasswd(ctx, name, pw); err != nil {
				return adminFail(e, name, err)
			}
			fmt.Fprintf(e.stdout, "password of %s changed\n", name)
		}
		if generated {
			fmt.Fprintf(e.stdout, "password: %s\n", pw)
		}
		return exitOK
	})
}

func cmdUserDel(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if !oneAddress(e, fs, args, 1) {
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	name := args[0]
	if fs.Lookup("yes").Value.String() != "true" {
		f, ok := e.stdin.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			fmt.Fprintln(e.stderr, "postfach: user del deletes the account and all its mail; confirm with --yes")
			return exitError
		}
		fmt.Fprintf(e.stderr, "Delete %s and all its mail? Type the address to confirm: ", name)
		line, _ := bufio.NewReader(f).ReadString('\n')
		if !strings.EqualFold(strings.TrimSpace(line), name) {
			fmt.Fprintln(e.stderr, "postfach: not confirmed; nothing deleted")
			return exitError
		}
	}
	return withAPI(e, cfg, func(api admin.API) int {
		if err := api.UserDel(ctx, name); err != nil {
			return adminFail(e, name, err)
		}
		fmt.Fprintf(e.stdout, "account %s deleted\n", name)
		return exitOK
	})
}

func cmdUserList(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if !oneAddress(e, fs, args, 0) {
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		users, err := api.UserList(ctx)
		if err != nil {
			return adminFail(e, "list", err)
		}
		for _, u := range users {
			line := fmt.Sprintf("%s inbox=%d", u.Name, u.Inbox)
			for _, k := range config.AccountSettings {
				if v, ok := u.Settings[k]; ok {
					line += " " + k + "=" + v
				}
			}
			fmt.Fprintln(e.stdout, line)
		}
		return exitOK
	})
}

func cmdUserSet(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) == 2 {
		args = append(args, "")
	}
	if !oneAddress(e, fs, args, 3) {
		return exitUsage
	}
	if err := config.ValidateAccountSetting(args[1], args[2]); err != nil {
		fmt.Fprintln(e.stderr, "postfach:", err)
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		if err := api.UserSet(ctx, args[0], args[1], args[2]); err != nil {
			return adminFail(e, args[0], err)
		}
		if args[2] == "" {
			fmt.Fprintf(e.stdout, "%s: %s cleared\n", args[0], args[1])
		} else {
			fmt.Fprintf(e.stdout, "%s: %s = %s\n", args[0], args[1], args[2])
		}
		return exitOK
	})
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func deliverFlags(fs *flag.FlagSet) {
	fs.Var(new(listFlag), "to", "recipient address (repeatable)")
	fs.String("from", "", "envelope sender, for Return-Path (default: none, <>)")
	fs.String("mailbox", "", "destination mailbox (default INBOX; a missing mailbox falls back to INBOX)")
}

func cmdDeliver(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	to := *fs.Lookup("to").Value.(*listFlag)
	to = append(to, args...) // "deliver alice@example.org" works too
	if len(to) == 0 {
		fmt.Fprintln(e.stderr, "postfach deliver: --to ADDRESS is required")
		return exUsageSysex
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	req := admin.DeliverRequest{To: to, From: fs.Lookup("from").Value.String(), Mailbox: fs.Lookup("mailbox").Value.String()}
	return withAPI(e, cfg, func(api admin.API) int {
		res, err := api.Deliver(ctx, req, e.stdin)
		if err != nil {
			fmt.Fprintln(e.stderr, "postfach deliver:", err)
			return deliverExit(err)
		}
		code := exitOK
		for i, msg := range res.Errs {
			if msg == "" {
				continue
			}
			rerr := admin.ErrorFromCode(msg, res.Codes[i])
			fmt.Fprintf(e.stderr, "postfach deliver: %s: %s\n", to[i], msg)
			// The most urgent code wins: a temporary failure makes the MTA
			// retry, which beats bouncing.
			if c := deliverExit(rerr); code == exitOK || c == exTempFail {
				code = c
			}
		}
		return code
	})
}

// deliverExit maps a delivery error to a sysexits code.
func deliverExit(err error) int {
	switch {
	case errors.Is(err, delivery.ErrUnknownUser), errors.Is(err, delivery.ErrNotLocal), errors.Is(err, delivery.ErrBadAddress):
		return exNoUser
	case errors.Is(err, store.ErrTooBig), errors.Is(err, store.ErrEmptyMessage), errors.Is(err, delivery.ErrQuotaTooSmall):
		return exDataErr
	case errors.Is(err, admin.ErrInvalid):
		return exUsageSysex
	}
	return exTempFail
}

func cmdCheck(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if !oneAddress(e, fs, args, 0) {
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	if cfg.Path != "" {
		fmt.Fprintf(e.stdout, "config %s: ok\n", displayPath(cfg.Path))
	}
	if _, err := os.Stat(cfg.DataDir); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(e.stdout, "data directory %s does not exist yet: nothing to check\n", cfg.DataDir)
		return exitOK
	}
	// A running server checks its own store; without one the store is
	// opened read-only, so a read-only data directory (a mounted backup)
	// can be checked and nothing is changed.
	var problems []store.Problem
	c, err := admin.Dial(cfg.DataDir)
	switch {
	case err == nil:
		problems, err = c.Check(ctx)
	case errors.Is(err, admin.ErrNoServer) && cfg.Store.Backend == config.StorePostgres:
		problems, err = checkBackend(ctx, cfg)
	case errors.Is(err, admin.ErrNoServer):
		var blobs blob.Store
		if blobs, err = server.OpenBlobs(ctx, cfg, nil); err == nil {
			problems, err = sqlite.CheckReadOnlyWith(ctx, cfg.DataDir, blobs, nil)
		}
	default:
		fmt.Fprintln(e.stderr, "postfach check:", err)
		return exTempFail
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "postfach check:", err)
		return exitError
	}
	if len(problems) == 0 {
		fmt.Fprintf(e.stdout, "store %s: ok\n", cfg.DataDir)
		return exitOK
	}
	for _, p := range problems {
		fmt.Fprintln(e.stdout, problemLine(p))
	}
	fmt.Fprintf(e.stdout, "store %s: %d problem(s)\n", cfg.DataDir, len(problems))
	return exitError
}

// problemLine says where a problem is, by name: "problem: account
// alice@example.org, mailbox INBOX, UID 5: message body damaged: ...".
func problemLine(p store.Problem) string {
	var where []string
	name := func(kind, n string, id int64) {
		if n == "" {
			n = fmt.Sprintf("#%d", id)
		}
		where = append(where, kind+" "+n)
	}
	if p.Account != 0 || p.AccountName != "" {
		name("account", p.AccountName, int64(p.Account))
	}
	if p.Mailbox != 0 || p.MailboxName != "" {
		name("mailbox", p.MailboxName, int64(p.Mailbox))
	}
	if p.UID != 0 {
		where = append(where, fmt.Sprintf("UID %d", p.UID))
	}
	if len(where) == 0 {
		return "problem: " + p.What
	}
	return "problem: " + strings.Join(where, ", ") + ": " + p.What
}

// checkBackend checks a store that is not the embedded one, opened for
// the check and closed after it.
func checkBackend(ctx context.Context, cfg *config.Config) ([]store.Problem, error) {
	be, err := server.OpenBackend(ctx, cfg, server.BackendOptions{})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	problems, err := be.Store.Check(ctx)
	return problems, errors.Join(err, be.Close())
}
