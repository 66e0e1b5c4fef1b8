package laburen

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// testKey is the API key of the tests; no error, log line or printed value may contain it.
const testKey = "sk-test-9f8e7d6c5b4a"

const mockBase = "https://api.laburen.test/api"

// captured is one request as a mock transport received it.
type captured struct {
	Method string
	Path   string // escaped
	Header http.Header
	Body   []byte
}

// mockServer answers every request with a fixed status and body, and keeps what it received.
type mockServer struct {
	mu       sync.Mutex
	requests []captured
}

func (m *mockServer) all() []captured {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]captured(nil), m.requests...)
}

// newMockClient returns a client whose requests go to an httpmock transport that answers every
// request with status and body (as JSON). Nothing reaches the network.
func newMockClient(t *testing.T, status int, body string, opts ...Option) (*Client, *mockServer) {
	t.Helper()
	return newMockClientWith(t, func(*http.Request) (*http.Response, error) {
		res := httpmock.NewStringResponse(status, body)
		res.Header.Set("Content-Type", "application/json")
		return res, nil
	}, opts...)
}

func newMockClientWith(t *testing.T, respond httpmock.Responder, opts ...Option) (*Client, *mockServer) {
	t.Helper()
	m := &mockServer{}
	mt := httpmock.NewMockTransport()
	mt.RegisterNoResponder(func(r *http.Request) (*http.Response, error) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		m.mu.Lock()
		m.requests = append(m.requests, captured{Method: r.Method, Path: r.URL.EscapedPath(), Header: r.Header.Clone(), Body: body})
		m.mu.Unlock()
		return respond(r)
	})
	base := []Option{
		WithBaseURL(mockBase), WithAPIKey(testKey), WithHTTPClient(&http.Client{Transport: mt}),
		withSleep(func(context.Context, time.Duration) error { return nil }),
	}
	c, err := NewClient(append(base, opts...)...)
	require.NoError(t, err)
	return c, m
}

// withSleep replaces the wait between attempts, so that tests see the waits without spending
// them.
func withSleep(f func(context.Context, time.Duration) error) Option {
	return func(c *config) error {
		c.sleep = f
		return nil
	}
}

// assertGolden compares a JSON body with testdata/golden/name.json (rewritten with -update).
func assertGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		var v any
		require.NoError(t, json.Unmarshal(got, &v))
		pretty, err := json.MarshalIndent(v, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, append(pretty, '\n'), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing: run go test -run %s -update", t.Name())
	assert.JSONEq(t, string(want), string(got), "request body differs from %s", path)
}

// sentinels are the package's error classes, for tests that check an error matches exactly
// the expected ones.
var sentinels = map[string]error{
	"ErrUnauthorized":    ErrUnauthorized,
	"ErrUsageLimit":      ErrUsageLimit,
	"ErrNotFound":        ErrNotFound,
	"ErrRateLimited":     ErrRateLimited,
	"ErrInvalidRequest":  ErrInvalidRequest,
	"ErrServer":          ErrServer,
	"ErrStreamTruncated": ErrStreamTruncated,
}
