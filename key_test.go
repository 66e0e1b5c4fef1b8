package laburen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/davecgh/go-spew/spew"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKeyOnlyToItsOrigin: the API key goes only to the base URL's scheme, host and port. A
// redirect to another port of the same host is followed without it, and the error says so; a
// chain that leaves the origin and comes back does not get it back; a redirect from https to
// http is refused. The caller's http.Client is left as it was.
func TestKeyOnlyToItsOrigin(t *testing.T) {
	var mu sync.Mutex
	auths := map[string]string{} // server name -> Authorization it got
	recorder := func(name string, status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			auths[name] = r.Header.Get("Authorization")
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, `{"error":"UNAUTHORIZED","answer":"Hello"}`)
		}
	}
	otherPort := httptest.NewServer(recorder("other port", http.StatusUnauthorized))
	defer otherPort.Close()
	plain := httptest.NewServer(recorder("plain http", http.StatusOK))
	defer plain.Close()
	redirector := func(to string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			auths["origin"] = r.Header.Get("Authorization")
			mu.Unlock()
			http.Redirect(w, r, to+r.URL.Path, http.StatusTemporaryRedirect)
		}
	}
	api := httptest.NewServer(redirector(otherPort.URL))
	defer api.Close()
	// https://127.0.0.1:A redirects (308) to http://127.0.0.1:B: same host, clear text.
	tlsAPI := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths["origin"] = r.Header.Get("Authorization")
		mu.Unlock()
		http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusPermanentRedirect)
	}))
	defer tlsAPI.Close()

	t.Run("307 to another port", func(t *testing.T) {
		hc := &http.Client{}
		c, err := NewClient(WithBaseURL(api.URL), WithAPIKey(testKey), WithHTTPClient(hc), WithMaxRetries(0))
		require.NoError(t, err)
		_, err = c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrUnauthorized)
		u, _ := url.Parse(api.URL)
		assert.Contains(t, err.Error(), "redirected to "+otherPort.URL+"/agents/a/query, without the API key: it is sent only to http://"+u.Host)
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, "Bearer "+testKey, auths["origin"])
		assert.Empty(t, auths["other port"], "the key went to another port")
		assert.Nil(t, hc.CheckRedirect, "the caller's client is not changed")
	})
	t.Run("308 from https to http", func(t *testing.T) {
		c, err := NewClient(WithBaseURL(tlsAPI.URL), WithAPIKey(testKey), WithHTTPClient(tlsAPI.Client()), WithMaxRetries(0))
		require.NoError(t, err)
		_, err = c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
		assert.ErrorIs(t, err, errDowngrade, "the redirect is refused: the message would go in clear text")
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, "Bearer "+testKey, auths["origin"])
		_, reached := auths["plain http"]
		assert.False(t, reached, "the request went out in clear text")
	})
	t.Run("307 away and back", func(t *testing.T) {
		// The origin sends the request to another port, which sends it back to a path of the
		// origin it chose: the key stays off the chain.
		var paths []string
		var back *httptest.Server
		away := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, back.URL+"/chosen", http.StatusTemporaryRedirect)
		}))
		defer away.Close()
		back = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			paths = append(paths, r.URL.Path+" key="+fmt.Sprint(r.Header.Get("Authorization") != ""))
			mu.Unlock()
			if r.URL.Path == "/chosen" {
				io.WriteString(w, `{"answer":"Hello"}`)
				return
			}
			http.Redirect(w, r, away.URL+"/x", http.StatusTemporaryRedirect)
		}))
		defer back.Close()
		c, err := NewClient(WithBaseURL(back.URL), WithAPIKey(testKey), WithMaxRetries(0))
		require.NoError(t, err)
		_, err = c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
		require.NoError(t, err)
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, []string{"/agents/a/query key=true", "/chosen key=false"}, paths)
	})
	t.Run("the caller's CheckRedirect still decides", func(t *testing.T) {
		var hops int
		hc := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
			hops++
			assert.Empty(t, req.Header.Get("Authorization"), "the caller's rule sees the hop without the key")
			return http.ErrUseLastResponse
		}}
		c, err := NewClient(WithBaseURL(api.URL), WithAPIKey(testKey), WithHTTPClient(hc), WithMaxRetries(0))
		require.NoError(t, err)
		_, err = c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
		assert.ErrorContains(t, err, "HTTP 307")
		assert.Equal(t, 1, hops)
	})
}

