package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/postfach/postfach/internal/admin"
	"github.com/postfach/postfach/internal/msgauth"
)

// The dkim commands (docs/sending.md, "DKIM").

func dkimKeygenFlags(fs *flag.FlagSet) {
	fs.String("selector", msgauth.DefaultSelector, "selector of the keys: they are SELECTOR"+msgauth.SuffixRSA+" and SELECTOR"+msgauth.SuffixEd25519)
}

// printDKIMRecord prints a key's DNS record as a zone file line.
func printDKIMRecord(w io.Writer, k *admin.DKIMKey) {
	if k.DNSName == "" {
		fmt.Fprintf(w, "; %s %s: %s\n", k.Domain, k.Selector, k.DNSValue)
		return
	}
	fmt.Fprintln(w, msgauth.Record{Name: k.DNSName, Value: k.DNSValue}.ZoneLine())
}

func cmdDKIMKeygen(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(e.stderr, "%s: want the domain\n", fs.Name())
		fs.Usage()
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	selector := fs.Lookup("selector").Value.String()
	return withAPI(e, cfg, func(api admin.API) int {
		keys, err := api.DKIMKeygen(ctx, args[0], selector)
		if err != nil {
			fmt.Fprintln(e.stderr, "postfach:", err)
			return exitError
		}
		fmt.Fprintf(e.stdout, "; DKIM keys of %s made; mail from %s is signed with them from now on.\n", keys[0].Domain, keys[0].Domain)
		fmt.Fprintf(e.stdout, "; Publish these TXT records in the DNS of %s:\n", keys[0].Domain)
		for i := range keys {
			printDKIMRecord(e.stdout, &keys[i])
		}
		return exitOK
	})
}

func cmdDKIMList(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) > 1 {
		fmt.Fprintf(e.stderr, "%s: wrong number of arguments\n", fs.Name())
		fs.Usage()
		return exitUsage
	}
	domain := ""
	if len(args) == 1 {
		domain = args[0]
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		keys, err := api.DKIMList(ctx, domain)
		if err != nil {
			fmt.Fprintln(e.stderr, "postfach:", err)
			return exitError
		}
		for i := range keys {
			k := &keys[i]
			fmt.Fprintf(e.stdout, "; %s selector %s, %s, made %s\n", k.Domain, k.Selector, k.Algorithm, k.Created.UTC().Format("2006-01-02 15:04:05 UTC"))
			printDKIMRecord(e.stdout, k)
		}
		return exitOK
	})
}

func cmdDKIMDelete(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) != 2 {
		fmt.Fprintf(e.stderr, "%s: want the domain and the selector\n", fs.Name())
		fs.Usage()
		return exitUsage
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	return withAPI(e, cfg, func(api admin.API) int {
		keys, err := api.DKIMDelete(ctx, args[0], args[1])
		if err != nil {
			fmt.Fprintln(e.stderr, "postfach:", err)
			return exitError
		}
		for _, k := range keys {
			fmt.Fprintf(e.stdout, "dkim key %s selector %s (%s) deleted; its TXT record %s._domainkey.%s can go\n", k.Domain, k.Selector, k.Algorithm, k.Selector, k.Domain)
		}
		return exitOK
	})
}
