package laburentest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

// post sends body to the server's path with key (none when empty) and returns the response
// and its whole body.
func post(t *testing.T, srv *laburentest.Server, path, key, body string) (*http.Response, string) {
	t.Helper()
	res := postOpen(t, context.Background(), srv, path, key, body)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

// postOpen sends a request and returns the response with its body unread.
func postOpen(t *testing.T, ctx context.Context, srv *laburentest.Server, path, key, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return res
}

const queryPath = "/agents/" + laburentest.DefaultAgentID + "/query"

// frames splits an SSE body into its events.
func frames(body string) []string {
	return strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n")
}

// jsonKeys returns the keys of a JSON object in their order.
func jsonKeys(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(b)))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	return keys
}

func TestEncodeURIComponent(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"Hello", "Hello"},
		{"Hello, world", "Hello%2C%20world"},
		{"-_.!~*'()", "-_.!~*'()"},
		{"a\nb\r\n", "a%0Ab%0D%0A"},
		{"+/?#&=%:;@$,[]\"<>\\^`{|}", "%2B%2F%3F%23%26%3D%25%3A%3B%40%24%2C%5B%5D%22%3C%3E%5C%5E%60%7B%7C%7D"},
		{"¿Dónde está?", "%C2%BFD%C3%B3nde%20est%C3%A1%3F"},
		{"€ 😀", "%E2%82%AC%20%F0%9F%98%80"},
		{"\xff", "%FF"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := laburentest.EncodeURIComponent(tt.in)
			assert.Equal(t, tt.want, got)
			back, err := url.PathUnescape(got)
			require.NoError(t, err)
			assert.Equal(t, tt.in, back, "url.PathUnescape is the inverse")
		})
	}
}

func TestChunks(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Hello", []string{"Hello"}},
		{"Hello, how can I help?", []string{"Hello,", " how", " can", " I", " help?"}},
		{"  lead and trail  ", []string{"  lead", " and", " trail  "}},
		{"line one\n\nline two", []string{"line", " one\n\n", "line", " two"}},
		{"a \n  b\r\nc\n", []string{"a \n", "  b\r\n", "c\n"}},
		{"\nfirst", []string{"\nfirst"}},
		{"   ", []string{"   "}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := laburentest.Chunks(tt.in)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.in, strings.Join(got, ""))
		})
	}
}

