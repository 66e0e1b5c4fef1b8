package laburen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// whDocBody is the webhook body of the API reference, filled in.
const whDocBody = `{"conversationId":"clconv1","messages":[{"text":"Hola!"},{"text":"Tu pedido salió ayer.","extra":1}],` +
	`"agentResponse":{"answer":"Hola! Tu pedido salió ayer.","usage":{"completionTokens":28,"promptTokens":1250,"totalTokens":1278,"cost":0.0064},` +
	`"sources":[],"approvals":[],"messageId":"clmsg1","conversationId":"clconv1","visitorId":"visitor-abc123","request_human":false,"status":"UNRESOLVED"}}`

// whQueued is the queued reply of the API reference.
const whQueued = `{"status":"queued","conversationId":"clconv1","visitorId":"visitor-abc123","inputMessageId":"msg_input123",` +
	`"message":"Your message has been queued. Response will be sent to the provided webhookUrl after processing.",` +
	`"webhookUrl":"https://your-server.com/webhook/laburen"}`

const whAnswer = `{"answer":"Hello!","messageId":"clmsg2","conversationId":"clconv1","visitorId":"visitor-abc123","status":"UNRESOLVED"}`

var (
	whSecret    = []byte("0123456789abcdef-webhook-secret")
	whOldSecret = []byte("fedcba9876543210-old-secret")
)

// whClient returns a client whose requests go to an httpmock transport answering status and
// body; the returned function lists the bodies it received.
func whClient(t *testing.T, status int, body string) (*Client, func() [][]byte) {
	t.Helper()
	var mu sync.Mutex
	var got [][]byte
	mt := httpmock.NewMockTransport()
	mt.RegisterNoResponder(func(r *http.Request) (*http.Response, error) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		assert.Equal(t, "/api/agents/ag1/query", r.URL.Path)
		mu.Lock()
		got = append(got, b)
		mu.Unlock()
		res := httpmock.NewStringResponse(status, body)
		res.Header.Set("Content-Type", "application/json")
		return res, nil
	})
	c, err := NewClient(WithBaseURL("https://api.laburen.test/api"), WithAPIKey("sk-wh-test"),
		WithHTTPClient(&http.Client{Transport: mt}), WithMaxRetries(0))
	require.NoError(t, err)
	return c, func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return slicesClone(got)
	}
}

func slicesClone[T any](s []T) []T { return append([]T(nil), s...) }

func TestQueryAsync(t *testing.T) {
	tests := []struct {
		name       string
		reply      string
		queued     bool
		status     ConversationStatus
		answerText string
	}{
		{name: "queued", reply: whQueued, queued: true, status: StatusQueued},
		{name: "answered at once", reply: whAnswer, queued: false, status: StatusUnresolved, answerText: "Hello!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, sent := whClient(t, http.StatusOK, tt.reply)
			q, err := c.QueryAsync(context.Background(), "ag1", QueryRequest{Query: "Hi", WebhookURL: "https://hooks.example.com/laburen?t=1"})
			require.NoError(t, err)
			require.Len(t, sent(), 1)
			var body map[string]any
			require.NoError(t, json.Unmarshal(sent()[0], &body))
			assert.Equal(t, map[string]any{"query": "Hi", "webhookUrl": "https://hooks.example.com/laburen?t=1"}, body)

			assert.Equal(t, tt.queued, q.Queued())
			assert.Equal(t, tt.status, q.Status)
			assert.Equal(t, "clconv1", q.ConversationID)
			assert.Equal(t, "visitor-abc123", q.VisitorID)
			assert.JSONEq(t, tt.reply, string(q.Raw))
			if tt.queued {
				assert.Empty(t, q.Answer)
				assert.Equal(t, "msg_input123", q.InputMessageID)
				assert.Contains(t, q.Message, "queued")
				assert.Equal(t, "https://your-server.com/webhook/laburen", q.WebhookURL)
			} else {
				assert.Equal(t, tt.answerText, q.Answer)
				assert.Equal(t, "clmsg2", q.MessageID)
			}
		})
	}
}

func TestQueryAsyncValidation(t *testing.T) {
	tests := []struct {
		name  string
		agent string
		req   QueryRequest
		field string
	}{
		{"no webhook URL", "ag1", QueryRequest{Query: "Hi"}, "webhookUrl"},
		{"blank webhook URL", "ag1", QueryRequest{Query: "Hi", WebhookURL: "  "}, "webhookUrl"},
		{"relative webhook URL", "ag1", QueryRequest{Query: "Hi", WebhookURL: "/hook"}, "webhookUrl"},
		{"ftp webhook URL", "ag1", QueryRequest{Query: "Hi", WebhookURL: "ftp://example.com/hook"}, "webhookUrl"},
		{"no query", "ag1", QueryRequest{WebhookURL: "https://example.com/hook"}, "query"},
		{"no agent", "", QueryRequest{Query: "Hi", WebhookURL: "https://example.com/hook"}, "agentID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, sent := whClient(t, http.StatusOK, whQueued)
			q, err := c.QueryAsync(context.Background(), tt.agent, tt.req)
			require.Error(t, err)
			assert.Nil(t, q)
			var vErr *ValidationError
			require.ErrorAs(t, err, &vErr)
			assert.Equal(t, tt.field, vErr.Field)
			assert.Contains(t, err.Error(), "laburen: async query agent")
			assert.Empty(t, sent(), "nothing is sent")
		})
	}
}

func TestQueryAsyncAPIError(t *testing.T) {
	c, _ := whClient(t, http.StatusBadRequest, `{"error":"INVALID_REQUEST"}`)
	_, err := c.QueryAsync(context.Background(), "ag1", QueryRequest{Query: "Hi", WebhookURL: "https://example.com/hook"})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInvalidRequest)
	assert.Contains(t, err.Error(), `async query agent "ag1"`)
}

func TestQueryTellsAQueuedReply(t *testing.T) {
	c, _ := whClient(t, http.StatusOK, whQueued)
	res, err := c.Query(context.Background(), "ag1", QueryRequest{Query: "Hi", WebhookURL: "https://your-server.com/webhook/laburen"})
	require.NoError(t, err)
	assert.True(t, res.Queued())
	assert.Empty(t, res.Answer)
	assert.Equal(t, "msg_input123", res.InputMessageID)
	assert.Contains(t, res.Message, "queued")
	assert.Equal(t, "https://your-server.com/webhook/laburen", res.WebhookURL)

	c, _ = whClient(t, http.StatusOK, whAnswer)
	res, err = c.Query(context.Background(), "ag1", QueryRequest{Query: "Hi"})
	require.NoError(t, err)
	assert.False(t, res.Queued())
	assert.False(t, (*QueryResponse)(nil).Queued())
}

// whRequest builds a webhook delivery as a server receives it.
func whRequest(method, target, event, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if event != "" {
		r.Header.Set(WebhookEventHeader, event)
	}
	return r
}

func TestParseWebhookDocumented(t *testing.T) {
	ev, err := ParseWebhook(whRequest(http.MethodPost, "/webhook/laburen", "agent.response", whDocBody))
	require.NoError(t, err)
	assert.Equal(t, WebhookEventAgentResponse, ev.Name)
	assert.Equal(t, "clconv1", ev.ConversationID)
	require.Len(t, ev.Messages, 2)
	assert.Equal(t, "Hola!", ev.Messages[0].Text)
	assert.Equal(t, "Tu pedido salió ayer.", ev.Messages[1].Text)
	assert.JSONEq(t, `{"text":"Tu pedido salió ayer.","extra":1}`, string(ev.Messages[1].Raw))
	require.NotNil(t, ev.AgentResponse)
	assert.Equal(t, "Hola! Tu pedido salió ayer.", ev.AgentResponse.Answer)
	assert.Equal(t, 1278, ev.AgentResponse.Usage.TotalTokens)
	assert.Equal(t, "clmsg1", ev.AgentResponse.MessageID)
	assert.Equal(t, StatusUnresolved, ev.AgentResponse.Status)
	assert.Equal(t, whDocBody, string(ev.Body))
	assert.Equal(t, "application/json", ev.Header.Get("Content-Type"))
	assert.Nil(t, ev.Params, "no secret: no trusted parameters")
}