// TestSameOrigin compares scheme, host and port, with the default ports.
func TestSameOrigin(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"https://api.test/x", "https://api.test/y", true},
		{"https://api.test/x", "https://API.test:443/y", true},
		{"http://api.test/x", "http://api.test:80/y", true},
		{"https://api.test/x", "http://api.test/x", false},
		{"http://127.0.0.1:8080/x", "http://127.0.0.1:8081/x", false},
		{"https://api.test/x", "https://evil.api.test/x", false},
		{"https://api.test/x", "https://api.test:8443/x", false},
	}
	for _, tt := range tests {
		a, err := url.Parse(tt.a)
		require.NoError(t, err)
		b, err := url.Parse(tt.b)
		require.NoError(t, err)
		assert.Equal(t, tt.want, sameOrigin(a, b), "%s %s", tt.a, tt.b)
	}
}

// TestPrintersNeverReachTheKey: after a call, reflection printers walking a *Client or an open
// *Stream (testify's diffs, go-spew with its default and common settings, fmt) never reach the
// API key: not in the client's options, nor in the requests, nor in the buffers of the
// connections the transport keeps.
func TestPrintersNeverReachTheKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "stream") || r.Header.Get("Accept") == "text/event-stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: answer\ndata: Hel\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"answer":"Hello"}`)
	}))
	defer srv.Close()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	for _, name := range []string{"default client", "own client"} {
		t.Run(name, func(t *testing.T) {
			opts := []Option{WithBaseURL(srv.URL), WithAPIKey(testKey)}
			if name == "own client" {
				opts = append(opts, WithHTTPClient(&http.Client{Transport: tr}))
			}
			c, err := NewClient(opts...)
			require.NoError(t, err)
			_, err = c.Query(ctx, "a", QueryRequest{Query: "Hi"})
			require.NoError(t, err)
			st, err := c.QueryStream(ctx, "a", QueryRequest{Query: "Hi"})
			require.NoError(t, err)
			defer st.Close()
			require.True(t, st.Next())

			spewWith := func(cfg spew.ConfigState) func(v any) string {
				return func(v any) string { return cfg.Sdump(v) }
			}
			printers := map[string]func(v any) string{
				"spew default":         spewWith(spew.ConfigState{Indent: " "}),
				"spew without methods": spewWith(spew.ConfigState{Indent: " ", DisableMethods: true}),
				"spew as testify":      spewWith(spew.ConfigState{Indent: " ", DisablePointerAddresses: true, DisableCapacities: true, SortKeys: true, DisableMethods: true, MaxDepth: 10}),
				"spew past methods":    spewWith(spew.ConfigState{ContinueOnMethod: true}),
				"fmt %+v":              func(v any) string { return fmt.Sprintf("%+v", v) },
				"testify diff": func(v any) string {
					var diff capturedFailure
					assert.Equal(&diff, struct{ V any }{}, struct{ V any }{v})
					return strings.Join(diff.msgs, "\n")
				},
			}
			for pname, print := range printers {
				for vname, v := range map[string]any{"client": c, "stream": st} {
					out := print(v)
					assert.NotEmpty(t, out)
					assert.NotContains(t, out, testKey[3:], "%s of the %s", pname, vname)
				}
			}
		})
	}
}