func TestQueryJSONWire(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()

	res, body := post(t, srv, queryPath, laburentest.DefaultAPIKey, `{"query":"Where is my order?"}`)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
	assert.Equal(t, []string{"answer", "usage", "sources", "approvals", "messageId", "conversationId",
		"visitorId", "request_human", "status"}, jsonKeys(t, []byte(body)))

	var got struct {
		Answer         string            `json:"answer"`
		Usage          map[string]any    `json:"usage"`
		Sources        []json.RawMessage `json:"sources"`
		Approvals      []json.RawMessage `json:"approvals"`
		MessageID      string            `json:"messageId"`
		ConversationID string            `json:"conversationId"`
		VisitorID      string            `json:"visitorId"`
		RequestHuman   bool              `json:"request_human"`
		Status         string            `json:"status"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	assert.Equal(t, "Hello from laburentest! You said: Where is my order?", got.Answer)
	assert.Equal(t, map[string]any{"completionTokens": 9.0, "promptTokens": 4.0, "totalTokens": 13.0, "cost": 0.00013}, got.Usage)
	assert.NotNil(t, got.Sources)
	assert.NotNil(t, got.Approvals)
	assert.Regexp(t, `^c[a-z0-9]{24}$`, got.MessageID)
	assert.Regexp(t, `^c[a-z0-9]{24}$`, got.ConversationID)
	assert.Regexp(t, `^c[a-z0-9]{24}$`, got.VisitorID)
	assert.False(t, got.RequestHuman)
	assert.Equal(t, "UNRESOLVED", got.Status)
	assert.NotContains(t, body, `"metadata"`)
}

func TestStreamWire(t *testing.T) {
	tests := []struct {
		name   string
		opts   []laburentest.Option
		answer string
		want   []string // the answer frames
		done   string
		decode func(string) (string, error)
	}{
		{
			name:   "upstream percent-encoded",
			answer: "Hola, ¿qué tal?\nBien & vos",
			want: []string{
				"event: answer\ndata: Hola%2C",
				"event: answer\ndata: %20%C2%BFqu%C3%A9",
				"event: answer\ndata: %20tal%3F%0A",
				"event: answer\ndata: Bien",
				"event: answer\ndata: %20%26",
				"event: answer\ndata: %20vos",
			},
			done:   "event: \ndata: [DONE]",
			decode: url.PathUnescape,
		},
		{
			name:   "plain, as documented",
			opts:   []laburentest.Option{laburentest.WithPlainStreamData()},
			answer: "Hello, how\ncan",
			want: []string{
				"event: answer\ndata: Hello,",
				"event: answer\ndata:  how\ndata: ",
				"event: answer\ndata: can",
			},
			done:   "data: [DONE]",
			decode: func(s string) (string, error) { return s, nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := laburentest.NewServer(append(tt.opts, laburentest.WithResponder(laburentest.Answer(tt.answer)))...)
			defer srv.Close()

			res, body := post(t, srv, queryPath, laburentest.DefaultAPIKey, `{"query":"hi","streaming":true}`)
			require.Equal(t, http.StatusOK, res.StatusCode, body)
			assert.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
			fr := frames(body)
			require.Len(t, fr, len(tt.want)+2, body)
			assert.Equal(t, tt.want, fr[:len(tt.want)])
			assert.Equal(t, tt.done, fr[len(fr)-1])

			data, ok := strings.CutPrefix(fr[len(tt.want)], "event: endpoint_response\ndata: ")
			require.True(t, ok, fr[len(tt.want)])
			assert.NotContains(t, data, "\n")
			payload, err := tt.decode(data)
			require.NoError(t, err)
			var resp laburen.QueryResponse
			require.NoError(t, json.Unmarshal([]byte(payload), &resp))
			assert.Equal(t, tt.answer, resp.Answer)
			conv, ok := srv.Conversation(resp.ConversationID)
			require.True(t, ok)
			assert.Equal(t, resp.MessageID, conv.Messages[1].ID)
		})
	}
}

func TestAuthAndRouting(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	srv.AddAgent("public-agent", laburentest.Public())
	srv.AddAgent("agent/with space", laburentest.Public())

	tests := []struct {
		name, method, path, key string
		status                  int
		body                    string
	}{
		{"valid key", "POST", queryPath, laburentest.DefaultAPIKey, 200, ""},
		{"no key", "POST", queryPath, "", 401, `{"error":"UNAUTHORIZED"}`},
		{"wrong key", "POST", queryPath, "nope", 403, `{"error":"UNAUTHORIZED"}`},
		{"public agent without key", "POST", "/agents/public-agent/query", "", 200, ""},
		{"public agent with a wrong key", "POST", "/agents/public-agent/query", "nope", 200, ""},
		{"escaped handle", "POST", "/agents/agent%2Fwith%20space/query", "", 200, ""},
		{"unknown agent", "POST", "/agents/nobody/query", laburentest.DefaultAPIKey, 404, `{"error":"NOT_FOUND"}`},
		{"unknown agent before auth", "POST", "/agents/nobody/query-agent", "", 404, `{"error":"NOT_FOUND"}`},
		{"unknown endpoint", "POST", "/agents/" + laburentest.DefaultAgentID + "/other", laburentest.DefaultAPIKey, 404, `{"error":"NOT_FOUND"}`},
		{"outside the API", "POST", "/../other", laburentest.DefaultAPIKey, 404, `{"error":"NOT_FOUND"}`},
		{"GET", "GET", queryPath, laburentest.DefaultAPIKey, 405, `{"error":"METHOD_NOT_ALLOWED"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(`{"query":"hi"}`))
			require.NoError(t, err)
			if tt.key != "" {
				req.Header.Set("Authorization", "Bearer "+tt.key)
			}
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.status, res.StatusCode, string(b))
			if tt.body != "" {
				assert.Equal(t, tt.body, string(b))
				assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	srv.AddAgent("conv", laburentest.Conversational())

	tests := []struct {
		name, path, body, want string
	}{
		{"not JSON", queryPath, `hello`, "the request body is not a JSON object"},
		{"no query", queryPath, `{"conversationId":"x"}`, "query is required"},
		{"blank query", "/agents/" + laburentest.DefaultAgentID + "/query-agent", `{"query":"  "}`, "query is required"},
		{"query of the wrong type", queryPath, `{"query":3}`, "query must be a string"},
		{"streaming of the wrong type", queryPath, `{"query":"hi","streaming":"yes"}`, "streaming must be a boolean"},
		{"unknown channel", queryPath, `{"query":"hi","channel":"fax"}`, `channel "fax" is not a valid channel`},
		{"relative webhook URL", queryPath, `{"query":"hi","webhookUrl":"/hook"}`, "webhookUrl must be an absolute http or https URL"},
		{"conversational without webhook", "/agents/conv/query", `{"query":"hi"}`, "webhookUrl is required: conversational mode is on for this agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := post(t, srv, tt.path, laburentest.DefaultAPIKey, tt.body)
			assert.Equal(t, http.StatusBadRequest, res.StatusCode)
			want, err := json.Marshal(map[string]string{"error": tt.want})
			require.NoError(t, err)
			assert.JSONEq(t, string(want), body)
		})
	}
	assert.Empty(t, srv.Conversations(), "a refused request stores nothing")
}