func TestParseWebhookEventNames(t *testing.T) {
	tests := []struct {
		name     string
		header   string
		body     string
		wantName string
		wantConv string
		wantMsgs int
	}{
		{"documented", "agent.response", whDocBody, WebhookEventAgentResponse, "clconv1", 2},
		{"case and spaces", " Agent.Response ", whDocBody, WebhookEventAgentResponse, "clconv1", 2},
		{"no header, agent.response shape", "", whDocBody, WebhookEventAgentResponse, "clconv1", 2},
		{"no header, only agentResponse", "", `{"agentResponse":{"conversationId":"c9","answer":"x"}}`, WebhookEventAgentResponse, "c9", 0},
		{"no header, other shape", "", `{"foo":1}`, "", "", 0},
		{"unknown event", "agent.typing", `{"conversationId":"c1","typing":true}`, "agent.typing", "", 0},
		{"unknown event with agent.response shape", "conversation.closed", whDocBody, "conversation.closed", "", 0},
		{"unknown event, array body", "batch", `[1,2]`, "batch", "", 0},
		{"conversation from agentResponse", "agent.response", `{"messages":[],"agentResponse":{"conversationId":"c2"}}`, WebhookEventAgentResponse, "c2", 0},
		{"null fields", "agent.response", `{"messages":null,"agentResponse":null}`, WebhookEventAgentResponse, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := ParseWebhook(whRequest(http.MethodPost, "/hook", tt.header, tt.body))
			require.NoError(t, err)
			assert.Equal(t, tt.wantName, ev.Name)
			assert.Equal(t, tt.wantConv, ev.ConversationID)
			assert.Len(t, ev.Messages, tt.wantMsgs)
			assert.Equal(t, tt.body, string(ev.Body))
			if tt.wantName != WebhookEventAgentResponse {
				assert.Nil(t, ev.AgentResponse)
			}
		})
	}
}

func TestParseWebhookErrors(t *testing.T) {
	tests := []struct {
		name   string
		req    func() *http.Request
		opts   []WebhookOption
		target error
		status int
	}{
		{"GET", func() *http.Request { return whRequest(http.MethodGet, "/hook", "", "") }, nil, ErrWebhookMethod, 405},
		{"empty body", func() *http.Request { return whRequest(http.MethodPost, "/hook", "agent.response", "") }, nil, ErrWebhookMalformed, 400},
		{"blank body", func() *http.Request { return whRequest(http.MethodPost, "/hook", "agent.response", " \n") }, nil, ErrWebhookMalformed, 400},
		{"nil body", func() *http.Request {
			r := whRequest(http.MethodPost, "/hook", "agent.response", "")
			r.Body = nil
			return r
		}, nil, ErrWebhookMalformed, 400},
		{"not JSON", func() *http.Request { return whRequest(http.MethodPost, "/hook", "agent.response", "hello") }, nil, ErrWebhookMalformed, 400},
		{"unknown event, not JSON", func() *http.Request { return whRequest(http.MethodPost, "/hook", "x.y", "{oops") }, nil, ErrWebhookMalformed, 400},
		{"messages not an array", func() *http.Request {
			return whRequest(http.MethodPost, "/hook", "agent.response", `{"messages":"hi"}`)
		}, nil, ErrWebhookMalformed, 400},
		{"message text a number", func() *http.Request {
			return whRequest(http.MethodPost, "/hook", "agent.response", `{"messages":[{"text":1}]}`)
		}, nil, ErrWebhookMalformed, 400},
		{"conversationId a number", func() *http.Request {
			return whRequest(http.MethodPost, "/hook", "agent.response", `{"conversationId":7,"messages":[]}`)
		}, nil, ErrWebhookMalformed, 400},
		{"message not an object", func() *http.Request {
			return whRequest(http.MethodPost, "/hook", "agent.response", `{"messages":["hi"]}`)
		}, nil, ErrWebhookMalformed, 400},
		{"answer a number", func() *http.Request {
			return whRequest(http.MethodPost, "/hook", "agent.response", `{"agentResponse":{"answer":5}}`)
		}, nil, ErrWebhookMalformed, 400},
		{"agent.response not an object", func() *http.Request { return whRequest(http.MethodPost, "/hook", "agent.response", `[1]`) }, nil, ErrWebhookMalformed, 400},
		{"too large by Content-Length", func() *http.Request { return whRequest(http.MethodPost, "/hook", "agent.response", whDocBody) },
			[]WebhookOption{WithWebhookMaxBodySize(64)}, ErrWebhookTooLarge, 413},
		{"too large, length unknown", func() *http.Request {
			r := whRequest(http.MethodPost, "/hook", "agent.response", whDocBody)
			r.ContentLength = -1
			return r
		}, []WebhookOption{WithWebhookMaxBodySize(64)}, ErrWebhookTooLarge, 413},
		{"too large, MaxBytesReader", func() *http.Request {
			r := whRequest(http.MethodPost, "/hook", "agent.response", whDocBody)
			r.ContentLength = -1
			r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 10)
			return r
		}, nil, ErrWebhookTooLarge, 413},
		{"unsigned", func() *http.Request { return whRequest(http.MethodPost, "/hook?tenant=a", "agent.response", whDocBody) },
			[]WebhookOption{WithWebhookSecret(whSecret)}, ErrWebhookUnsigned, 401},
		{"bad signature", func() *http.Request {
			return whRequest(http.MethodPost, "/hook?tenant=a&laburen_sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "agent.response", whDocBody)
		}, []WebhookOption{WithWebhookSecret(whSecret)}, ErrWebhookBadSignature, 401},
		{"bad option", func() *http.Request { return whRequest(http.MethodPost, "/hook", "agent.response", whDocBody) },
			[]WebhookOption{WithWebhookSecret([]byte("short"))}, nil, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := ParseWebhook(tt.req(), tt.opts...)
			require.Error(t, err)
			assert.Nil(t, ev)
			if tt.target != nil {
				assert.ErrorIs(t, err, tt.target)
			}
			assert.Equal(t, tt.status, WebhookErrorStatus(err))
			assert.True(t, strings.HasPrefix(err.Error(), "laburen: parse webhook: "), err.Error())
			assert.NotContains(t, err.Error(), string(whSecret))
			assert.NotContains(t, err.Error(), "AAAAAAAA", "the signature is not repeated")
		})
	}
	assert.Equal(t, 200, WebhookErrorStatus(nil))
}

func TestParseWebhookKeepsTheReadError(t *testing.T) {
	r := whRequest(http.MethodPost, "/hook", "agent.response", "")
	r.ContentLength = -1
	cause := errors.New("connection reset")
	r.Body = io.NopCloser(io.MultiReader(strings.NewReader(`{"mess`), &whErrReader{cause}))
	_, err := ParseWebhook(r)
	assert.ErrorIs(t, err, ErrWebhookMalformed)
	assert.ErrorIs(t, err, cause)
}

