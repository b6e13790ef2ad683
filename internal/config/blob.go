package config

import (
	"net/url"
	"os"
	"slices"
	"strings"
)

// BlobBackends lists the values of blob.backend.
var BlobBackends = []string{"file", "s3"}

// Blob configures where message bodies are kept ([blob], issue 18): in
// files under data_dir (the default), or in an S3-compatible bucket.
type Blob struct {
	// Backend is "file" or "s3".
	Backend string `toml:"backend"`
	// Endpoint is the S3 service's URL, "https://host[:port]".
	Endpoint string `toml:"endpoint"`
	// Bucket must exist; postfach does not create it.
	Bucket string `toml:"bucket"`
	// Region is the bucket's region; "" asks the service.
	Region string `toml:"region"`
	// AccessKey and SecretKey sign the requests; both empty means the
	// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables.
	// Never logged.
	AccessKey string `toml:"access_key"`
	SecretKey string `toml:"secret_key"`
}

// Credentials returns the S3 keys: blob.access_key and blob.secret_key,
// or when both are empty the standard AWS environment variables.
func (b Blob) Credentials() (accessKey, secretKey string) {
	if b.AccessKey != "" || b.SecretKey != "" {
		return b.AccessKey, b.SecretKey
	}
	return os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
}

// validateBlob checks [blob]. Messages never quote a key or a secret.
func (c *Config) validateBlob(bad func(key, format string, args ...any)) {
	b := c.Blob
	if !slices.Contains(BlobBackends, b.Backend) {
		bad("blob.backend", "%q is not one of %s", b.Backend, strings.Join(BlobBackends, ", "))
		return
	}
	if b.Backend == "file" {
		for _, k := range []struct{ key, v string }{
			{"blob.endpoint", b.Endpoint}, {"blob.bucket", b.Bucket}, {"blob.region", b.Region},
			{"blob.access_key", b.AccessKey}, {"blob.secret_key", b.SecretKey},
		} {
			if k.v != "" {
				bad(k.key, "is set, but blob.backend is \"file\" (set blob.backend = \"s3\" to use it)")
			}
		}
		return
	}
	if b.Endpoint == "" {
		bad("blob.endpoint", "is needed with blob.backend = \"s3\" (example: \"https://s3.eu-west-1.amazonaws.com\")")
	} else if msg := checkEndpoint(b.Endpoint); msg != "" {
		bad("blob.endpoint", "%s (example: \"https://s3.eu-west-1.amazonaws.com\")", msg)
	}
	if b.Bucket == "" {
		bad("blob.bucket", "is needed with blob.backend = \"s3\"")
	} else if !validBucket(b.Bucket) {
		bad("blob.bucket", "%q is not a bucket name (3 to 63 lower-case letters, digits, dots and hyphens)", b.Bucket)
	}
	switch {
	case (b.AccessKey == "") != (b.SecretKey == ""):
		bad("blob.access_key", "blob.access_key and blob.secret_key must both be set, or both be empty "+
			"(then AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are used)")
	case b.AccessKey == "":
		if a, s := b.Credentials(); a == "" || s == "" {
			bad("blob.access_key", "blob.access_key and blob.secret_key are not set, "+
				"and AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both in the environment")
		}
	}
}

// checkEndpoint returns what is wrong with an endpoint URL, or "". The
// URL is shown without any password in it.
func checkEndpoint(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "is not a URL"
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return "\"" + u.Redacted() + "\" must begin with https:// (or http://)"
	case u.Hostname() == "":
		return "\"" + u.Redacted() + "\" has no host"
	case u.User != nil:
		return "\"" + u.Redacted() + "\" must not hold credentials (use blob.access_key and blob.secret_key)"
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return "\"" + u.Redacted() + "\" must have no path (the bucket is blob.bucket)"
	}
	return ""
}

// validBucket: the S3 bucket naming rules that matter for a request.
func validBucket(s string) bool {
	if len(s) < 3 || len(s) > 63 || s[0] == '.' || s[0] == '-' || s[len(s)-1] == '.' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return !strings.Contains(s, "..")
}