func TestStreamFaultsWire(t *testing.T) {
	tests := []struct {
		name   string
		fault  func(*laburentest.Server)
		frames []string
		cut    bool
	}{
		{"error after one event", func(s *laburentest.Server) { s.StreamErrorNext(1, 1, "USAGE_LIMIT") },
			[]string{"event: answer\ndata: One", "data: [ERROR]USAGE_LIMIT"}, false},
		{"error first", func(s *laburentest.Server) { s.StreamErrorNext(1, 0, "USAGE_LIMIT") },
			[]string{"data: [ERROR]USAGE_LIMIT"}, false},
		{"an error text with line breaks stays on one line", func(s *laburentest.Server) { s.StreamErrorNext(1, 0, "bad\r\nthing") },
			[]string{"data: [ERROR]bad  thing"}, false},
		{"cut after two events", func(s *laburentest.Server) { s.CutStreamNext(1, 2) },
			[]string{"event: answer\ndata: One", "event: answer\ndata: %20two"}, true},
		{"cut before [DONE]", func(s *laburentest.Server) { s.CutStreamNext(1, 100) },
			[]string{"event: answer\ndata: One", "event: answer\ndata: %20two", "endpoint_response"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := laburentest.NewServer(laburentest.WithResponder(laburentest.Answer("One two")))
			defer srv.Close()
			tt.fault(srv)

			res := postOpen(t, context.Background(), srv, queryPath, laburentest.DefaultAPIKey, `{"query":"hi","streaming":true}`)
			defer res.Body.Close()
			require.Equal(t, http.StatusOK, res.StatusCode)
			b, err := io.ReadAll(res.Body)
			if tt.cut {
				require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			} else {
				require.NoError(t, err)
			}
			got := frames(string(b))
			require.Len(t, got, len(tt.frames), string(b))
			for i, want := range tt.frames {
				if want == "endpoint_response" {
					assert.True(t, strings.HasPrefix(got[i], "event: endpoint_response\ndata: %7B"), got[i])
				} else {
					assert.Equal(t, want, got[i])
				}
			}
			assert.NotContains(t, string(b), "[DONE]")

			// The fault is spent: the next stream is whole.
			_, body := post(t, srv, queryPath, laburentest.DefaultAPIKey, `{"query":"hi","streaming":true}`)
			assert.True(t, strings.HasSuffix(body, "event: \ndata: [DONE]\n\n"), body)
		})
	}
}