type whErrReader struct{ err error }

func (r *whErrReader) Read([]byte) (int, error) { return 0, r.err }

// whLog is a concurrency-safe log buffer.
type whLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *whLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *whLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *whLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestWebhookHandlerStatuses(t *testing.T) {
	signed, err := SignWebhookURL("https://hooks.example.com/hook", url.Values{"tenant": {"acme"}}, whSecret)
	require.NoError(t, err)
	signedTarget := strings.TrimPrefix(signed, "https://hooks.example.com")
	sigValue := signed[strings.LastIndex(signed, "=")+1:]
	tests := []struct {
		name    string
		method  string
		target  string
		event   string
		body    string
		opts    []WebhookOption
		fnErr   error
		fnPanic bool
		status  int
		called  bool
		log     string
	}{
		{name: "ok", method: "POST", target: "/hook", event: "agent.response", body: whDocBody, status: 200, called: true},
		{name: "unknown event acknowledged", method: "POST", target: "/hook", event: "agent.typing", body: `{"a":1}`, status: 200, called: true},
		{name: "signed", method: "POST", target: signedTarget, event: "agent.response", body: whDocBody,
			opts: []WebhookOption{WithWebhookSecret(whSecret)}, status: 200, called: true},
		{name: "GET", method: "GET", target: "/hook", status: 405, log: "status=405"},
		{name: "PUT", method: "PUT", target: "/hook", event: "agent.response", body: whDocBody, status: 405},
		{name: "not JSON", method: "POST", target: "/hook", event: "agent.response", body: "<html>", status: 400, log: "not JSON"},
		{name: "wrong types", method: "POST", target: "/hook", event: "agent.response", body: `{"messages":[{"text":true}]}`, status: 400},
		{name: "too large", method: "POST", target: "/hook", event: "agent.response", body: whDocBody,
			opts: []WebhookOption{WithWebhookMaxBodySize(int64(len(whDocBody) - 1))}, status: 413},
		{name: "exactly at the cap", method: "POST", target: "/hook", event: "agent.response", body: whDocBody,
			opts: []WebhookOption{WithWebhookMaxBodySize(int64(len(whDocBody)))}, status: 200, called: true},
		{name: "unsigned", method: "POST", target: "/hook?tenant=acme", event: "agent.response", body: whDocBody,
			opts: []WebhookOption{WithWebhookSecret(whSecret)}, status: 401, log: "URL not signed"},
		{name: "altered", method: "POST", target: strings.Replace(signedTarget, "acme", "evil", 1), event: "agent.response", body: whDocBody,
			opts: []WebhookOption{WithWebhookSecret(whSecret)}, status: 401, log: "bad signature"},
		{name: "fn fails", method: "POST", target: "/hook", event: "agent.response", body: whDocBody,
			fnErr: errors.New("database down"), status: 500, called: true, log: "database down"},
		{name: "fn panics", method: "POST", target: "/hook", event: "agent.response", body: whDocBody,
			fnPanic: true, status: 500, called: true, log: "stack="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs whLog
			called := false
			h := NewWebhookHandler(func(ctx context.Context, ev *WebhookEvent) error {
				called = true
				assert.NotNil(t, ctx)
				assert.Equal(t, tt.event, ev.Name)
				if tt.fnPanic {
					panic("boom")
				}
				return tt.fnErr
			}, append([]WebhookOption{WithWebhookLogger(logs.logger())}, tt.opts...)...)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, whRequest(tt.method, tt.target, tt.event, tt.body))
			assert.Equal(t, tt.status, rec.Code)
			assert.Equal(t, tt.called, called)
			if tt.status == 405 {
				assert.Equal(t, "POST", rec.Header().Get("Allow"))
			}
			if tt.log != "" {
				assert.Contains(t, logs.String(), tt.log)
			}
			assert.NotContains(t, logs.String(), sigValue, "the query is never logged")
			assert.NotContains(t, rec.Body.String(), "database down", "fn's error stays private")
		})
	}
}

func TestWebhookHandlerDefaultLoggerAndAbort(t *testing.T) {
	var logs whLog
	prev := slog.Default()
	slog.SetDefault(logs.logger())
	t.Cleanup(func() { slog.SetDefault(prev) })
	h := NewWebhookHandler(func(context.Context, *WebhookEvent) error { return errors.New("nope") })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, whRequest("POST", "/hook", "agent.response", whDocBody))
	assert.Equal(t, 500, rec.Code)
	assert.Contains(t, logs.String(), "nope", "slog.Default is the default logger")

	// A function that aborts with http.ErrAbortHandler aborts the response, after its claim is
	// released.
	d := NewMemoryDeduplicator(10)
	h = NewWebhookHandler(func(context.Context, *WebhookEvent) error { panic(http.ErrAbortHandler) },
		WithWebhookDeduplicator(d), WithWebhookLogger(nil))
	assert.PanicsWithValue(t, http.ErrAbortHandler, func() {
		h.ServeHTTP(httptest.NewRecorder(), whRequest("POST", "/hook", "agent.response", whDocBody))
	})
	ev, err := ParseWebhook(whRequest("POST", "/hook", "agent.response", whDocBody))
	require.NoError(t, err)
	st, _, err := d.Claim(context.Background(), ev.DeliveryKey())
	require.NoError(t, err)
	assert.Equal(t, DedupClaimed, st)
}

func TestNewWebhookHandlerRefusesBadSetup(t *testing.T) {
	fn := func(context.Context, *WebhookEvent) error { return nil }
	tests := []struct {
		name string
		make func()
		msg  string
	}{
		{"nil fn", func() { NewWebhookHandler(nil) }, "nil function"},
		{"no secret", func() { NewWebhookHandler(fn, WithWebhookSecret()) }, "no secret"},
		{"empty secret", func() { NewWebhookHandler(fn, WithWebhookSecret(whSecret, nil)) }, "secret 1 is shorter"},
		{"short secret", func() { NewWebhookHandler(fn, WithWebhookSecret([]byte("123456789012345"))) }, "shorter than 16"},
		{"zero body cap", func() { NewWebhookHandler(fn, WithWebhookMaxBodySize(0)) }, "not positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				p := recover()
				require.NotNil(t, p)
				assert.Contains(t, fmt.Sprint(p), tt.msg)
			}()
			tt.make()
		})
	}
}

type whParams struct {
	Tenant string   `url:"tenant"`
	Order  int      `url:"order,omitempty"`
	Tags   []string `url:"tag,omitempty"`
	Test   bool     `url:"test,omitempty"`
	Note   string   `url:"note,omitempty"`
}

func TestSignWebhookURLRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		base   string
		params any
		want   url.Values
	}{
		{"struct", "https://hooks.example.com/webhook/laburen", whParams{Tenant: "acme", Order: 1001, Tags: []string{"b", "a"}, Note: "a&b=c d/é"},
			url.Values{"tenant": {"acme"}, "order": {"1001"}, "tag": {"b", "a"}, "note": {"a&b=c d/é"}}},
		{"pointer, omitempty", "http://localhost:8080/hook", &whParams{Tenant: "x"}, url.Values{"tenant": {"x"}}},
		{"base query kept", "https://h.example.com/hook?src=laburen&v=2", whParams{Tenant: "acme"},
			url.Values{"src": {"laburen"}, "v": {"2"}, "tenant": {"acme"}}},
		{"url.Values", "https://h.example.com/hook", url.Values{"k": {"1", "2"}}, url.Values{"k": {"1", "2"}}},
		{"map[string]string", "https://h.example.com/hook", map[string]string{"tenant": "acme", "order": "7"},
			url.Values{"tenant": {"acme"}, "order": {"7"}}},
		{"map[string][]string", "https://h.example.com/hook", map[string][]string{"k": {"1", "2"}}, url.Values{"k": {"1", "2"}}},
		{"nil params", "https://h.example.com/hook", nil, url.Values{}},
		{"no path", "https://h.example.com", whParams{Tenant: "t"}, url.Values{"tenant": {"t"}}},
		{"escaped path", "https://h.example.com/hooks/a%2Fb/%C3%A9~x", nil, url.Values{}},
		{"dots inside segments", "https://h.example.com/.well-known/a..b/...", nil, url.Values{}},
		{"as many parameters as a receiver parses", "https://h.example.com/hook", manyParams(9999), manyParams(9999)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signed, err := SignWebhookURL(tt.base, tt.params, whSecret)
			require.NoError(t, err)
			u, err := url.Parse(signed)
			require.NoError(t, err)
			assert.Len(t, u.Query()[WebhookSignatureParam], 1)
			assert.NotContains(t, u.Query().Get(WebhookSignatureParam), "=", "no padding")

			target := u.RequestURI()
			ev, err := ParseWebhook(whRequest(http.MethodPost, target, "agent.response", whDocBody), WithWebhookSecret(whSecret))
			require.NoError(t, err)
			assert.Equal(t, tt.want, ev.Params)

			again, err := SignWebhookURL(tt.base, tt.params, whSecret)
			require.NoError(t, err)
			assert.Equal(t, signed, again, "signing is deterministic")
		})
	}
}

func manyParams(n int) url.Values {
	v := url.Values{}
	for i := range n {
		v.Set("p"+strconv.Itoa(i), "1")
	}
	return v
}

// TestWebhookHandlerSlowBody: a sender that stalls in the middle of the body is answered once
// the handler's own read deadline passes, on a server that sets no ReadTimeout.
func TestWebhookHandlerSlowBody(t *testing.T) {
	called := make(chan struct{}, 1)
	h := NewWebhookHandler(func(context.Context, *WebhookEvent) error {
		called <- struct{}{}
		return nil
	}, WithWebhookLogger(nil))
	h.(*webhookHandler).readTimeout = 200 * time.Millisecond
	srv := httptest.NewServer(h) // no ReadTimeout
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	body := whDocBody
	_, err = fmt.Fprintf(conn, "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		len(body), body[:len(body)/2]) // then nothing more
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	start := time.Now()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "the handler answers without waiting for the rest of the body")
	res.Body.Close()
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Less(t, time.Since(start), 4*time.Second)
	assert.Empty(t, called, "the function never sees a partial delivery")

	t.Run("a whole body is handled, and fn's context outlives the deadline", func(t *testing.T) {
		ctxErr := make(chan error, 1)
		h := NewWebhookHandler(func(ctx context.Context, ev *WebhookEvent) error {
			time.Sleep(300 * time.Millisecond) // past the read deadline
			ctxErr <- ctx.Err()
			return nil
		}, WithWebhookLogger(nil))
		h.(*webhookHandler).readTimeout = 100 * time.Millisecond
		srv := httptest.NewServer(h)
		defer srv.Close()
		res, err := http.Post(srv.URL+"/hook", "application/json", strings.NewReader(whDocBody))
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.NoError(t, <-ctxErr)
	})
}

// TestSignedURLOverHTTP sends deliveries over a real connection, so that the path and query
// are those the server parses, through a handler mounted behind http.StripPrefix.
func TestSignedURLOverHTTP(t *testing.T) {
	var got atomic.Pointer[WebhookEvent]
	mux := http.NewServeMux()
	mux.Handle("/in/", http.StripPrefix("/in", NewWebhookHandler(func(_ context.Context, ev *WebhookEvent) error {
		got.Store(ev)
		return nil
	}, WithWebhookSecret(whSecret), WithWebhookLogger(nil))))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, path := range []string{"/in/hook", "/in/hooks/a%2Fb/%C3%A9", "/in/t/~user/x;y"} {
		t.Run(path, func(t *testing.T) {
			got.Store(nil)
			signed, err := SignWebhookURL(srv.URL+path+"?z=1", whParams{Tenant: "acme corp", Note: "1+1=2"}, whSecret)
			require.NoError(t, err)
			req, err := http.NewRequest(http.MethodPost, signed, strings.NewReader(whDocBody))
			require.NoError(t, err)
			req.Header.Set(WebhookEventHeader, WebhookEventAgentResponse)
			res, err := srv.Client().Do(req)
			require.NoError(t, err)
			res.Body.Close()
			require.Equal(t, http.StatusOK, res.StatusCode)
			ev := got.Load()
			require.NotNil(t, ev)
			assert.Equal(t, url.Values{"tenant": {"acme corp"}, "note": {"1+1=2"}, "z": {"1"}}, ev.Params)
		})
	}
}

func TestSignWebhookURLRefusals(t *testing.T) {
	tooMany := url.Values{} // with the signature, one more than a receiver parses
	for i := range 10000 {
		tooMany.Set("p"+strconv.Itoa(i), "1")
	}
	tests := []struct {
		name   string
		base   string
		params any
		secret []byte
		field  string
	}{
		{"no secret", "https://h.example.com/hook", nil, nil, "secret"},
		{"short secret", "https://h.example.com/hook", nil, []byte("short"), "secret"},
		{"relative", "/hook", nil, whSecret, "base"},
		{"no host", "https:///hook", nil, whSecret, "base"},
		{"ftp", "ftp://h.example.com/hook", nil, whSecret, "base"},
		{"not a URL", "https://h.example.com/%zz", nil, whSecret, "base"},
		{"fragment", "https://h.example.com/hook#x", nil, whSecret, "base"},
		{"bad base query", "https://h.example.com/hook?a=%zz", nil, whSecret, "base"},
		{"base already signed", "https://h.example.com/hook?laburen_sig=x", nil, whSecret, "base"},
		{"param named like the signature", "https://h.example.com/hook", url.Values{WebhookSignatureParam: {"x"}}, whSecret, "params"},
		{"struct field named like the signature", "https://h.example.com/hook", struct {
			S string `url:"laburen_sig"`
		}{"x"}, whSecret, "params"},
		{"param also in base", "https://h.example.com/hook?tenant=a", whParams{Tenant: "b"}, whSecret, "params"},
		{"params not a struct", "https://h.example.com/hook", map[string]int{"a": 1}, whSecret, "params"},
		{"base with an expiry", "https://h.example.com/hook?laburen_exp=1", nil, whSecret, "base"},
		{"param named like the expiry", "https://h.example.com/hook", url.Values{WebhookExpiryParam: {"1"}}, whSecret, "params"},
		// A sender that normalizes the URL posts to another path than the one signed.
		{"dot segment", "https://h.example.com/a/./hook", nil, whSecret, "base"},
		{"dot-dot segment", "https://h.example.com/a/../hook", nil, whSecret, "base"},
		{"escaped dot-dot segment", "https://h.example.com/a/%2e%2e/hook", nil, whSecret, "base"},
		{"half-escaped dot-dot segment", "https://h.example.com/a/.%2E/hook", nil, whSecret, "base"},
		{"escaped dot segment", "https://h.example.com/a/%2E/hook", nil, whSecret, "base"},
		{"trailing dot-dot", "https://h.example.com/hook/..", nil, whSecret, "base"},
		{"more parameters than a receiver parses", "https://h.example.com/hook", tooMany, whSecret, "params"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signed, err := SignWebhookURL(tt.base, tt.params, tt.secret)
			require.Error(t, err)
			assert.Empty(t, signed)
			var vErr *ValidationError
			require.ErrorAs(t, err, &vErr)
			assert.Equal(t, tt.field, vErr.Field)
			assert.Contains(t, err.Error(), "laburen: sign webhook URL: ")
		})
	}
	// User info is refused, also where a password holds a character that ends the authority and
	// the parser would read it as a port, a path or a query; none of it is repeated.
	for _, base := range []string{
		"https://admin:hunter2@h.example.com/hook#frag",
		"https://admin:hun/ter2@h.example.com/hook",
		"https://admin:hun#ter2@h.example.com/hook",
		"https://admin:1234?hunter2@h.example.com/hook", // would sign host admin, port 1234
	} {
		signed, err := SignWebhookURL(base, nil, whSecret)
		require.Error(t, err, "signed %s", signed)
		assert.ErrorContains(t, err, "must not carry user info")
		for _, part := range []string{"admin", "hun", "ter2", "1234"} {
			assert.NotContains(t, err.Error(), part, "a password in the base URL is not repeated")
		}
	}
	_, err := SignWebhookURL("https://h.example.com/hook", nil, whSecret, ExpiresAt(time.Time{}))
	var vErr *ValidationError
	require.ErrorAs(t, err, &vErr)
	assert.Equal(t, "ExpiresAt", vErr.Field)
}

