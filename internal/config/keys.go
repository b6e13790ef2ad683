package config

import (
	"bufio"
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Keys returns every config key in dotted form ("listen.imap"), in the order
// of the Config struct.
func Keys() []string {
	var out []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := f.Tag.Get("toml")
			if name == "" || name == "-" {
				continue
			}
			if f.Type.Kind() == reflect.Struct {
				walk(prefix+name+".", f.Type)
				continue
			}
			out = append(out, prefix+name)
		}
	}
	walk("", reflect.TypeFor[Config]())
	return out
}

// keyLine finds the line of a dotted key in TOML data, or 0. It understands
// the plain layout config files use ([table] headers, key = value, dotted
// keys), which is enough to point at the offending line; decode errors
// carry their own position.
func keyLine(data []byte, key string) int {
	if key == "" {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), len(data)+1)
	table := ""
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			t := strings.Trim(line, "[] \t")
			if i := strings.IndexByte(t, '#'); i >= 0 {
				t = strings.TrimSpace(strings.Trim(t[:i], "[] \t"))
			}
			table = unquoteKey(t)
			if table == key {
				return n
			}
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		full := unquoteKey(strings.TrimSpace(k))
		if table != "" {
			full = table + "." + full
		}
		if full == key {
			return n
		}
	}
	return 0
}

func unquoteKey(k string) string {
	parts := strings.Split(k, ".")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := strconv.Unquote(p); err == nil {
			p = u
		} else {
			p = strings.Trim(p, "'")
		}
		parts[i] = p
	}
	return strings.Join(parts, ".")
}

// AccountSettings are the config keys an account may override with
// `postfach user set ADDRESS KEY VALUE`.
var AccountSettings = []string{"pop3.mark_seen", "pop3.hide_deleted", "pop3.delete", "pop3.device_views", "auth.require_device_passwords"}

// ValidateAccountSetting checks a per-account override. An empty value
// clears the override and is always valid for a known key.
func ValidateAccountSetting(key, value string) error {
	if !slices.Contains(AccountSettings, key) {
		return fmt.Errorf("unknown setting %q (settable: %s)", key, strings.Join(AccountSettings, ", "))
	}
	if value == "" {
		return nil
	}
	switch key {
	case "pop3.delete":
		if !slices.Contains(POP3DeleteModes, value) {
			return fmt.Errorf("%s: %q is not one of %s", key, value, strings.Join(POP3DeleteModes, ", "))
		}
	default:
		if _, err := strconv.ParseBool(value); err != nil || (value != "true" && value != "false") {
			return fmt.Errorf("%s: %q is not true or false", key, value)
		}
	}
	return nil
}
