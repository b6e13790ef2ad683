package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/postfach/postfach/internal/admin"
	"github.com/postfach/postfach/internal/backup"
)

// postfach import and export (docs/backup.md, "Importing mail" and
// "Exporting mail").

func importFlags(fs *flag.FlagSet) {
	fs.String("mailbox", "", "the mailbox for an mbox file or the top Maildir (default INBOX); a tree's folders go below it")
	fs.String("mbox-format", "mboxrd", "the mbox variant: mboxrd, mboxo or mboxcl2 (they cannot be told apart reliably)")
}

func exportFlags(fs *flag.FlagSet) {
	fs.String("format", "", "mbox (a tree of mboxrd files, as Thunderbird keeps them) or maildir (Maildir++)")
}

func cmdImport(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if !oneAddress(e, fs, args, 2) {
		return exitUsage
	}
	get := func(name string) string { return fs.Lookup(name).Value.String() }
	if _, err := backup.ParseMboxFormat(get("mbox-format")); err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", fs.Name(), err)
		return exitUsage
	}
	path, ok := absArg(e, fs.Name(), args[1])
	if !ok {
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	if inside(path, cfg.DataDir) {
		fmt.Fprintf(e.stderr, "%s: %s is inside the data directory %s\n", fs.Name(), path, cfg.DataDir)
		return exitUsage
	}
	req := backup.ImportRequest{Account: args[0], Path: path, Mailbox: get("mailbox"), MboxFormat: get("mbox-format"),
		MaxSize: int64(cfg.MaxMessageSize)}
	return withAPI(e, cfg, func(api admin.API) int {
		res, err := api.Import(ctx, req)
		if res != nil {
			for _, n := range res.Created {
				fmt.Fprintf(e.stdout, "mailbox %s created\n", n)
			}
			for _, f := range res.Folders {
				fmt.Fprintf(e.stdout, "%s -> %s: %d added, %d already there\n", f.Source, f.Mailbox, f.Added, f.Present)
			}
			for _, p := range res.Problems {
				fmt.Fprintln(e.stderr, "postfach import:", p)
			}
		}
		if err != nil {
			return adminFail(e, "import", err)
		}
		fmt.Fprintf(e.stdout, "imported %d messages into %s (%d already there)\n", res.Added, args[0], res.Present)
		if len(res.Problems) > 0 {
			return exitError
		}
		return exitOK
	})
}

func cmdExport(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if !oneAddress(e, fs, args, 2) {
		return exitUsage
	}
	format := fs.Lookup("format").Value.String()
	if format != "mbox" && format != "maildir" {
		fmt.Fprintf(e.stderr, "%s: want --format mbox or --format maildir\n", fs.Name())
		return exitUsage
	}
	dest, ok := absArg(e, fs.Name(), args[1])
	if !ok {
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	if inside(dest, cfg.DataDir) {
		fmt.Fprintf(e.stderr, "%s: %s is inside the data directory %s\n", fs.Name(), dest, cfg.DataDir)
		return exitUsage
	}
	return withAPI(e, cfg, func(api admin.API) int {
		res, err := api.Export(ctx, backup.ExportRequest{Account: args[0], Dest: dest, Format: format})
		if err != nil {
			return adminFail(e, "export", err)
		}
		for _, p := range res.Problems {
			fmt.Fprintln(e.stderr, "postfach export:", p)
		}
		fmt.Fprintf(e.stdout, "exported %d messages (%s) of %d mailboxes into %s\n", res.Messages, sizeString(res.Bytes), res.Mailboxes, dest)
		return exitOK
	})
}