// TestWebhookURLExpiry: a URL signed with ExpiresAt is accepted until its expiry (and the
// clock skew tolerated), refused with 401 after, and its expiry cannot be changed or removed.
func TestWebhookURLExpiry(t *testing.T) {
	now := time.Now()
	sign := func(exp time.Time) string {
		signed, err := SignWebhookURL("https://hooks.example.com/hook", whParams{Tenant: "acme"}, whSecret, ExpiresAt(exp))
		require.NoError(t, err)
		u, err := url.Parse(signed)
		require.NoError(t, err)
		assert.Equal(t, strconv.FormatInt(exp.Unix(), 10), u.Query().Get(WebhookExpiryParam))
		return u.RequestURI()
	}
	tamper := func(target string, f func(url.Values)) string {
		u, err := url.Parse(target)
		require.NoError(t, err)
		q := u.Query()
		f(q)
		u.RawQuery = q.Encode()
		return u.RequestURI()
	}
	valid, expired := sign(now.Add(time.Hour)), sign(now.Add(-30*time.Second))
	unexpiring, err := SignWebhookURL("https://hooks.example.com/hook", whParams{Tenant: "acme"}, whSecret)
	require.NoError(t, err)
	u, err := url.Parse(unexpiring)
	require.NoError(t, err)
	tests := []struct {
		name   string
		target string
		skew   time.Duration
		status int
		err    error
		log    string
	}{
		{"within its time", valid, 0, 200, nil, ""},
		{"expired", expired, 0, 401, ErrWebhookExpired, "expired at"},
		{"expired within the clock skew", expired, time.Minute, 200, nil, ""},
		{"expired past the clock skew", expired, 10 * time.Second, 401, ErrWebhookExpired, "expired at"},
		{"expiry moved later", tamper(expired, func(q url.Values) {
			q.Set(WebhookExpiryParam, strconv.FormatInt(now.Add(time.Hour).Unix(), 10))
		}), 0, 401, ErrWebhookBadSignature, "bad signature"},
		{"expiry removed", tamper(expired, func(q url.Values) { q.Del(WebhookExpiryParam) }), 0, 401, ErrWebhookBadSignature, "bad signature"},
		{"expiry doubled", tamper(valid, func(q url.Values) { q.Add(WebhookExpiryParam, q.Get(WebhookExpiryParam)) }), 0, 401, ErrWebhookBadSignature, "bad signature"},
		{"without an expiry", u.RequestURI(), 0, 200, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs whLog
			var got *WebhookEvent
			h := NewWebhookHandler(func(_ context.Context, ev *WebhookEvent) error { got = ev; return nil },
				WithWebhookSecret(whSecret), WithWebhookClockSkew(tt.skew), WithWebhookLogger(logs.logger()))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, whRequest(http.MethodPost, tt.target, "agent.response", whDocBody))
			assert.Equal(t, tt.status, rec.Code)
			assert.Contains(t, logs.String(), tt.log)
			_, err := ParseWebhook(whRequest(http.MethodPost, tt.target, "agent.response", whDocBody),
				WithWebhookSecret(whSecret), WithWebhookClockSkew(tt.skew))
			if tt.err == nil {
				require.NoError(t, err)
				require.NotNil(t, got)
				assert.Equal(t, url.Values{"tenant": {"acme"}}, got.Params, "the expiry is not a parameter of the caller's")
				return
			}
			assert.ErrorIs(t, err, tt.err)
			assert.Nil(t, got)
			if tt.err == ErrWebhookExpired {
				assert.Contains(t, rec.Body.String(), "expired")
			}
		})
	}
	_, err = ParseWebhook(whRequest(http.MethodPost, valid, "agent.response", whDocBody), WithWebhookClockSkew(-time.Second))
	assert.ErrorContains(t, err, "WithWebhookClockSkew")
}

// TestSignWebhookURLParamsKinds: params of a kind SignWebhookURL does not take are refused in
// the SDK's words, naming the type given and the kinds it takes.
func TestSignWebhookURLParamsKinds(t *testing.T) {
	for _, params := range []any{map[string]int{"a": 1}, "tenant=acme", new(int), []string{"a"}} {
		_, err := SignWebhookURL("https://h.example.com/hook", params, whSecret)
		require.Error(t, err)
		assert.Equal(t, fmt.Sprintf("laburen: sign webhook URL: invalid params: is a %T: give nil, a url.Values, "+
			"a map[string]string or a struct (or pointer to one) with `url` tags", params), err.Error())
	}
}