// TestEchoedKeyIsRedacted: a server that quotes the key in an error body does not get it shown
// in APIError's Message, Body or Error().
func TestEchoedKeyIsRedacted(t *testing.T) {
	tests := []struct{ name, contentType, body string }{
		{"JSON message", "application/json", `{"error":{"code":"UNAUTHORIZED","message":"key ` + testKey + ` is revoked"}}`},
		{"plain text", "text/plain", "invalid key: Bearer " + testKey},
		{"code", "application/json", `{"error":"` + strings.ReplaceAll(testKey, "-", "_") + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := testKey
			if tt.name == "code" {
				key = strings.ReplaceAll(testKey, "-", "_")
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c, err := NewClient(WithBaseURL(srv.URL), WithAPIKey(key))
			require.NoError(t, err)
			_, err = c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			for what, s := range map[string]string{"Code": apiErr.Code, "Message": apiErr.Message, "Body": apiErr.Body, "Error()": err.Error()} {
				assert.NotContains(t, s, key[3:], what)
			}
			assert.Contains(t, apiErr.Body+apiErr.Message+apiErr.Code, "[redacted]")
		})
	}
}

// TestEchoedKeyIsRedactedEverywhere: a key the server sends back is hidden wherever an error
// shows server text: an [ERROR] event (its code and message, and the Observer's error type), the
// start of a 200 body that is not an event stream or not JSON, an endpoint_response that does
// not decode, and an error body whose cap cuts through the key.
func TestEchoedKeyIsRedactedEverywhere(t *testing.T) {
	key := strings.ReplaceAll(testKey, "-", "_") // a key that reads as an error code
	tests := []struct {
		name, contentType, body string
		status                  int
		stream                  bool
	}{
		{"[ERROR] code", "text/event-stream", "data: [ERROR]" + key + "\n\n", 200, true},
		{"[ERROR] message", "text/event-stream", "data: [ERROR]bad key " + key + "\n\n", 200, true},
		{"not an event stream", "text/plain", "your key " + key, 200, true},
		{"bad endpoint_response", "text/event-stream", "event: endpoint_response\ndata: {" + key + "\n\n", 200, true},
		{"not JSON", "text/plain", "your key " + key, 200, false},
		{"key cut by the cap", "text/plain", strings.Repeat("x", maxErrorBody-9) + key, 401, false},
		// Text is redacted, then cut: a cut never leaves a start of the key in view.
		{"not JSON, key across the shown start", "text/plain", strings.Repeat("x", 190) + key, 200, false},
		{"not an event stream, key across the shown start", "text/html", strings.Repeat("x", 190) + key, 200, true},
		{"plain error, key across the shown start", "text/plain", strings.Repeat("x", 290) + key, 500, false},
		{"HTML error, key across the shown start", "text/html", "<p>" + strings.Repeat("x", 190) + key, 500, false},
		{"bad endpoint_response, key across the shown start", "text/event-stream",
			"event: endpoint_response\ndata: {" + strings.Repeat("x", 190) + key + "\n\n", 200, true},
		// Each earlier echo, replaced by the shorter [redacted], brings the end of what was read,
		// a key cut by the cap on reading, into the 64 KiB kept.
		{"echoes before a key cut by the cap", "text/plain", strings.Repeat(key+" ", 20) +
			strings.Repeat("x", maxErrorBody+1-20*(len(key)+1)) + key, 401, false},
		// JSON escapes spell the key: the decoded message is redacted, the body withheld.
		{"JSON-escaped echo", "application/json",
			`{"error":"UNAUTHORIZED","message":"bad key ` + strings.ReplaceAll(key, "_", `\u005f`) + `"}`, 401, false},
		{"JSON-escaped echo in plain text", "text/plain", "bad key " + strings.ReplaceAll(key, "_", `\u005F`), 401, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			var errorType string
			c, err := NewClient(WithBaseURL(srv.URL), WithAPIKey(key), WithMaxRetries(0),
				WithObserver(Observer{End: func(_ context.Context, _ Call, e CallEnd) { errorType = e.ErrorType }}))
			require.NoError(t, err)
			if tt.stream {
				var st *Stream
				if st, err = c.QueryStream(context.Background(), "a", QueryRequest{Query: "Hi"}); err == nil {
					_, err = st.Final()
				}
			} else {
				_, err = c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
			}
			require.Error(t, err)
			shown := []string{err.Error(), errorType}
			var apiErr *APIError
			if errors.As(err, &apiErr) {
				shown = append(shown, apiErr.Code, apiErr.Message, apiErr.Body)
			}
			for _, s := range shown {
				assert.NotContains(t, s, key[:8])
				assert.NotContains(t, s, key[8:])
			}
		})
	}
}

