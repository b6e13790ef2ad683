// Package s3test gives tests an S3 service to run on: a fresh bucket on
// the server named by the environment (.ci/versitygw starts one and
// prints the variables):
//
//	POSTFACH_TEST_S3_ENDPOINT    http://127.0.0.1:PORT
//	POSTFACH_TEST_S3_ACCESS_KEY
//	POSTFACH_TEST_S3_SECRET_KEY
//
// Without them a test skips with a message saying so, except under
// POSTFACH_REQUIRE_TOOLS=1 (CI), where it fails.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/postfach/postfach/internal/blob/s3"
)

// Server returns the endpoint and credentials of the test S3 service, or
// skips (fails under POSTFACH_REQUIRE_TOOLS=1) when none is set.
func Server(t testing.TB) (endpoint, accessKey, secretKey string) {
	t.Helper()
	endpoint = os.Getenv("POSTFACH_TEST_S3_ENDPOINT")
	accessKey = os.Getenv("POSTFACH_TEST_S3_ACCESS_KEY")
	secretKey = os.Getenv("POSTFACH_TEST_S3_SECRET_KEY")
	if endpoint != "" && accessKey != "" && secretKey != "" {
		return endpoint, accessKey, secretKey
	}
	const msg = "no S3 server: set POSTFACH_TEST_S3_ENDPOINT, POSTFACH_TEST_S3_ACCESS_KEY and POSTFACH_TEST_S3_SECRET_KEY (eval \"$(.ci/versitygw start)\" starts one)"
	if os.Getenv("POSTFACH_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg + " and POSTFACH_REQUIRE_TOOLS=1")
	}
	t.Skip(msg)
	return "", "", ""
}

// Client returns a minio client for the test service, for checks that
// look at the bucket behind the driver's back.
func Client(t testing.TB) *minio.Client {
	t.Helper()
	endpoint, access, secret := Server(t)
	host, secure, err := s3.ParseEndpoint(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(host, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), Secure: secure})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Bucket creates an empty bucket for this test, removed with its content
// when the test ends, and returns the driver options for it.
func Bucket(t testing.TB) s3.Options {
	t.Helper()
	endpoint, access, secret := Server(t)
	c := Client(t)
	var rnd [8]byte
	rand.Read(rnd[:])
	name := "postfach-test-" + hex.EncodeToString(rnd[:])
	ctx := context.Background()
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("create test bucket: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for obj := range c.ListObjects(ctx, name, minio.ListObjectsOptions{Recursive: true}) {
			if obj.Err == nil {
				c.RemoveObject(ctx, name, obj.Key, minio.RemoveObjectOptions{})
			}
		}
		for up := range c.ListIncompleteUploads(ctx, name, "", true) {
			if up.Err == nil {
				c.RemoveIncompleteUpload(ctx, name, up.Key)
			}
		}
		if err := c.RemoveBucket(ctx, name); err != nil {
			t.Logf("remove test bucket %s: %v", name, err)
		}
	})
	return s3.Options{Endpoint: endpoint, Bucket: name, AccessKey: access, SecretKey: secret}
}