func TestWebhookSignatureTampering(t *testing.T) {
	signed, err := SignWebhookURL("https://hooks.example.com/webhook/laburen?src=lab", whParams{Tenant: "acme", Order: 7}, whSecret)
	require.NoError(t, err)
	u, err := url.Parse(signed)
	require.NoError(t, err)
	sig := u.Query().Get(WebhookSignatureParam)
	q := "order=7&src=lab&tenant=acme"
	require.Equal(t, q+"&laburen_sig="+sig, u.RawQuery)
	flipped := []byte(sig)
	flipped[3] ^= 1 // another letter of the alphabet

	tests := []struct {
		name   string
		target string
		want   error // nil: accepted
	}{
		{"as signed", "/webhook/laburen?" + q + "&laburen_sig=" + sig, nil},
		{"parameters reordered", "/webhook/laburen?laburen_sig=" + sig + "&tenant=acme&src=lab&order=7", nil},
		{"equivalent escaping", "/webhook/%6Caburen?order=%37&src=lab&tenant=acme&laburen_sig=" + sig, nil},
		{"other host and scheme", "http://10.0.0.5:8080/webhook/laburen?" + q + "&laburen_sig=" + sig, nil},
		{"path changed", "/webhook/laburen2?" + q + "&laburen_sig=" + sig, ErrWebhookBadSignature},
		{"path segment escaped", "/webhook%2Flaburen?" + q + "&laburen_sig=" + sig, ErrWebhookBadSignature},
		{"trailing slash", "/webhook/laburen/?" + q + "&laburen_sig=" + sig, ErrWebhookBadSignature},
		{"value changed", "/webhook/laburen?order=8&src=lab&tenant=acme&laburen_sig=" + sig, ErrWebhookBadSignature},
		{"base value changed", "/webhook/laburen?order=7&src=x&tenant=acme&laburen_sig=" + sig, ErrWebhookBadSignature},
		{"param added", "/webhook/laburen?" + q + "&admin=1&laburen_sig=" + sig, ErrWebhookBadSignature},
		{"value repeated", "/webhook/laburen?" + q + "&tenant=acme&laburen_sig=" + sig, ErrWebhookBadSignature},
		{"param removed", "/webhook/laburen?order=7&src=lab&laburen_sig=" + sig, ErrWebhookBadSignature},
		{"signature flipped", "/webhook/laburen?" + q + "&laburen_sig=" + string(flipped), ErrWebhookBadSignature},
		{"signature padded", "/webhook/laburen?" + q + "&laburen_sig=" + sig + "%3D", ErrWebhookBadSignature},
		{"signature truncated", "/webhook/laburen?" + q + "&laburen_sig=" + sig[:40], ErrWebhookBadSignature},
		{"signature twice", "/webhook/laburen?" + q + "&laburen_sig=" + sig + "&laburen_sig=" + sig, ErrWebhookBadSignature},
		{"signature empty", "/webhook/laburen?" + q + "&laburen_sig=", ErrWebhookBadSignature},
		{"query does not parse", "/webhook/laburen?" + q + "&x=%zz&laburen_sig=" + sig, ErrWebhookBadSignature},
		{"signature removed", "/webhook/laburen?" + q, ErrWebhookUnsigned},
		{"no query", "/webhook/laburen", ErrWebhookUnsigned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := ParseWebhook(whRequest(http.MethodPost, tt.target, "agent.response", whDocBody), WithWebhookSecret(whSecret))
			if tt.want == nil {
				require.NoError(t, err)
				assert.Equal(t, url.Values{"order": {"7"}, "src": {"lab"}, "tenant": {"acme"}}, ev.Params)
				return
			}
			require.ErrorIs(t, err, tt.want)
			assert.NotContains(t, err.Error(), sig)
		})
	}
}

func TestParseWebhookWithoutRequestURI(t *testing.T) {
	// A request made in code (as in a user's test) has no RequestURI: r.URL is used.
	signed, err := SignWebhookURL("https://hooks.example.com/hook", whParams{Tenant: "acme"}, whSecret)
	require.NoError(t, err)
	r, err := http.NewRequest(http.MethodPost, signed, strings.NewReader(whDocBody))
	require.NoError(t, err)
	require.Empty(t, r.RequestURI)
	ev, err := ParseWebhook(r, WithWebhookSecret(whSecret))
	require.NoError(t, err)
	assert.Equal(t, "acme", ev.Params.Get("tenant"))
}

func TestWebhookSecretRotation(t *testing.T) {
	oldURL, err := SignWebhookURL("https://hooks.example.com/hook", whParams{Tenant: "acme"}, whOldSecret)
	require.NoError(t, err)
	newURL, err := SignWebhookURL("https://hooks.example.com/hook", whParams{Tenant: "acme"}, whSecret)
	require.NoError(t, err)
	require.NotEqual(t, oldURL, newURL)
	tests := []struct {
		name    string
		url     string
		secrets [][]byte
		ok      bool
	}{
		{"old URL, both secrets", oldURL, [][]byte{whSecret, whOldSecret}, true},
		{"new URL, both secrets", newURL, [][]byte{whSecret, whOldSecret}, true},
		{"old URL, both secrets in two options", oldURL, nil, true},
		{"old URL after the old secret is retired", oldURL, [][]byte{whSecret}, false},
		{"new URL, only the old secret", newURL, [][]byte{whOldSecret}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []WebhookOption{WithWebhookSecret(tt.secrets...)}
			if tt.secrets == nil {
				opts = []WebhookOption{WithWebhookSecret(whSecret), WithWebhookSecret(whOldSecret)}
			}
			u, err := url.Parse(tt.url)
			require.NoError(t, err)
			_, err = ParseWebhook(whRequest(http.MethodPost, u.RequestURI(), "agent.response", whDocBody), opts...)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrWebhookBadSignature)
			}
		})
	}

	// The option copies the secret: changing the caller's slice later changes nothing.
	secret := append([]byte(nil), whSecret...)
	opt := WithWebhookSecret(secret)
	secret[0] ^= 0xff
	u, err := url.Parse(newURL)
	require.NoError(t, err)
	_, err = ParseWebhook(whRequest(http.MethodPost, u.RequestURI(), "agent.response", whDocBody), opt)
	assert.NoError(t, err)
}

func TestDeliveryKey(t *testing.T) {
	parse := func(event, target, body string) *WebhookEvent {
		var opts []WebhookOption
		if strings.Contains(target, WebhookSignatureParam) {
			opts = append(opts, WithWebhookSecret(whSecret))
		}
		ev, err := ParseWebhook(whRequest(http.MethodPost, target, event, body), opts...)
		require.NoError(t, err)
		return ev
	}
	signed := func(tenant string) string {
		s, err := SignWebhookURL("https://hooks.example.com/hook", whParams{Tenant: tenant}, whSecret)
		require.NoError(t, err)
		u, err := url.Parse(s)
		require.NoError(t, err)
		return u.RequestURI()
	}
	a := parse("agent.response", "/hook", `{"messages":[{"text":"a"}],"agentResponse":{"messageId":"m1"}}`)
	b := parse("agent.response", "/hook", `{"messages":[{"text":"a"}], "agentResponse":{"messageId":"m1","answer":"a"}}`)
	c := parse("agent.response", "/hook", `{"messages":[{"text":"a"}],"agentResponse":{"messageId":"m2"}}`)
	noID1 := parse("agent.response", "/hook", `{"messages":[{"text":"a"}]}`)
	noID2 := parse("agent.response", "/hook", `{"messages":[{"text":"a"}]}`)
	noID3 := parse("agent.response", "/hook", `{"messages":[{"text":"b"}]}`)
	other := parse("agent.other", "/hook", `{"messages":[{"text":"a"}]}`)
	tenantA := parse("agent.response", signed("a"), `{"agentResponse":{"messageId":"m1"}}`)
	tenantA2 := parse("agent.response", signed("a"), `{"agentResponse":{"messageId":"m1"},"messages":[]}`)
	tenantB := parse("agent.response", signed("b"), `{"agentResponse":{"messageId":"m1"}}`)
	huge := parse("agent.response", "/hook", `{"agentResponse":{"messageId":"`+strings.Repeat("x", 1<<19)+`"}}`)
	atPath := func(path string) *WebhookEvent {
		s, err := SignWebhookURL("https://hooks.example.com"+path, nil, whSecret)
		require.NoError(t, err)
		u, err := url.Parse(s)
		require.NoError(t, err)
		return parse("agent.response", u.RequestURI(), `{"agentResponse":{"messageId":"m1"}}`)
	}

	assert.Equal(t, a.DeliveryKey(), b.DeliveryKey(), "the messageId decides")
	assert.NotEqual(t, a.DeliveryKey(), c.DeliveryKey())
	assert.Equal(t, noID1.DeliveryKey(), noID2.DeliveryKey(), "same body, same key")
	assert.NotEqual(t, noID1.DeliveryKey(), noID3.DeliveryKey())
	assert.NotEqual(t, noID1.DeliveryKey(), other.DeliveryKey(), "the event name counts")
	assert.Equal(t, tenantA.DeliveryKey(), tenantA2.DeliveryKey())
	assert.NotEqual(t, tenantA.DeliveryKey(), tenantB.DeliveryKey(), "the signed parameters count")
	assert.NotEqual(t, a.DeliveryKey(), tenantA.DeliveryKey())
	assert.Equal(t, atPath("/hooks/a").DeliveryKey(), atPath("/hooks/a").DeliveryKey())
	assert.NotEqual(t, atPath("/hooks/a").DeliveryKey(), atPath("/hooks/b").DeliveryKey(), "the signed path counts")
	for _, ev := range []*WebhookEvent{a, noID1, other, tenantA, huge} {
		assert.Regexp(t, "^[0-9a-f]{64}$", ev.DeliveryKey(), "a key of fixed size")
	}
}