// TestEchoedKeyInHeadersIsRedacted: a key that the server puts in a response header, such as
// the request ID, is redacted in the error's text, its RequestID and Header (and what printers
// show of them), for an error status and for an [ERROR] event; so in the headers an open Stream
// keeps.
func TestEchoedKeyInHeadersIsRedacted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", r.Header.Get("Authorization"))
		w.Header().Add("X-Debug", "ok")
		w.Header().Add("X-Debug", "key="+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")+"; cut="+testKey[:12])
		if r.Header.Get("Accept") != "text/event-stream" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: answer\ndata: Hel\n\ndata: [ERROR]USAGE_LIMIT\n\n")
	}))
	defer srv.Close()
	c, err := NewClient(WithBaseURL(srv.URL), WithAPIKey(testKey), WithMaxRetries(0))
	require.NoError(t, err)
	check := func(t *testing.T, err error) {
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, "Bearer [redacted]", apiErr.RequestID)
		assert.Equal(t, []string{"ok", "key=[redacted]; cut="}, apiErr.Header.Values("X-Debug"))
		for _, s := range []string{err.Error(), spew.Sdump(err), fmt.Sprintf("%+v", apiErr)} {
			assert.NotContains(t, s, testKey[:8])
		}
	}
	t.Run("error status", func(t *testing.T) {
		_, err := c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
		check(t, err)
		assert.ErrorContains(t, err, "request ID Bearer [redacted]")
	})
	t.Run("[ERROR] event", func(t *testing.T) {
		st, err := c.QueryStream(context.Background(), "a", QueryRequest{Query: "Hi"})
		require.NoError(t, err)
		defer st.Close()
		require.True(t, st.Next())
		assert.NotContains(t, spew.Sdump(st), testKey[:8], "the stream's headers")
		_, err = st.Final()
		assert.ErrorIs(t, err, ErrUsageLimit)
		check(t, err)
	})
}

// TestBaseURLUserInfoNeverShown: a base URL with user info is refused, and no part of the user
// info appears in the error, even where a password holds characters that end the authority.
func TestBaseURLUserInfoNeverShown(t *testing.T) {
	for _, base := range []string{
		"https://admin:hun/ter2@api.test/api",
		"https://admin:1234/ter2@api.test/api",
		"https://admin:1234?x@api.test/api",
		"https://admin:p4#ss@api.test/api",
		"https://admin:s3cr3t@api.test/api",
		"https://admin@api.test/api",
		"http://admin:s3cr3t@/api",
		"https://admin:s3cr3t@api.test/%zz",
	} {
		t.Run(base, func(t *testing.T) {
			for _, setup := range []func() (*Client, error){
				func() (*Client, error) { return NewClient(WithBaseURL(base)) },
				func() (*Client, error) { t.Setenv("LABUREN_BASE_URL", base); return NewClient() },
			} {
				_, err := setup()
				require.Error(t, err)
				assert.Contains(t, err.Error(), "must not carry user info")
				for _, part := range []string{"admin", "hun", "ter2", "1234", "p4", "s3cr3t"} {
					assert.NotContains(t, err.Error(), part)
				}
			}
		})
	}
}

