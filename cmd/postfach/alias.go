package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/postfach/postfach/internal/admin"
)

// The alias commands (docs/running.md, "Aliases").

// aliasLine shows one alias: "family@example.org: alice@example.org,
// bob@example.org", with "(catch-all)" after a domain's catch-all.
func aliasLine(a *admin.Alias) string {
	name := a.Address
	if strings.HasPrefix(name, "@") {
		name += " (catch-all)"
	}
	return name + ": " + strings.Join(a.Targets, ", ")
}

// aliasFail prints an alias error: its own words say what is wrong.
func aliasFail(e *env, err error) int {
	fmt.Fprintln(e.stderr, "postfach:", err)
	return exitError
}

func cmdAliasAdd(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) < 2 {
		fmt.Fprintf(e.stderr, "%s: want the alias and at least one account\n", fs.Name())
		fs.Usage()
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		a, err := api.AliasAdd(ctx, args[0], args[1:])
		if err != nil {
			return aliasFail(e, err)
		}
		fmt.Fprintln(e.stdout, "alias "+aliasLine(a))
		return exitOK
	})
}

func cmdAliasDel(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) < 1 {
		fmt.Fprintf(e.stderr, "%s: want the alias, and the accounts to take out of it (none: the whole alias)\n", fs.Name())
		fs.Usage()
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		a, err := api.AliasDel(ctx, args[0], args[1:])
		if err != nil {
			return aliasFail(e, err)
		}
		if a == nil {
			fmt.Fprintf(e.stdout, "alias %s deleted\n", args[0])
		} else {
			fmt.Fprintln(e.stdout, "alias "+aliasLine(a))
		}
		return exitOK
	})
}

func cmdAliasList(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) > 1 {
		fmt.Fprintf(e.stderr, "%s: wrong number of arguments\n", fs.Name())
		fs.Usage()
		return exitUsage
	}
	filter := ""
	if len(args) == 1 {
		filter = args[0]
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		as, err := api.AliasList(ctx, filter)
		if err != nil {
			return aliasFail(e, err)
		}
		for _, a := range as {
			fmt.Fprintln(e.stdout, aliasLine(&a))
		}
		return exitOK
	})
}
