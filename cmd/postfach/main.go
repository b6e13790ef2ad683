// Command postfach is a mail server: one central mail store reached by
// IMAP and POP3, mail in by SMTP and LMTP. Run `postfach help` for the
// subcommands.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/postfach/postfach/internal/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

// Exit codes. deliver uses sysexits(3) codes, as MTAs expect from a
// delivery agent.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exDataErr    = 65 // EX_DATAERR: empty input, message too big
	exNoUser     = 67 // EX_NOUSER: unknown recipient
	exTempFail   = 75 // EX_TEMPFAIL: try again later
	exConfig     = 78 // EX_CONFIG: bad configuration
	exUsageSysex = 64 // EX_USAGE
)

// env is what a command needs from its surroundings, so tests can run
// commands in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

type command struct {
	name    string
	summary string
	usage   string // argument synopsis after the name
	run     func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int
	flags   func(fs *flag.FlagSet)
}

func commands() []*command {
	return []*command{
		{name: "serve", summary: "run the server until SIGINT/SIGTERM", run: cmdServe},
		{name: "user add", usage: "ADDRESS", summary: "create an account (password from the terminal, --password-stdin or --generate)", run: cmdUserAdd, flags: userAddFlags},
		{name: "user passwd", usage: "ADDRESS", summary: "change an account's password", run: cmdUserPasswd, flags: passwordFlags},
		{name: "user del", usage: "ADDRESS", summary: "delete an account and all its mail (asks, or --yes)", run: cmdUserDel, flags: func(fs *flag.FlagSet) {
			fs.Bool("yes", false, "do not ask for confirmation")
		}},
		{name: "user list", summary: "list the accounts", run: cmdUserList},
		{name: "user set", usage: "ADDRESS KEY [VALUE]", summary: "set a per-account setting (" + strings.Join(config.AccountSettings, ", ") + "); no VALUE clears it", run: cmdUserSet},
		{name: "user quota", usage: "ADDRESS [SIZE|none|default] [--messages COUNT|none|default]", summary: "show an account's mail against its quota, or set its own (default: limits.quota)", run: cmdUserQuota, flags: userQuotaFlags},
		{name: "device add", usage: "ADDRESS DEVICE", summary: "give a device (a phone, a laptop) a password of its own and print how to set it up: a setup link and QR code, and the settings", run: cmdDeviceAdd},
		{name: "device setup", usage: "ADDRESS DEVICE", summary: "give a device a new password with a new setup link and QR code (the link of device add expired or was lost)", run: cmdDeviceSetup},
		{name: "device list", usage: "ADDRESS", summary: "list the account's devices: last sign-in, client, password, POP3 view", run: cmdDeviceList},
		{name: "device revoke", usage: "ADDRESS DEVICE", summary: "revoke a device's password and end its sessions (a lost phone)", run: cmdDeviceRevoke},
		{name: "device forget", usage: "ADDRESS DEVICE", summary: "forget a POP3 device view: the device gets all of INBOX again", run: cmdDeviceForget},
		{name: "alias add", usage: "ADDRESS ACCOUNT...", summary: "make ADDRESS (or @DOMAIN, a catch-all) deliver to accounts, or add accounts to it", run: cmdAliasAdd},
		{name: "alias del", usage: "ADDRESS [ACCOUNT...]", summary: "take accounts out of an alias, or delete it (no ACCOUNT)", run: cmdAliasDel},
		{name: "alias list", usage: "[DOMAIN|ADDRESS]", summary: "list the aliases: all, a domain's, or an alias and the aliases of an account", run: cmdAliasList},
		{name: "queue list", summary: "list the outbound queue: messages waiting for other servers", run: cmdQueueList},
		{name: "queue show", usage: "ID", summary: "show a queued message: its recipients, their state and last answer", run: cmdQueueShow},
		{name: "queue retry", usage: "ID|--all", summary: "try a queued message (or every one) now", run: cmdQueueRetry, flags: queueRetryFlags},
		{name: "queue drop", usage: "ID", summary: "remove a queued message without telling its sender", run: cmdQueueDrop},
		{name: "dkim keygen", usage: "DOMAIN [--selector S]", summary: "make the DKIM keys of a local domain (RSA and ed25519) and print the DNS records to publish", run: cmdDKIMKeygen, flags: dkimKeygenFlags},
		{name: "dkim list", usage: "[DOMAIN]", summary: "list the DKIM keys with their DNS records", run: cmdDKIMList},
		{name: "dkim delete", usage: "DOMAIN SELECTOR", summary: "delete a DKIM key, or both keys made with SELECTOR", run: cmdDKIMDelete},
		{name: "deliver", usage: "--to ADDRESS [--from SENDER] [--mailbox NAME]", summary: "deliver one message from standard input (exit codes from sysexits: 0, 65, 67, 75)", run: cmdDeliver, flags: deliverFlags},
		{name: "backup verify", usage: "DEST", summary: "check backups: every record and every body's hash (exit 1 on any problem)", run: cmdBackupVerify},
		{name: "backup", usage: "DEST [--keep N]", summary: "write a backup into DEST (online through the running server; incremental beside earlier backups)", run: cmdBackup, flags: backupFlags},
		{name: "restore", usage: "SRC [--uid-margin N] [--new-uidvalidity] | SRC --account ADDRESS [--mailbox NAME] [--uid SET]", summary: "restore a backup into an empty data directory, or one account's mail into the running server", run: cmdRestore, flags: restoreFlags},
		{name: "undelete", usage: "ADDRESS [--mailbox NAME] [--since TIME] [--match TEXT] [--list]", summary: "list the deleted messages still kept (retention) and bring them back into their mailboxes", run: cmdUndelete, flags: undeleteFlags},
		{name: "import", usage: "ADDRESS PATH [--mailbox NAME] [--mbox-format mboxrd|mboxo|mboxcl2]", summary: "import an mbox file, a Maildir or a folder tree of them (Thunderbird's too) into an account, with flags and dates; a re-run adds nothing", run: cmdImport, flags: importFlags},
		{name: "export", usage: "ADDRESS DEST --format mbox|maildir", summary: "write an account's mailboxes with flags and dates as mbox files or Maildir++", run: cmdExport, flags: exportFlags},
		{name: "migrate", usage: "ADDRESS --from imaps://USER@HOST[:PORT]|imap://...|pop3s://... [--password-stdin] [--ca FILE]", summary: "copy an account from another server (IMAP: every folder with flags and dates; POP3: INBOX with its UIDLs); run again to resume or to copy what is new", run: cmdMigrate, flags: migrateFlags},
		{name: "check", summary: "check the config and verify the store", run: cmdCheck},
		{name: "version", summary: "print the version and VCS revision (also --version)", run: cmdVersion},
	}
}