// TestRetryAfterPastTheDeadline: a 429 whose Retry-After cannot end before the context's
// deadline is returned at once, with its RetryAfter, instead of a deadline error after a wait.
func TestRetryAfterPastTheDeadline(t *testing.T) {
	srv, calls := retryServer(t, status(429, "Retry-After", "30"))
	var attempts []Attempt
	c, err := NewClient(WithBaseURL(srv.URL), WithAPIKey(testKey),
		WithObserver(Observer{Attempt: func(_ context.Context, _ Call, a Attempt) { attempts = append(attempts, a) }}))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = c.Query(ctx, "a", QueryRequest{Query: "Hi"})
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.ErrorIs(t, err, ErrRateLimited)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 30*time.Second, apiErr.RetryAfter)
	assert.Equal(t, int64(1), calls.Load())
	assert.NoError(t, ctx.Err(), "returned before the deadline, without waiting")
	require.Len(t, attempts, 1, "the Observer sees the attempt")
	assert.Equal(t, 429, attempts[0].StatusCode)
	assert.Negative(t, attempts[0].RetryWait, "no attempt follows")
}

// TestQueryBodyIdleBound: a server that sends the headers and then stalls, or trickles the
// body (less than a KiB in the idle bound, even with each byte well within it), fails Query
// with an error naming the option; the same for an error body. A body that arrives in pieces
// within the bound is read whole.
func TestQueryBodyIdleBound(t *testing.T) {
	const idle = 150 * time.Millisecond
	body := `{"answer":"Hello"}`
	tests := []struct {
		name    string
		status  int
		gap     time.Duration // between two bytes of the body; -1: stall after the headers
		wantErr bool
	}{
		{"stalled", 200, -1, true},
		{"trickling slower than the bound", 200, 3 * idle, true},
		{"trickling, each byte within the bound", 200, idle / 3, true},
		{"stalled error body", 500, -1, true},
		{"in pieces within the bound", 200, time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				w.(http.Flusher).Flush()
				if tt.gap < 0 {
					<-r.Context().Done()
					return
				}
				for i := range len(body) {
					io.WriteString(w, body[i:i+1])
					w.(http.Flusher).Flush()
					select {
					case <-time.After(tt.gap):
					case <-r.Context().Done():
						return
					}
				}
			}))
			defer srv.Close()
			c, err := NewClient(WithBaseURL(srv.URL), WithStreamIdleTimeout(idle), WithMaxRetries(0))
			require.NoError(t, err)
			done := make(chan error, 1)
			go func() {
				_, err := c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
				done <- err
			}()
			select {
			case err := <-done:
				if !tt.wantErr {
					assert.NoError(t, err)
					return
				}
				require.Error(t, err)
				if tt.status == 200 {
					assert.ErrorContains(t, err, "WithStreamIdleTimeout")
					assert.ErrorIs(t, err, context.DeadlineExceeded)
				} else {
					assert.ErrorIs(t, err, ErrServer, "the status is reported even when its body stalls")
				}
			case <-time.After(10 * time.Second):
				srv.CloseClientConnections()
				t.Fatal("Query did not return")
			}
		})
	}
}

// TestNotEventStreamIdleBound: a 2xx that is neither an event stream nor JSON and stalls after
// its first bytes fails QueryStream once the idle bound passes, with what came of the body.
func TestNotEventStreamIdleBound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<ht")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	c, err := NewClient(WithBaseURL(srv.URL), WithStreamIdleTimeout(100*time.Millisecond))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := c.QueryStream(context.Background(), "a", QueryRequest{Query: "Hi"})
		done <- err
	}()
	select {
	case err := <-done:
		assert.ErrorContains(t, err, `is not an event stream; body starts "<ht"`)
	case <-time.After(10 * time.Second):
		srv.CloseClientConnections()
		t.Fatal("QueryStream did not return")
	}
}
