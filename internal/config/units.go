package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Size is a byte count written in the config as an integer with an optional
// unit: "50MiB", "10MB", "512KiB", "1048576". Units are case-insensitive;
// KB/MB/GB are powers of 1000, KiB/MiB/GiB powers of 1024.
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
	{"b", 1},
}

// ParseSize parses a Size.
func ParseSize(s string) (Size, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			mult = u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q: want a number with an optional unit such as \"50MiB\"", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return Size(n * mult), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (z *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*z = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (z Size) MarshalText() ([]byte, error) { return []byte(z.String()), nil }

// String formats the size with the largest binary unit that divides it.
func (z Size) String() string {
	switch {
	case z != 0 && z%(1<<30) == 0:
		return strconv.FormatInt(int64(z)>>30, 10) + "GiB"
	case z != 0 && z%(1<<20) == 0:
		return strconv.FormatInt(int64(z)>>20, 10) + "MiB"
	case z != 0 && z%(1<<10) == 0:
		return strconv.FormatInt(int64(z)>>10, 10) + "KiB"
	}
	return strconv.FormatInt(int64(z), 10)
}

// Duration is a time span written as a Go duration string: "5m", "30s",
// "1h30m", or a whole number of days: "30d".
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	str := strings.TrimSpace(string(b))
	var v time.Duration
	var err error
	if days, ok := strings.CutSuffix(str, "d"); ok {
		var n int64
		n, err = strconv.ParseInt(days, 10, 32)
		v = time.Duration(n) * 24 * time.Hour
	} else {
		v, err = time.ParseDuration(str)
	}
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a duration such as \"5m\", \"30s\" or \"30d\"", string(b))
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: must not be negative", string(b))
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String formats the duration as Go does.
func (d Duration) String() string { return time.Duration(d).String() }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
