package admin

import (
	"errors"
	"fmt"
	"testing"

	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/store"
)

func TestErrorCodesRoundTrip(t *testing.T) {
	for _, c := range codes {
		err := fmt.Errorf("context: %w", c.err)
		code := ErrorCode(err)
		if code != c.code {
			t.Errorf("ErrorCode(%v) = %q, want %q", err, code, c.code)
		}
		back := ErrorFromCode(err.Error(), code)
		if !errors.Is(back, c.err) || back.Error() != err.Error() {
			t.Errorf("round trip of %q: %v", c.code, back)
		}
		for _, other := range codes {
			if other.code != c.code && errors.Is(back, other.err) {
				t.Errorf("%q also matches %q", c.code, other.code)
			}
		}
	}
	if ErrorCode(nil) != "" || ErrorFromCode("x", "") != nil {
		t.Error("nil handling")
	}
	if ErrorCode(errors.New("boom")) != "error" {
		t.Error("plain error")
	}
	if errors.Is(ErrorFromCode("boom", "error"), store.ErrNotFound) || errors.Is(ErrorFromCode("x", "unknown_user"), delivery.ErrNotLocal) {
		t.Error("spurious match")
	}
}

func TestValidName(t *testing.T) {
	for name, ok := range map[string]bool{
		"alice@example.org": true, "Alice@Example.ORG": true, "alice": false, "a b@example.org": false,
		"alice+x@example.org": false, "alice#phone@example.org": false, "@example.org": false,
	} {
		if err := validName(name); (err == nil) != ok {
			t.Errorf("validName(%q) = %v", name, err)
		}
	}
}