func TestStallStream(t *testing.T) {
	tests := []struct {
		name string
		end  func(cancel context.CancelFunc, srv *laburentest.Server)
	}{
		{"until the client goes away", func(cancel context.CancelFunc, _ *laburentest.Server) { cancel() }},
		{"until the server closes", func(_ context.CancelFunc, srv *laburentest.Server) { srv.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := laburentest.NewServer(laburentest.WithResponder(laburentest.Answer("One two")))
			defer srv.Close()
			srv.StallStreamNext(1, 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			res := postOpen(t, ctx, srv, queryPath, laburentest.DefaultAPIKey, `{"query":"hi","streaming":true}`)
			defer res.Body.Close()
			require.Equal(t, http.StatusOK, res.StatusCode)
			r := bufio.NewReader(res.Body)
			for _, want := range []string{"event: answer\n", "data: One\n", "\n"} {
				line, err := r.ReadString('\n')
				require.NoError(t, err)
				require.Equal(t, want, line)
			}
			// Nothing more comes until the stall ends.
			rest := make(chan string, 1)
			go func() {
				b, _ := io.ReadAll(r)
				rest <- string(b)
			}()
			select {
			case b := <-rest:
				t.Fatalf("the stalled stream went on: %q", b)
			case <-time.After(50 * time.Millisecond):
			}
			tt.end(cancel, srv)
			assert.NotContains(t, <-rest, "[DONE]")
		})
	}
}

func TestEventDelay(t *testing.T) {
	const delay = 20 * time.Millisecond
	srv := laburentest.NewServer(laburentest.WithResponder(laburentest.Answer("One two")), laburentest.WithEventDelay(delay))
	defer srv.Close()

	start := time.Now()
	_, body := post(t, srv, queryPath, laburentest.DefaultAPIKey, `{"query":"hi","streaming":true}`)
	assert.Len(t, frames(body), 4)
	assert.GreaterOrEqual(t, time.Since(start), 4*delay, "each of the 4 events waits")

	srv.SetEventDelay(0)
	start = time.Now()
	post(t, srv, queryPath, laburentest.DefaultAPIKey, `{"query":"hi","streaming":true}`)
	assert.Less(t, time.Since(start), 4*delay)
}

func TestAgentQueryStreamWire(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	res, body := post(t, srv, "/agents/"+laburentest.DefaultAgentID+"/query-agent", laburentest.DefaultAPIKey,
		`{"query":"Your order shipped","streaming":true}`)
	require.Equal(t, http.StatusOK, res.StatusCode)
	fr := frames(body)
	require.Len(t, fr, 5, body)
	assert.Equal(t, []string{"event: answer\ndata: Your", "event: answer\ndata: %20order", "event: answer\ndata: %20shipped"}, fr[:3])
	data, ok := strings.CutPrefix(fr[3], "event: endpoint_response\ndata: ")
	require.True(t, ok)
	payload, err := url.PathUnescape(data)
	require.NoError(t, err)
	assert.Equal(t, []string{"messageId", "answer", "conversationId", "visitorId", "status"}, jsonKeys(t, []byte(payload)))
	assert.Equal(t, "event: \ndata: [DONE]", fr[4])
}

func TestRequestKeysMatchExactly(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		check      func(t *testing.T, body string)
	}{
		{"a key in another case is not the field", `{"Query":"hi"}`, http.StatusBadRequest, nil},
		{"nor does it set a field", `{"query":"hi","CONVERSATIONID":"abc"}`, http.StatusOK, func(t *testing.T, body string) {
			assert.NotContains(t, body, `"conversationId":"abc"`)
		}},
		{"an unknown key in another case is extra, not a bad channel", `{"query":"hi","Channel":"Web"}`, http.StatusOK, nil},
		{"whole numbers written as fractions", `{"query":"hi","maxTokens":100.0,"attachments":[{"url":"https://x.example/a.png","size":1.5e3}]}`, http.StatusOK, nil},
		{"a true fraction for an integer field", `{"query":"hi","maxTokens":100.5}`, http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := laburentest.NewServer()
			defer srv.Close()
			res, body := post(t, srv, queryPath, laburentest.DefaultAPIKey, tt.body)
			assert.Equal(t, tt.status, res.StatusCode, body)
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}
}

func TestCloseEndsAWaitingResponder(t *testing.T) {
	started := make(chan struct{})
	srv := laburentest.NewServer(laburentest.WithResponder(func(ctx context.Context, _ string, _ laburen.QueryRequest) (laburentest.Reply, error) {
		close(started)
		<-ctx.Done() // a responder that waits for the client or the server to go away
		return laburentest.Reply{}, ctx.Err()
	}))
	errc := make(chan error, 1)
	go func() {
		_, err := srv.Client(laburen.WithMaxRetries(0)).Query(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi"})
		errc <- err
	}()
	<-started
	srv.Close() // returns: the request's context ends with the server
	assert.Error(t, <-errc)
}
