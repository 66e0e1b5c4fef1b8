package laburen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAPIErrors(t *testing.T) {
	const (
		jsonCT = "application/json"
		textCT = "text/plain; charset=utf-8"
		htmlCT = "text/html"
	)
	bigBody := strings.Repeat("x", maxErrorBody+5000)
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		noKey       bool
		is          []string // sentinels the error must match; it must match no other
		code        string
		message     string
		text        string // Error() must contain it
	}{
		{"400 JSON code", 400, jsonCT, `{"error":"INVALID_REQUEST"}`, false,
			[]string{"ErrInvalidRequest"}, "INVALID_REQUEST", "", "HTTP 400 Bad Request: INVALID_REQUEST"},
		{"400 JSON sentence", 400, jsonCT, `{"error":"webhookUrl is not reachable"}`, false,
			[]string{"ErrInvalidRequest"}, "", "webhookUrl is not reachable", "HTTP 400 Bad Request: webhookUrl is not reachable"},
		{"401 with a key", 401, jsonCT, `{"error":"UNAUTHORIZED"}`, false,
			[]string{"ErrUnauthorized"}, "UNAUTHORIZED", "", "HTTP 401 Unauthorized: UNAUTHORIZED"},
		{"401 without a key says so", 401, jsonCT, `{"error":"UNAUTHORIZED"}`, true,
			[]string{"ErrUnauthorized"}, "UNAUTHORIZED", "", "no API key was configured"},
		{"403 without a key says so", 403, textCT, `Forbidden`, true,
			[]string{"ErrUnauthorized"}, "", "Forbidden", "no API key was configured"},
		{"403 upstream unauthorized", 403, jsonCT, `{"error":"UNAUTHORIZED"}`, false,
			[]string{"ErrUnauthorized"}, "UNAUTHORIZED", "", "HTTP 403 Forbidden: UNAUTHORIZED"},
		{"402 usage limit", 402, jsonCT, `{"error":"USAGE_LIMIT"}`, false,
			[]string{"ErrUsageLimit"}, "USAGE_LIMIT", "", "HTTP 402 Payment Required: USAGE_LIMIT"},
		{"402 as an SSE frame", 402, "text/event-stream", "data: [ERROR]USAGE_LIMIT\n\n", false,
			[]string{"ErrUsageLimit"}, "USAGE_LIMIT", "", "USAGE_LIMIT"},
		{"404 SSE frame without SSE content type", 404, textCT, "data: [ERROR]NOT_FOUND\n\n", false,
			[]string{"ErrNotFound"}, "NOT_FOUND", "", "HTTP 404 Not Found: NOT_FOUND"},
		{"404 SSE frame with CRLF and no space", 404, "", "event: error\r\ndata:[ERROR]Agent not found\r\n\r\n", false,
			[]string{"ErrNotFound"}, "", "Agent not found", "Agent not found"},
		{"404 plain text", 404, textCT, "404 page not found\n", false,
			[]string{"ErrNotFound"}, "", "404 page not found", "HTTP 404 Not Found: 404 page not found"},
		{"422 invalid", 422, jsonCT, `{"message":"query is required","code":"BAD_REQUEST"}`, false,
			[]string{"ErrInvalidRequest"}, "BAD_REQUEST", "query is required", "BAD_REQUEST: query is required"},
		{"429 rate limit", 429, jsonCT, `{"error":"RATE_LIMIT"}`, false,
			[]string{"ErrRateLimited"}, "RATE_LIMIT", "", "HTTP 429 Too Many Requests: RATE_LIMIT"},
		{"500 nested JSON keeps code and message", 500, jsonCT, `{"error":{"code":"INTERNAL_SERVER_ERROR","message":"db down"}}`, false,
			[]string{"ErrServer"}, "INTERNAL_SERVER_ERROR", "db down", "HTTP 500 Internal Server Error: INTERNAL_SERVER_ERROR: db down"},
		{"500 nested JSON with type", 500, jsonCT, `{"error":{"type":"server_error","message":"oops"}}`, false,
			[]string{"ErrServer"}, "server_error", "oops", "server_error: oops"},
		{"500 JSON error with a message beside it", 500, jsonCT, `{"error":"INTERNAL","message":"try later"}`, false,
			[]string{"ErrServer"}, "INTERNAL", "try later", "INTERNAL: try later"},
		{"500 JSON of another shape is shown", 500, jsonCT, `{"detail":"weird"}`, false,
			[]string{"ErrServer"}, "", `{"detail":"weird"}`, `{"detail":"weird"}`},
		{"500 invalid JSON is shown as text", 500, jsonCT, `{"error":`, false,
			[]string{"ErrServer"}, "", `{"error":`, `{"error":`},
		{"502 HTML from a proxy", 502, htmlCT, "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>", false,
			[]string{"ErrServer"}, "", "HTML error page: 502 Bad Gateway", "HTTP 502 Bad Gateway: HTML error page: 502 Bad Gateway"},
		{"503 HTML without title", 503, "", "<!DOCTYPE html>\n<html><body>\n  <h1>Service   Unavailable</h1>\n</body></html>", false,
			[]string{"ErrServer"}, "", "HTML error page: Service Unavailable", "Service Unavailable"},
		{"504 empty body", 504, "", "", false,
			[]string{"ErrServer"}, "", "", "HTTP 504 Gateway Timeout"},
		{"500 huge plain text is capped", 500, textCT, bigBody, false,
			[]string{"ErrServer"}, "", strings.Repeat("x", 300) + "...", "xxx..."},
		{"418 unknown status", 418, textCT, "teapot", false,
			nil, "", "teapot", "HTTP 418 I'm a teapot: teapot"},
		{"409 with a known code", 409, jsonCT, `{"error":"NOT_FOUND"}`, false,
			[]string{"ErrNotFound"}, "NOT_FOUND", "", "HTTP 409 Conflict: NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []Option{WithMaxRetries(0)}
			if tt.noKey {
				opts = append(opts, WithAPIKey(""))
			}
			c, srv := newMockClientWith(t, func(*http.Request) (*http.Response, error) {
				res := httpmock.NewStringResponse(tt.status, tt.body)
				if tt.contentType != "" {
					res.Header.Set("Content-Type", tt.contentType)
				}
				return res, nil
			}, opts...)
			res, err := c.Query(context.Background(), "agent-1", QueryRequest{Query: "Hi"})
			assert.Nil(t, res)
			require.Error(t, err)
			assert.Len(t, srv.all(), 1)

			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, tt.status, apiErr.StatusCode)
			assert.Equal(t, tt.code, apiErr.Code)
			assert.Equal(t, tt.message, apiErr.Message)
			assert.LessOrEqual(t, len(apiErr.Body), maxErrorBody)
			assert.Equal(t, tt.body[:min(len(tt.body), maxErrorBody)], apiErr.Body)
			assert.Contains(t, err.Error(), tt.text)
			assert.True(t, strings.HasPrefix(err.Error(), `laburen: query agent "agent-1": POST /api/agents/agent-1/query: HTTP `), err.Error())
			assert.Equal(t, tt.noKey, strings.Contains(err.Error(), "no API key"))
			for name, sentinel := range sentinels {
				want := false
				for _, s := range tt.is {
					want = want || s == name
				}
				assert.Equal(t, want, errors.Is(err, sentinel), "errors.Is(err, %s)", name)
			}
			for _, s := range []string{err.Error(), fmt.Sprintf("%v %+v %#v", err, err, apiErr)} {
				assert.NotContains(t, s, testKey)
			}
		})
	}
}