func TestWebhookEventPrintsNoContent(t *testing.T) {
	signed, err := SignWebhookURL("https://hooks.example.com/hook", whParams{Tenant: "acme"}, whSecret)
	require.NoError(t, err)
	u, err := url.Parse(signed)
	require.NoError(t, err)
	r := whRequest(http.MethodPost, u.RequestURI(), "agent.response", whDocBody)
	r.Header.Set("Authorization", "Basic c2VjcmV0OnNlY3JldA==")
	ev, err := ParseWebhook(r, WithWebhookSecret(whSecret))
	require.NoError(t, err)
	for _, format := range []string{"%v", "%+v", "%s", "%#v"} {
		s := fmt.Sprintf(format, ev)
		assert.Contains(t, s, "clconv1", format)
		assert.NotContains(t, s, "Hola", format)
		assert.NotContains(t, s, "c2VjcmV0", format)
		assert.NotContains(t, s, "acme", format)
	}
	assert.Equal(t, "laburen.WebhookEvent(nil)", (*WebhookEvent)(nil).String())
}

func TestMemoryDeduplicator(t *testing.T) {
	ctx := context.Background()
	d := NewMemoryDeduplicator(3)
	tokens := map[string]string{}
	claim := func(key string) DedupStatus {
		st, token, err := d.Claim(ctx, key)
		require.NoError(t, err)
		if st == DedupClaimed {
			tokens[key] = token
		}
		return st
	}
	done := func(key string) { require.NoError(t, d.Done(ctx, key, tokens[key])) }
	assert.Equal(t, DedupClaimed, claim("a"))
	assert.Equal(t, DedupInFlight, claim("a"))
	require.NoError(t, d.Release(ctx, "a", tokens["a"]))
	assert.Equal(t, DedupClaimed, claim("a"), "released: a redelivery is handled")
	done("a")
	assert.Equal(t, DedupDone, claim("a"))
	assert.ErrorIs(t, d.Done(ctx, "a", tokens["a"]), ErrDedupClaimLost, "Done twice keeps one entry")

	for _, k := range []string{"b", "c"} {
		assert.Equal(t, DedupClaimed, claim(k))
		done(k)
	}
	assert.Equal(t, DedupDone, claim("a"))
	assert.Equal(t, DedupClaimed, claim("d"))
	assert.Equal(t, DedupInFlight, claim("d"))
	done("d") // full: "a", the oldest, is forgotten
	assert.Equal(t, DedupClaimed, claim("a"))
	for _, k := range []string{"b", "c", "d"} {
		assert.Equal(t, DedupDone, claim(k), k)
	}
	done("a") // "b" goes
	assert.Equal(t, DedupClaimed, claim("b"))
	assert.Len(t, d.done, 3)

	assert.Equal(t, DefaultDedupCapacity, NewMemoryDeduplicator(0).capacity)
	assert.Equal(t, DefaultDedupClaimTTL, NewMemoryDeduplicator(0, WithDedupClaimTTL(0)).claimTTL)
	assert.Equal(t, time.Second, NewMemoryDeduplicator(0, WithDedupClaimTTL(time.Second)).claimTTL)
	assert.Equal(t, "in flight", DedupInFlight.String())
	assert.Equal(t, "DedupStatus(0)", DedupStatus(0).String())
}

// TestWebhookDuplicateInFlight walks one answer delivered three times: the second arrives
// while the first is being handled, the first fails, the third arrives after.
func TestWebhookDuplicateInFlight(t *testing.T) {
	entered := make(chan struct{})
	proceed := make(chan error)
	var calls atomic.Int32
	h := NewWebhookHandler(func(context.Context, *WebhookEvent) error {
		calls.Add(1)
		entered <- struct{}{}
		return <-proceed
	}, WithWebhookDeduplicator(NewMemoryDeduplicator(10)), WithWebhookLogger(nil))
	serve := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, whRequest("POST", "/hook", "agent.response", whDocBody))
		return rec
	}

	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- serve() }()
	<-entered
	dup := serve()
	assert.Equal(t, http.StatusServiceUnavailable, dup.Code, "the first may still fail: ask to come back")
	assert.Equal(t, "1", dup.Header().Get("Retry-After"))
	proceed <- errors.New("temporary")
	assert.Equal(t, http.StatusInternalServerError, (<-first).Code)

	second := make(chan *httptest.ResponseRecorder)
	go func() { second <- serve() }()
	<-entered
	proceed <- nil
	assert.Equal(t, http.StatusOK, (<-second).Code, "the redelivery after a failure is handled")

	assert.Equal(t, http.StatusOK, serve().Code, "a duplicate of a handled delivery is acknowledged")
	assert.Equal(t, int32(2), calls.Load())
}

// whFailingDedup is a deduplicator whose methods fail or misbehave on demand.
type whFailingDedup struct {
	claimStatus DedupStatus
	claimErr    error
	doneErr     error
}

func (d *whFailingDedup) Claim(context.Context, string) (DedupStatus, string, error) {
	return d.claimStatus, "token", d.claimErr
}
func (d *whFailingDedup) Done(context.Context, string, string) error { return d.doneErr }
func (d *whFailingDedup) Release(context.Context, string, string) error {
	return errors.New("release failed")
}

func TestWebhookDeduplicatorFailures(t *testing.T) {
	tests := []struct {
		name   string
		dedup  *whFailingDedup
		fnErr  error
		status int
		called bool
		log    string
	}{
		{"claim fails", &whFailingDedup{claimErr: errors.New("redis down")}, nil, 500, false, "redis down"},
		{"claim returns no status", &whFailingDedup{}, nil, 500, false, "DedupStatus(0)"},
		{"done fails after fn succeeded", &whFailingDedup{claimStatus: DedupClaimed, doneErr: errors.New("write lost")}, nil, 200, true, "write lost"},
		{"release fails after fn failed", &whFailingDedup{claimStatus: DedupClaimed}, errors.New("fn failed"), 500, true, "release failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs whLog
			called := false
			h := NewWebhookHandler(func(context.Context, *WebhookEvent) error {
				called = true
				return tt.fnErr
			}, WithWebhookDeduplicator(tt.dedup), WithWebhookLogger(logs.logger()))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, whRequest("POST", "/hook", "agent.response", whDocBody))
			assert.Equal(t, tt.status, rec.Code)
			assert.Equal(t, tt.called, called)
			assert.Contains(t, logs.String(), tt.log)
		})
	}
}

