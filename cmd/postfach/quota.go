package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/postfach/postfach/internal/admin"
	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/store"
)

func userQuotaFlags(fs *flag.FlagSet) {
	fs.String("messages", "", "set the limit on the number of messages too: a count, none or default")
}

// cmdUserQuota shows an account's quota, or sets its own: `user quota
// ADDRESS [SIZE|none|default] [--messages COUNT|none|default]`.
func cmdUserQuota(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprintf(e.stderr, "%s: wrong number of arguments\n", fs.Name())
		fs.Usage()
		return exitUsage
	}
	name := args[0]
	setBytes, setMsgs := len(args) == 2, fs.Lookup("messages").Value.String() != ""
	var bytes, msgs int64
	var err error
	if setBytes {
		if bytes, err = parseQuota(args[1], true); err != nil {
			fmt.Fprintln(e.stderr, "postfach:", err)
			return exitUsage
		}
	}
	if setMsgs {
		if msgs, err = parseQuota(fs.Lookup("messages").Value.String(), false); err != nil {
			fmt.Fprintln(e.stderr, "postfach: --messages:", err)
			return exitUsage
		}
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		u, err := api.UserQuota(ctx, name)
		if err != nil {
			return adminFail(e, name, err)
		}
		if setBytes || setMsgs {
			q := u.Own
			if setBytes {
				q.Bytes = bytes
			}
			if setMsgs {
				q.Messages = msgs
			}
			if err := api.UserSetQuota(ctx, name, q); err != nil {
				return adminFail(e, name, err)
			}
			if u, err = api.UserQuota(ctx, name); err != nil {
				return adminFail(e, name, err)
			}
		}
		printQuota(e, name, u)
		return exitOK
	})
}

// parseQuota reads a limit: a size (bytes) or a count, "none" (or 0) for
// no limit, "default" for the config's.
func parseQuota(s string, size bool) (int64, error) {
	switch strings.ToLower(s) {
	case "default":
		return store.QuotaDefault, nil
	case "none", "unlimited":
		return 0, nil
	}
	if size {
		n, err := config.ParseSize(s)
		if err != nil {
			return 0, fmt.Errorf("%v, none or default", err)
		}
		return int64(n), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid count %q: want a number of messages, none or default", s)
	}
	return n, nil
}

// printQuota shows what the account's mail takes against its limits:
//
//	alice@example.org
//	  storage   1.5MiB (1572864 bytes) of 5GiB (own quota), 0%
//	  messages  120 of no limit (limits.quota_messages)
func printQuota(e *env, name string, u *store.Usage) {
	fmt.Fprintln(e.stdout, name)
	fmt.Fprintf(e.stdout, "  storage   %s (%d bytes) of %s\n", humanSize(u.Bytes), u.Bytes,
		quotaLimit(u.Limit.Bytes, u.Own.Bytes, u.Bytes, "limits.quota", humanSize))
	fmt.Fprintf(e.stdout, "  messages  %d of %s\n", u.Messages,
		quotaLimit(u.Limit.Messages, u.Own.Messages, u.Messages, "limits.quota_messages", func(n int64) string { return strconv.FormatInt(n, 10) }))
	if u.Limit.Over(u.Bytes, u.Messages) {
		fmt.Fprintln(e.stdout, "  over the quota: new mail is refused until mail is deleted or the quota raised")
	}
}

// quotaLimit describes one limit: its value, where it comes from, and the
// share used.
func quotaLimit(limit, own, used int64, key string, format func(int64) string) string {
	from := "own quota"
	if own == store.QuotaDefault {
		from = key
	}
	if limit == 0 {
		return "no limit (" + from + ")"
	}
	return fmt.Sprintf("%s (%s), %d%%", format(limit), from, used*100/limit)
}

// humanSize writes a byte count with a binary unit and one decimal.
func humanSize(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	if n < 1024 {
		return strconv.FormatInt(n, 10) + "B"
	}
	v := float64(n) / 1024
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + units[i]
}
