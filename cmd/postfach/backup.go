package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/postfach/postfach/internal/admin"
	"github.com/postfach/postfach/internal/backup"
	"github.com/postfach/postfach/internal/server"
	"github.com/postfach/postfach/internal/store/sqlite"
)

// The backup commands (docs/backup.md).

func backupFlags(fs *flag.FlagSet) {
	fs.Int("keep", 0, "after the backup, keep only the newest N backups in DEST and the bodies they use (0: keep all)")
}

func restoreFlags(fs *flag.FlagSet) {
	fs.Uint("uid-margin", backup.DefaultUIDMargin, "full restore: raise every mailbox's UIDNEXT and HIGHESTMODSEQ by this much")
	fs.Bool("new-uidvalidity", false, "full restore: give every mailbox a new UIDVALIDITY (every device downloads everything again)")
	fs.String("account", "", "partial restore into the running server: the account whose mail comes back")
	fs.String("mailbox", "", "partial restore: only this mailbox")
	fs.String("uid", "", "partial restore: only these UIDs of --mailbox, as the backup knew them (\"17\", \"1:40,52\")")
}

func absArg(e *env, name, p string) (string, bool) {
	a, err := filepath.Abs(p)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		return "", false
	}
	return a, true
}

func cmdBackup(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(e.stderr, "%s: want the backup directory (DEST)\n", fs.Name())
		fs.Usage()
		return exitUsage
	}
	keep, _ := strconv.Atoi(fs.Lookup("keep").Value.String())
	if keep < 0 {
		fmt.Fprintf(e.stderr, "%s: --keep must not be negative\n", fs.Name())
		return exitUsage
	}
	dest, ok := absArg(e, fs.Name(), args[0])
	if !ok {
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	if inside(dest, cfg.DataDir) {
		fmt.Fprintf(e.stderr, "%s: %s is inside the data directory %s: put backups elsewhere (another disk, ideally)\n", fs.Name(), dest, cfg.DataDir)
		return exitUsage
	}
	return withAPI(e, cfg, func(api admin.API) int {
		res, err := api.Backup(ctx, dest)
		if err != nil {
			fmt.Fprintln(e.stderr, "postfach backup:", err)
			return exitError
		}
		fmt.Fprintf(e.stdout, "backup %s: %d bodies (%s), %d new (%s)\n", res.Dir, res.Bodies, sizeString(res.BodyBytes),
			res.NewBodies, sizeString(res.NewBytes))
		code := exitOK
		if len(res.Damaged) > 0 {
			fmt.Fprintf(e.stderr, "postfach backup: %d bodies are damaged in the store and are not in the backup (postfach check lists their messages)\n", len(res.Damaged))
			code = exitError
		}
		if keep > 0 {
			pr, err := backup.Prune(dest, keep)
			if err != nil {
				fmt.Fprintln(e.stderr, "postfach backup: prune:", err)
				return exitError
			}
			for _, n := range pr.Removed {
				fmt.Fprintf(e.stdout, "removed %s\n", n)
			}
			if pr.Bodies > 0 {
				fmt.Fprintf(e.stdout, "removed %d bodies no kept backup uses (%s)\n", pr.Bodies, sizeString(pr.Bytes))
			}
		}
		return code
	})
}

// inside reports whether p is dir or below it.
func inside(p, dir string) bool {
	r, err := filepath.Rel(dir, p)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator))
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

func cmdBackupVerify(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(e.stderr, "%s: want a backup directory, or a backup root (DEST)\n", fs.Name())
		fs.Usage()
		return exitUsage
	}
	rep, err := backup.Verify(ctx, args[0])
	if err != nil {
		fmt.Fprintln(e.stderr, "postfach backup verify:", err)
		return exitError
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(e.stdout, p)
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintf(e.stdout, "%d backup(s), %d bodies checked: %d problem(s)\n", len(rep.Backups), rep.Bodies, len(rep.Problems))
		return exitError
	}
	fmt.Fprintf(e.stdout, "%d backup(s), %d bodies (%s) checked: ok\n", len(rep.Backups), rep.Bodies, sizeString(rep.Bytes))
	return exitOK
}

func cmdRestore(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(e.stderr, "%s: want the backup (a backup directory, or a root: its newest backup)\n", fs.Name())
		fs.Usage()
		return exitUsage
	}
	src, ok := absArg(e, fs.Name(), args[0])
	if !ok {
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	get := func(name string) string { return fs.Lookup(name).Value.String() }
	if acct := get("account"); acct != "" {
		sel := backup.Selection{Account: acct, Mailbox: get("mailbox")}
		if u := get("uid"); u != "" {
			sel.UIDs = []string{u}
		}
		return withAPI(e, cfg, func(api admin.API) int {
			res, err := api.Restore(ctx, src, sel)
			if err != nil {
				fmt.Fprintln(e.stderr, "postfach restore:", err)
				return exitError
			}
			for _, n := range res.Created {
				fmt.Fprintf(e.stdout, "mailbox %s created again\n", n)
			}
			fmt.Fprintf(e.stdout, "restored %d messages from %s into %s (%d already there)\n", res.Restored, res.Backup, acct, res.Present)
			return exitOK
		})
	}
	if get("mailbox") != "" || get("uid") != "" {
		fmt.Fprintf(e.stderr, "%s: --mailbox and --uid need --account\n", fs.Name())
		return exitUsage
	}
	margin, err := strconv.ParseUint(get("uid-margin"), 10, 32)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: --uid-margin: %v\n", fs.Name(), err)
		return exitUsage
	}
	// A full restore makes a new store: it refuses a data directory that
	// holds anything.
	if ents, err := os.ReadDir(cfg.DataDir); err == nil && len(ents) > 0 {
		fmt.Fprintf(e.stderr, "postfach restore: the data directory %s is not empty; a full restore goes into a new one (move the old one away, or restore one account into the running server with --account)\n", cfg.DataDir)
		return exitError
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(e.stderr, "postfach restore:", err)
		return exitError
	}
	blobs, err := server.OpenBlobs(ctx, cfg, nil)
	if err != nil {
		fmt.Fprintln(e.stderr, "postfach restore:", err)
		return exitError
	}
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: cfg.DataDir, SweepInterval: -1, OpsOptions: server.StoreSafeguards(cfg), Blobs: blobs})
	if err != nil {
		fmt.Fprintln(e.stderr, "postfach restore: open store:", err)
		return exitError
	}
	res, err := backup.Restore(ctx, st, src, backup.RestoreOptions{UIDMargin: uint32(margin), NewUIDValidity: get("new-uidvalidity") == "true",
		Progress: func(done, total int64) { fmt.Fprintf(e.stderr, "\rrestoring: %d/%d messages", done, total) }})
	cerr := st.Close()
	fmt.Fprintln(e.stderr)
	if err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "postfach restore:", err)
		fmt.Fprintf(e.stderr, "postfach restore: the data directory %s holds a partial restore: remove its contents before trying again\n", cfg.DataDir)
		return exitError
	}
	for _, s := range res.Skipped {
		fmt.Fprintln(e.stdout, "not restored:", s)
	}
	fmt.Fprintf(e.stdout, "restored %s into %s: %d accounts, %d mailboxes, %d messages, %d retained expunged messages\n",
		res.Backup, cfg.DataDir, res.Accounts, res.Mailboxes, res.Messages, res.Expunged)
	return exitOK
}
