package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/postfach/postfach/internal/admin"
)

// The queue commands (docs/sending.md, "The outbound queue"): through the
// running server when there is one, else on the store.

func queueFail(e *env, err error) int {
	fmt.Fprintln(e.stderr, "postfach:", err)
	return exitError
}

func showSender(from string) string {
	if from == "" {
		return "<>"
	}
	return from
}

func cmdQueueList(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) != 0 {
		fmt.Fprintf(e.stderr, "%s: takes no arguments\n", fs.Name())
		fs.Usage()
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		es, err := api.QueueList(ctx)
		if err != nil {
			return queueFail(e, err)
		}
		if len(es) == 0 {
			fmt.Fprintln(e.stdout, "the queue is empty")
			return exitOK
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSENDER\tSIZE\tQUEUED\tATTEMPTS\tNEXT ATTEMPT\tPENDING")
		for _, q := range es {
			var pending []string
			for _, r := range q.Recipients {
				if r.State == "pending" {
					pending = append(pending, r.Address)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\n", q.ID, showSender(q.From), q.Size,
				q.Created.Local().Format(time.DateTime), q.Attempts, q.NextAttempt.Local().Format(time.DateTime), strings.Join(pending, ","))
		}
		tw.Flush()
		return exitOK
	})
}

func cmdQueueShow(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(e.stderr, "%s: want the queue ID\n", fs.Name())
		fs.Usage()
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		q, err := api.QueueShow(ctx, args[0])
		if err != nil {
			return queueFail(e, err)
		}
		w := e.stdout
		fmt.Fprintf(w, "id:           %s\n", q.ID)
		fmt.Fprintf(w, "sender:       %s\n", showSender(q.From))
		if q.Account != "" {
			fmt.Fprintf(w, "account:      %s\n", q.Account)
		}
		fmt.Fprintf(w, "size:         %d\n", q.Size)
		fmt.Fprintf(w, "queued:       %s\n", q.Created.Local().Format(time.RFC3339))
		fmt.Fprintf(w, "attempts:     %d\n", q.Attempts)
		fmt.Fprintf(w, "next attempt: %s\n", q.NextAttempt.Local().Format(time.RFC3339))
		if q.LastError != "" {
			fmt.Fprintf(w, "last error:   %s\n", q.LastError)
		}
		for _, r := range q.Recipients {
			fmt.Fprintf(w, "recipient:    %s %s", r.Address, r.State)
			if r.Status != "" {
				fmt.Fprintf(w, " %s", r.Status)
			}
			if r.Remote != "" {
				fmt.Fprintf(w, " (%s)", r.Remote)
			}
			if r.Diagnostic != "" {
				fmt.Fprintf(w, ": %s", r.Diagnostic)
			}
			fmt.Fprintln(w)
		}
		return exitOK
	})
}

func queueRetryFlags(fs *flag.FlagSet) {
	fs.Bool("all", false, "retry every queued message")
}

func cmdQueueRetry(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	all := fs.Lookup("all").Value.(flag.Getter).Get().(bool)
	if all == (len(args) == 1) || len(args) > 1 {
		fmt.Fprintf(e.stderr, "%s: want a queue ID or --all\n", fs.Name())
		fs.Usage()
		return exitUsage
	}
	id := ""
	if !all {
		id = args[0]
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		n, err := api.QueueRetry(ctx, id)
		if err != nil {
			return queueFail(e, err)
		}
		fmt.Fprintf(e.stdout, "%d queued message(s) due now\n", n)
		return exitOK
	})
}

func cmdQueueDrop(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(e.stderr, "%s: want the queue ID\n", fs.Name())
		fs.Usage()
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		if err := api.QueueDrop(ctx, args[0]); err != nil {
			return queueFail(e, err)
		}
		fmt.Fprintf(e.stdout, "queued message %s dropped (its sender is not told)\n", args[0])
		return exitOK
	})
}
