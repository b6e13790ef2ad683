package config

import (
	"strings"
	"testing"
)

// TestBlobValidation: incomplete or contradictory [blob] settings are
// refused with a message that names the key and says what to do, and no
// message quotes a secret.
func TestBlobValidation(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	const good = "[blob]\nbackend = \"s3\"\nendpoint = \"https://s3.example.org\"\nbucket = \"mail-bodies\"\n"
	for _, c := range []struct {
		name, toml, want string
	}{
		{"unknown backend", "[blob]\nbackend = \"ftp\"\n", `blob.backend: "ftp" is not one of file, s3`},
		{"no endpoint", "[blob]\nbackend = \"s3\"\nbucket = \"b12\"\naccess_key = \"AK\"\nsecret_key = \"hunter2\"\n", "blob.endpoint: is needed"},
		{"no bucket", "[blob]\nbackend = \"s3\"\nendpoint = \"https://s3.example.org\"\naccess_key = \"AK\"\nsecret_key = \"hunter2\"\n", "blob.bucket: is needed"},
		{"bad bucket", "[blob]\nbackend = \"s3\"\nendpoint = \"https://s3.example.org\"\nbucket = \"Mail_Bodies\"\naccess_key = \"AK\"\nsecret_key = \"hunter2\"\n", "is not a bucket name"},
		{"endpoint without scheme", "[blob]\nbackend = \"s3\"\nendpoint = \"s3.example.org\"\nbucket = \"b12\"\naccess_key = \"AK\"\nsecret_key = \"hunter2\"\n", "must begin with https://"},
		{"endpoint with path", "[blob]\nbackend = \"s3\"\nendpoint = \"https://s3.example.org/b12\"\nbucket = \"b12\"\naccess_key = \"AK\"\nsecret_key = \"hunter2\"\n", "must have no path"},
		{"endpoint with password", "[blob]\nbackend = \"s3\"\nendpoint = \"https://AK:hunter2@s3.example.org\"\nbucket = \"b12\"\n", "must not hold credentials"},
		{"access key only", good + "access_key = \"AK\"\n", "must both be set, or both be empty"},
		{"secret key only", good + "secret_key = \"hunter2\"\n", "must both be set, or both be empty"},
		{"no keys anywhere", good, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both in the environment"},
		{"s3 keys with file", "[blob]\nbucket = \"b12\"\nsecret_key = \"hunter2\"\n", `blob.bucket: is set, but blob.backend is "file"`},
	} {
		_, err := Parse("test.toml", []byte(c.toml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the secret: %v", c.name, err)
		}
	}
	for _, ok := range []string{
		"",
		"[blob]\nbackend = \"file\"\n",
		good + "access_key = \"AK\"\nsecret_key = \"hunter2\"\nregion = \"eu-west-1\"\n",
		"[blob]\nbackend = \"s3\"\nendpoint = \"http://127.0.0.1:7070/\"\nbucket = \"b12\"\naccess_key = \"AK\"\nsecret_key = \"hunter2\"\n",
	} {
		if _, err := Parse("test.toml", []byte(ok)); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	// The keys may come from the environment.
	t.Setenv("AWS_ACCESS_KEY_ID", "AK")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
	c, err := Parse("test.toml", []byte(good))
	if err != nil {
		t.Fatalf("keys from the environment refused: %v", err)
	}
	if a, s := c.Blob.Credentials(); a != "AK" || s != "hunter2" {
		t.Fatalf("Credentials() = %q, %q", a, s)
	}
}
