package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/admin"
	"github.com/postfach/postfach/internal/backup"
	"github.com/postfach/postfach/internal/store"
)

// postfach undelete (docs/backup.md, "Recovering deleted mail").

func undeleteFlags(fs *flag.FlagSet) {
	fs.String("mailbox", "", "only messages that left this mailbox or one below it (its name now, or when they left)")
	fs.String("since", "", "only messages deleted since then: an RFC 3339 time (2026-12-01T08:00:00Z), a date (2026-12-01), or a duration back from now (7d, 2w, 36h)")
	fs.String("match", "", "only messages whose Subject, From or To contains this text (case-insensitive)")
	fs.Bool("list", false, "list them; bring nothing back")
}

// parseSince reads --since: an RFC 3339 time, a date (midnight UTC), or
// a duration back from now in Go's syntax plus the units d (24h) and w.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	var unit time.Duration
	switch {
	case strings.HasSuffix(s, "d"):
		unit = 24 * time.Hour
	case strings.HasSuffix(s, "w"):
		unit = 7 * 24 * time.Hour
	}
	if unit != 0 {
		n, err := strconv.ParseFloat(s[:len(s)-1], 64)
		if err != nil || n < 0 || n > 100000 {
			return time.Time{}, fmt.Errorf("bad --since %q: want an RFC 3339 time, a date or a duration such as 7d", s)
		}
		return now.Add(-time.Duration(n * float64(unit))), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("bad --since %q: want an RFC 3339 time, a date or a duration such as 7d", s)
	}
	return now.Add(-d), nil
}

func cmdUndelete(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if !oneAddress(e, fs, args, 1) {
		return exitUsage
	}
	get := func(name string) string { return fs.Lookup(name).Value.String() }
	req := backup.UndeleteRequest{Account: args[0], Mailbox: get("mailbox"), Match: get("match"), List: get("list") == "true"}
	if s := get("since"); s != "" {
		t, err := parseSince(s, time.Now())
		if err != nil {
			fmt.Fprintf(e.stderr, "%s: %v\n", fs.Name(), err)
			return exitUsage
		}
		req.Since = t
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		res, err := api.Undelete(ctx, req)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				fmt.Fprintf(e.stderr, "postfach undelete: %s: no such account\n", args[0])
				return exitError
			}
			fmt.Fprintln(e.stderr, "postfach undelete:", err)
			return exitError
		}
		for _, n := range res.Created {
			fmt.Fprintf(e.stdout, "mailbox %s created again\n", n)
		}
		for _, m := range res.Messages {
			fmt.Fprintln(e.stdout, deletedLine(m))
		}
		switch {
		case len(res.Messages) == 0:
			fmt.Fprintf(e.stdout, "%s: no deleted messages kept that match\n", args[0])
		case req.List:
			fmt.Fprintf(e.stdout, "%d deleted messages kept (bring them back without --list)\n", len(res.Messages))
		default:
			fmt.Fprintf(e.stdout, "brought back %d of %d messages\n", res.Restored, len(res.Messages))
		}
		return exitOK
	})
}

// deletedLine is one line of undelete's list: when it was deleted, from
// where, and what it is; and where it went back to.
func deletedLine(m backup.DeletedMessage) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s uid=%d", m.Expunged.UTC().Format(time.RFC3339), strconv.Quote(m.Mailbox), m.UID)
	if m.Gone {
		b.WriteString(" (mailbox deleted)")
	}
	fmt.Fprintf(&b, " size=%d from=%q subject=%q", m.Size, m.From, m.Subject)
	if m.NewUID != 0 {
		fmt.Fprintf(&b, " -> %q uid=%d", m.Into, m.NewUID)
	}
	return b.String()
}