func FuzzParseWebhook(f *testing.F) {
	signed, err := SignWebhookURL("https://h.example.com/hook", whParams{Tenant: "acme", Order: 3}, whSecret)
	require.NoError(f, err)
	signedQuery := signed[strings.IndexByte(signed, '?')+1:]
	f.Add([]byte(whDocBody), "agent.response", "", false)
	f.Add([]byte(whDocBody), "", signedQuery, true)
	f.Add([]byte(`{"messages":[{"text":1}]}`), "agent.response", "a=1", false)
	f.Add([]byte(`[]`), "other", "laburen_sig=x", true)
	f.Add([]byte("\xff\x00{"), "agent.response\r\n", "%zz", false)
	f.Fuzz(func(t *testing.T, body []byte, event, rawQuery string, secret bool) {
		var opts []WebhookOption
		if secret {
			opts = append(opts, WithWebhookSecret(whSecret))
		}
		r := &http.Request{
			Method:        http.MethodPost,
			URL:           &url.URL{Path: "/hook", RawQuery: rawQuery},
			Header:        http.Header{WebhookEventHeader: {event}},
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
		}
		ev, err := ParseWebhook(r, opts...)
		if err != nil {
			status := WebhookErrorStatus(err)
			if status != 400 && status != 401 && status != 413 {
				t.Fatalf("status %d for %v", status, err)
			}
			if strings.Contains(err.Error(), string(whSecret)) {
				t.Fatal("the secret is in the error")
			}
			return
		}
		if !bytes.Equal(ev.Body, body) || !json.Valid(body) {
			t.Fatalf("body %q kept as %q", body, ev.Body)
		}
		if ev.Name != WebhookEventAgentResponse && (ev.AgentResponse != nil || ev.Messages != nil) {
			t.Fatalf("event %q decoded as agent.response", ev.Name)
		}
		if secret {
			// Accepted: the verified parameters sign to the very signature the URL carried.
			again, err := SignWebhookURL("https://h.example.com/hook", ev.Params, whSecret)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(again)
			q, _ := url.ParseQuery(rawQuery)
			if u.Query().Get(WebhookSignatureParam) != q.Get(WebhookSignatureParam) {
				t.Fatalf("query %q accepted with a signature of other parameters", rawQuery)
			}
		} else if ev.Params != nil {
			t.Fatal("parameters without a secret")
		}

		// Any parameters signed by SignWebhookURL verify.
		values, perr := url.ParseQuery(rawQuery)
		if perr != nil || values.Has(WebhookSignatureParam) || values.Has(WebhookExpiryParam) {
			return
		}
		signed, err := SignWebhookURL("https://h.example.com/hook", values, whSecret)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(signed)
		r.URL = u
		r.Body = io.NopCloser(bytes.NewReader(body))
		ev, err = ParseWebhook(r, WithWebhookSecret(whSecret))
		if err != nil {
			t.Fatalf("signed %q refused: %v", signed, err)
		}
		if len(values) > 0 && fmt.Sprint(ev.Params) != fmt.Sprint(values) {
			t.Fatalf("params %v, want %v", ev.Params, values)
		}
	})
}

// TestExampleServersSetTimeouts: every server in the examples (programs and godoc examples)
// is an http.Server with ReadHeaderTimeout and ReadTimeout, never http.ListenAndServe, which
// reads a slow sender's headers and body for as long as it likes.
func TestExampleServersSetTimeouts(t *testing.T) {
	files, err := filepath.Glob("examples/*/*.go")
	require.NoError(t, err)
	more, err := filepath.Glob("*example*_test.go")
	require.NoError(t, err)
	files = append(files, more...)
	require.NotEmpty(t, files)
	servers := 0
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && x.Name == "http" && (n.Sel.Name == "ListenAndServe" || n.Sel.Name == "ListenAndServeTLS" || n.Sel.Name == "Serve") {
					t.Errorf("%s: http.%s has no timeouts; use an http.Server", name, n.Sel.Name)
				}
			case *ast.CompositeLit:
				sel, ok := n.Type.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Server" {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "http" {
					return true
				}
				servers++
				set := map[string]bool{}
				for _, e := range n.Elts {
					if kv, ok := e.(*ast.KeyValueExpr); ok {
						set[kv.Key.(*ast.Ident).Name] = true
					}
				}
				assert.True(t, set["ReadHeaderTimeout"] && set["ReadTimeout"], "%s: an http.Server without ReadHeaderTimeout and ReadTimeout", name)
			}
			return true
		})
	}
	assert.GreaterOrEqual(t, servers, 2, "the examples' servers were found")
}

// TestDedupClaimFromContext: the function's context carries its delivery's claim when the
// handler has a deduplicator, and the token is the one Done then takes.
func TestDedupClaimFromContext(t *testing.T) {
	for _, dedup := range []bool{true, false} {
		var got DedupClaim
		var ok bool
		var key string
		var opts []WebhookOption
		d := NewMemoryDeduplicator(10)
		if dedup {
			opts = append(opts, WithWebhookDeduplicator(d))
		}
		h := NewWebhookHandler(func(ctx context.Context, ev *WebhookEvent) error {
			got, ok = DedupClaimFromContext(ctx)
			key = ev.DeliveryKey()
			return nil
		}, append(opts, WithWebhookLogger(nil))...)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, whRequest(http.MethodPost, "/hook", "agent.response", whDocBody))
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, dedup, ok)
		if dedup {
			assert.Equal(t, key, got.Key)
			assert.NotEmpty(t, got.Token)
			assert.ErrorIs(t, d.Done(context.Background(), got.Key, got.Token), ErrDedupClaimLost, "the handler marked this very claim done")
		}
	}
}

// TestParseWebhookKeysMatchExactly: the body's keys are read as in the response types: a key
// fills the field whose JSON name it is exactly, and a later duplicate wins.
func TestParseWebhookKeysMatchExactly(t *testing.T) {
	body := `{"ConversationId":"X","conversationId":"c3","Messages":[{"text":"no"}],` +
		`"messages":[{"Text":"no","text":"a","text":"b"},null,{"te\u0078t":"c"}],"AgentResponse":{"answer":"no"}}`
	ev, err := ParseWebhook(whRequest(http.MethodPost, "/hook", "agent.response", body))
	require.NoError(t, err)
	assert.Equal(t, "c3", ev.ConversationID)
	require.Len(t, ev.Messages, 3)
	assert.Equal(t, []string{"b", "", "c"}, []string{ev.Messages[0].Text, ev.Messages[1].Text, ev.Messages[2].Text})
	assert.Equal(t, "null", string(ev.Messages[1].Raw))
	assert.Nil(t, ev.AgentResponse, "AgentResponse is not agentResponse")

	ev, err = ParseWebhook(whRequest(http.MethodPost, "/hook", "", `{"Messages":[],"AgentResponse":{}}`))
	require.NoError(t, err)
	assert.Empty(t, ev.Name, "not the agent.response shape")
}

// TestWebhookPartsShareTheBody: the body is decoded without copies: the Raw of each message
// and of the answer are spans of Body, and error texts name their class once.
func TestWebhookPartsShareTheBody(t *testing.T) {
	ev, err := ParseWebhook(whRequest(http.MethodPost, "/hook", "", whDocBody))
	require.NoError(t, err)
	require.Len(t, ev.Messages, 2)
	require.NotNil(t, ev.AgentResponse)
	within := func(part []byte) bool {
		start := strings.Index(string(ev.Body), string(part))
		return start >= 0 && &ev.Body[start] == &part[0]
	}
	assert.True(t, within(ev.Messages[1].Raw), "message Raw is a span of Body")
	assert.True(t, within(ev.AgentResponse.Raw), "answer Raw is a span of Body")
	assert.Equal(t, `{"text":"Hola!"}`, string(ev.Messages[0].Raw))

	_, err = ParseWebhook(whRequest(http.MethodGet, "/hook", "", ""))
	assert.EqualError(t, err, "laburen: parse webhook: method not allowed: GET (Laburen sends POST)")
	assert.EqualError(t, ErrWebhookMethod, "laburen: webhook: method not allowed")
}