func main() {
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(run(context.Background(), e, os.Args[1:]))
}

// run dispatches args (without the program name) and returns the exit code.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		args = append([]string{"version"}, args[1:]...)
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		if len(args) > 1 {
			return run(ctx, e, append(args[1:], "--help"))
		}
		printUsage(e.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	var cmd *command
	rest := args
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			cmd, rest = c, args[len(words):]
			break
		}
	}
	if cmd == nil {
		if args[0] == "user" {
			fmt.Fprintln(e.stderr, "postfach user: want one of add, passwd, del, list, set, quota")
		} else if args[0] == "queue" {
			fmt.Fprintln(e.stderr, "postfach queue: want one of list, show, retry, drop")
		} else if args[0] == "alias" {
			fmt.Fprintln(e.stderr, "postfach alias: want one of add, del, list")
		} else if args[0] == "dkim" {
			fmt.Fprintln(e.stderr, "postfach dkim: want one of keygen, list, delete")
		} else if args[0] == "device" {
			fmt.Fprintln(e.stderr, "postfach device: want one of add, list, revoke, forget, setup")
		} else {
			fmt.Fprintf(e.stderr, "postfach: unknown command %q\n", args[0])
		}
		printUsage(e.stderr)
		return exitUsage
	}
	fs := flag.NewFlagSet("postfach "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.String("config", "", "config file (default: $POSTFACH_CONFIG, else ./postfach.toml if it exists, else built-in defaults)")
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: postfach %s [flags] %s\n\n%s\n\nflags:\n", cmd.name, cmd.usage, cmd.summary)
		fs.PrintDefaults()
	}
	for _, a := range rest {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return exitOK
		}
	}
	positional, err := parseInterspersed(fs, rest)
	if err != nil {
		if cmd.name == "deliver" {
			return exUsageSysex
		}
		return exitUsage
	}
	return cmd.run(ctx, e, fs, positional)
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "postfach — a mail server: IMAP and POP3 for every device, SMTP and LMTP in.")
	fmt.Fprintln(w, "\nusage: postfach COMMAND [flags] [args]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery command takes --config FILE and --help. Flags may come before or after arguments.")
}

// parseInterspersed parses flags wherever they stand among the positional
// arguments ("user add alice@example.org --password-stdin" and
// "user add --password-stdin alice@example.org"). "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // Parse reports it
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return append(positional, fs.Args()...), nil
}

// configOrReport loads the config, telling the operator what is wrong with
// it; false means the command ends with exConfig.
func configOrReport(e *env, fs *flag.FlagSet) (*config.Config, bool) {
	cfg, err := loadConfig(e, fs)
	if err != nil {
		fmt.Fprintln(e.stderr, "postfach:", err)
		return nil, false
	}
	return cfg, true
}

// loadConfig finds and loads the config: --config, else POSTFACH_CONFIG,
// else ./postfach.toml if it exists, else the defaults (relative paths
// against the working directory).
func loadConfig(e *env, fs *flag.FlagSet) (*config.Config, error) {
	path := fs.Lookup("config").Value.String()
	if path == "" {
		path = e.getenv("POSTFACH_CONFIG")
	}
	if path == "" {
		if _, err := os.Stat("postfach.toml"); err == nil {
			path = "postfach.toml"
		}
	}
	if path != "" {
		return config.Load(path)
	}
	c := config.Default()
	wd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("working directory: %w", err)
	}
	c.Resolve(wd)
	return c, nil
}

func versionString() string {
	bi, _ := debug.ReadBuildInfo()
	return formatVersion(version, bi)
}

// formatVersion says which postfach this is: the version set with
// -ldflags, else the module version (a release, or the pseudo-version go
// build derives from the checkout), else "devel"; then the VCS revision
// and commit time that go build embeds from a git checkout ("+modified"
// when the tree had uncommitted changes), and the Go toolchain.
func formatVersion(ldVersion string, bi *debug.BuildInfo) string {
	v := ldVersion
	var rev, at string
	modified := false
	if bi != nil {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	var b strings.Builder
	b.WriteString("postfach " + v)
	if rev != "" {
		b.WriteString(" (revision " + rev)
		if modified {
			b.WriteString("+modified")
		}
		if at != "" {
			b.WriteString(", " + at)
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, " %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return b.String()
}

func cmdVersion(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(e.stderr, "postfach version: takes no arguments")
		return exitUsage
	}
	fmt.Fprintln(e.stdout, versionString())
	return exitOK
}

// displayPath shortens p relative to the working directory for messages.
func displayPath(p string) string {
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
	}
	return p
}