func TestUnexpectedSuccessBody(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		text                    string
	}{
		{"HTML page", "text/html", "<html><title>Login</title></html>", `HTTP 200, Content-Type "text/html"`},
		{"empty body", "application/json", "", "not a JSON object"},
		{"JSON array", "application/json", `[{"answer":"a"}]`, "not a JSON object"},
		{"truncated JSON", "application/json", `{"answer":"hel`, `body starts "{\"answer\":\"hel"`},
		{"answer of the wrong type", "application/json", `{"answer":42}`, "the answer is not a string"},
		{"SSE where JSON was expected", "text/event-stream", "event: answer\ndata: Hi\n\n", "event: answer"},
		{"long garbage is cut", "text/plain", strings.Repeat("ab", 1000), strings.Repeat("ab", 100) + `..."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := newMockClientWith(t, func(*http.Request) (*http.Response, error) {
				res := httpmock.NewStringResponse(http.StatusOK, tt.body)
				res.Header.Set("Content-Type", tt.contentType)
				return res, nil
			})
			res, err := c.Query(context.Background(), "a", QueryRequest{Query: "Hi"})
			assert.Nil(t, res)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "decode response (HTTP 200")
			assert.Contains(t, err.Error(), tt.text)
			assert.LessOrEqual(t, len(err.Error()), 600)
			assert.Len(t, srv.all(), 1, "a 2xx is never retried")
		})
	}
}

func TestAPIErrorMessage(t *testing.T) {
	tests := []struct {
		err  APIError
		want string
	}{
		{APIError{StatusCode: 402, Code: "USAGE_LIMIT"}, "HTTP 402 Payment Required: USAGE_LIMIT"},
		{APIError{StatusCode: 200, Code: "USAGE_LIMIT"}, "HTTP 200 OK: USAGE_LIMIT"},
		{APIError{StatusCode: 599, Message: "odd"}, "HTTP 599: odd"},
		{APIError{Code: "X", Message: "y"}, "X: y"},
		{APIError{StatusCode: 401, hint: "no key"}, "HTTP 401 Unauthorized (no key)"},
		{APIError{StatusCode: 404, Code: "NOT_FOUND", Method: "POST", Path: "/api/agents/x/query"},
			"POST /api/agents/x/query: HTTP 404 Not Found: NOT_FOUND"},
		{APIError{StatusCode: 503, Method: "POST", Path: "/q", Attempts: 3, RequestID: "r1", hint: "h"},
			"POST /q: HTTP 503 Service Unavailable (request ID r1; after 3 attempts; h)"},
		{APIError{StatusCode: 200, Code: "USAGE_LIMIT", Method: "POST", Path: "/q", inStream: true},
			"POST /q: stream error: USAGE_LIMIT"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.err.Error())
	}
}

func TestAPIErrorIsByCode(t *testing.T) {
	tests := []struct {
		code string
		is   error
	}{
		{"UNAUTHORIZED", ErrUnauthorized},
		{"FORBIDDEN", ErrUnauthorized},
		{"USAGE_LIMIT", ErrUsageLimit},
		{"NOT_FOUND", ErrNotFound},
		{"RATE_LIMIT", ErrRateLimited},
		{"RATE_LIMITED", ErrRateLimited},
		{"INVALID_REQUEST", ErrInvalidRequest},
		{"BAD_REQUEST", ErrInvalidRequest},
		{"INTERNAL_SERVER_ERROR", ErrServer},
		{"usage_limit", ErrUsageLimit}, // codes match whatever their case
		{"Not_Found", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			err := fmt.Errorf("wrapped: %w", &APIError{StatusCode: http.StatusOK, Code: tt.code})
			for _, s := range sentinels {
				assert.Equal(t, s == tt.is, errors.Is(err, s), s)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"1.5", 1500 * time.Millisecond, true},
		{"-1", 0, false},
		{"NaN", 0, false},
		{"99999999999", 1e9 * time.Second, true},
		{"Sat, 01 Mar 2025 12:00:30 GMT", 30 * time.Second, true},
		{"Sat, 01 Mar 2025 11:59:00 GMT", 0, true},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.v, now)
		assert.Equal(t, tt.ok, ok, tt.v)
		assert.Equal(t, tt.want, got, tt.v)
	}
}

func TestLowercaseCodeInBody(t *testing.T) {
	e := newAPIError(http.StatusOK, http.Header{}, []byte(`{"error":"usage_limit"}`), (&config{}).redact)
	assert.Equal(t, "usage_limit", e.Code)
	assert.ErrorIs(t, e, ErrUsageLimit)
}

// TestErrorBodyKeysMatchExactly: an error body's keys are matched exactly, as a JavaScript
// reader matches them.
func TestErrorBodyKeysMatchExactly(t *testing.T) {
	tests := []struct{ body, code, message string }{
		{`{"message":"real","MESSAGE":"fake"}`, "", "real"},
		{`{"Message":"fake","message":"real"}`, "", "real"},
		{`{"error":{"code":"NOT_FOUND","CODE":"FAKE","Message":"fake"}}`, "NOT_FOUND", ""},
		{`{"ERROR":"FAKE","error":"NOT_FOUND"}`, "NOT_FOUND", ""},
		{`{"MESSAGE":"fake"}`, "", `{"MESSAGE":"fake"}`}, // no known form: shown as it came
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			e := newAPIError(http.StatusNotFound, http.Header{"Content-Type": {"application/json"}}, []byte(tt.body), (&config{}).redact)
			assert.Equal(t, tt.code, e.Code)
			assert.Equal(t, tt.message, e.Message)
		})
	}
}

// TestAPIErrorSaysWhere: an APIError names the request it answers, so that an unknown agent and
// a base URL without /api read differently; it counts the attempts, shows the request ID and
// keeps the response headers; an [ERROR] event reads as a stream error.
func TestAPIErrorSaysWhere(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", "b7")
		switch r.URL.Path {
		case "/api/agents/busy/query":
			w.Header().Set("X-Request-Id", "req-42")
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/api/agents/a1/query":
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("X-Vercel-Id", "gru1::abc")
			io.WriteString(w, "data: Hi\n\ndata: [ERROR]NOT_FOUND\n\n")
		case "/api/agents/nope/query":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"NOT_FOUND"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name      string
		base      string
		agent     string
		stream    bool
		text      string
		attempts  int
		requestID string
	}{
		{name: "unknown agent", base: srv.URL + "/api", agent: "nope", attempts: 1,
			text: `laburen: query agent "nope": POST /api/agents/nope/query: HTTP 404 Not Found: NOT_FOUND`},
		{name: "base URL without /api", base: srv.URL, agent: "nope", attempts: 1,
			text: `laburen: query agent "nope": POST /agents/nope/query: HTTP 404 Not Found: 404 page not found`},
		{name: "after retries, with a request ID", base: srv.URL + "/api", agent: "busy", attempts: 3, requestID: "req-42",
			text: `laburen: query agent "busy": POST /api/agents/busy/query: HTTP 503 Service Unavailable (request ID req-42; after 3 attempts)`},
		{name: "an [ERROR] event", base: srv.URL + "/api", agent: "a1", stream: true, requestID: "gru1::abc",
			text: `laburen: stream query agent "a1": POST /api/agents/a1/query: stream error: NOT_FOUND (request ID gru1::abc; sent as an [ERROR] event in the stream)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(WithBaseURL(tt.base), WithAPIKey(testKey), WithRetryDelay(0))
			require.NoError(t, err)
			if tt.stream {
				st, serr := c.QueryStream(t.Context(), tt.agent, QueryRequest{Query: "Hi"})
				require.NoError(t, serr)
				_, err = st.Final()
			} else {
				_, err = c.Query(t.Context(), tt.agent, QueryRequest{Query: "Hi"})
			}
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, tt.text, err.Error())
			assert.Equal(t, tt.attempts, apiErr.Attempts)
			assert.Equal(t, tt.requestID, apiErr.RequestID)
			assert.Equal(t, "b7", apiErr.Header.Get("X-Backend"))
			assert.NotContains(t, err.Error(), "HTTP 200")
		})
	}
}
