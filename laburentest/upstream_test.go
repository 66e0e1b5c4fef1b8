package laburentest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sse "github.com/tmaxmax/go-sse"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

// TestSSEErrorBodies: an error before a stream starts is JSON by default, and with
// WithSSEErrorBodies the "data: [ERROR]CODE" body without an SSE content type that the
// upstream server may send; a request that does not stream still gets JSON.
func TestSSEErrorBodies(t *testing.T) {
	tests := []struct {
		name   string
		opts   []laburentest.Option
		fault  func(*laburentest.Server)
		path   string
		key    string
		body   string
		status int
		ct     string
		want   string
	}{
		{name: "unknown agent, JSON by default", path: "/agents/nope/query", key: laburentest.DefaultAPIKey,
			body: `{"query":"hi","streaming":true}`, status: 404, ct: "application/json", want: `{"error":"NOT_FOUND"}`},
		{name: "unknown agent, SSE body", opts: []laburentest.Option{laburentest.WithSSEErrorBodies()},
			path: "/agents/nope/query", key: laburentest.DefaultAPIKey,
			body: `{"query":"hi","streaming":true}`, status: 404, ct: "text/plain; charset=utf-8", want: "data: [ERROR]NOT_FOUND\n\n"},
		{name: "wrong key, SSE body", opts: []laburentest.Option{laburentest.WithSSEErrorBodies()},
			path: queryPath, key: "wrong",
			body: `{"query":"hi","streaming":true}`, status: 403, ct: "text/plain; charset=utf-8", want: "data: [ERROR]UNAUTHORIZED\n\n"},
		{name: "usage limit, SSE body", opts: []laburentest.Option{laburentest.WithSSEErrorBodies()},
			fault: func(s *laburentest.Server) { s.UsageLimitNext(1) }, path: queryPath, key: laburentest.DefaultAPIKey,
			body: `{"query":"hi","streaming":true}`, status: 402, ct: "text/plain; charset=utf-8", want: "data: [ERROR]USAGE_LIMIT\n\n"},
		{name: "no streaming, still JSON", opts: []laburentest.Option{laburentest.WithSSEErrorBodies()},
			path: "/agents/nope/query", key: laburentest.DefaultAPIKey,
			body: `{"query":"hi"}`, status: 404, ct: "application/json", want: `{"error":"NOT_FOUND"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := laburentest.New(t, tt.opts...)
			if tt.fault != nil {
				tt.fault(srv)
			}
			res, body := post(t, srv, tt.path, tt.key, tt.body)
			assert.Equal(t, tt.status, res.StatusCode)
			assert.Equal(t, tt.ct, res.Header.Get("Content-Type"))
			assert.Equal(t, tt.want, body)
		})
	}

	// The SDK reads both forms as the same error.
	for _, opts := range [][]laburentest.Option{nil, {laburentest.WithSSEErrorBodies()}} {
		srv := laburentest.New(t, opts...)
		_, err := srv.Client().QueryStream(t.Context(), "nope", laburen.QueryRequest{Query: "hi"})
		assert.ErrorIs(t, err, laburen.ErrNotFound)
		var apiErr *laburen.APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, "NOT_FOUND", apiErr.Code)
	}
}

// TestWebhookRedelivery: with WithWebhookRedelivery a delivery that got a non-2xx status or
// no answer in time is sent again after each delay, and every attempt is reported.
func TestWebhookRedelivery(t *testing.T) {
	tests := []struct {
		name     string
		delays   []time.Duration // WithWebhookRedelivery's, nil for none
		timeout  time.Duration   // of the webhook client, zero for the default
		answers  []int           // the receiver's status per attempt; 0 stalls past the timeout
		statuses []int           // reported per attempt
	}{
		{name: "no redelivery by default", answers: []int{503}, statuses: []int{503}},
		{name: "until a 2xx", delays: []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, time.Second},
			answers: []int{500, 503, 200}, statuses: []int{500, 503, 200}},
		{name: "until the attempts are spent", delays: []time.Duration{time.Millisecond},
			answers: []int{502, 502, 200}, statuses: []int{502, 502}},
		{name: "after a timeout", delays: []time.Duration{time.Millisecond}, timeout: 100 * time.Millisecond,
			answers: []int{0, 204}, statuses: []int{0, 204}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			times := make(chan time.Time, 10)
			rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				times <- time.Now()
				status := tt.answers[min(int(n.Add(1))-1, len(tt.answers)-1)]
				if status == 0 {
					<-r.Context().Done() // no answer: the sender's timeout ends it
					return
				}
				w.WriteHeader(status)
			}))
			t.Cleanup(rs.Close)
			var opts []laburentest.Option
			if tt.delays != nil {
				opts = append(opts, laburentest.WithWebhookRedelivery(tt.delays...))
			}
			if tt.timeout > 0 {
				opts = append(opts, laburentest.WithWebhookHTTPClient(&http.Client{Timeout: tt.timeout}))
			}
			srv := laburentest.New(t, opts...)
			srv.AddAgent(laburentest.DefaultAgentID, laburentest.Conversational())

			_, err := srv.Client().QueryAsync(t.Context(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi", WebhookURL: rs.URL})
			require.NoError(t, err)
			ws, err := srv.WaitWebhooks(t.Context(), len(tt.statuses))
			require.NoError(t, err)
			var statuses []int
			for i, w := range ws {
				statuses = append(statuses, w.StatusCode)
				assert.Equal(t, i+1, w.Attempt)
				assert.Equal(t, w.StatusCode < 200 || w.StatusCode > 299, w.Err != nil, "attempt %d: %v", i+1, w.Err)
				assert.Equal(t, ws[0].Body, w.Body, "the same body every time")
			}
			assert.Equal(t, tt.statuses, statuses)
			var prev time.Time
			for i := range tt.statuses {
				at := <-times
				if i > 0 {
					assert.GreaterOrEqual(t, at.Sub(prev), tt.delays[i-1], "the delay before attempt %d", i+1)
				}
				prev = at
			}
			time.Sleep(50 * time.Millisecond) // no attempt beyond those reported
			assert.Len(t, srv.Webhooks(), len(tt.statuses))
		})
	}
}

// TestReplyEvents: a responder's events, such as a tool call, reach the stream before the
// answer, in both renderings, and a JSON answer leaves them out.
func TestReplyEvents(t *testing.T) {
	reply := laburentest.Reply{Answer: "Your order ships today.", Events: []laburentest.Event{
		{Name: "tool_call", Data: `{"name":"track_order","arguments":{"order":"A-1"}}`},
		{Name: "progress", Data: "50% done"},
	}}
	respond := func(context.Context, string, laburen.QueryRequest) (laburentest.Reply, error) { return reply, nil }
	for _, opts := range [][]laburentest.Option{nil, {laburentest.WithPlainStreamData()}} {
		srv := laburentest.New(t, append(opts, laburentest.WithResponder(respond))...)
		st, err := srv.Client().QueryStream(t.Context(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi"})
		require.NoError(t, err)
		var types []laburen.EventType
		var data []string
		for st.Next() {
			types = append(types, st.Current().Type)
			data = append(data, st.Current().Data)
		}
		require.NoError(t, st.Err())
		require.GreaterOrEqual(t, len(types), 4)
		assert.Equal(t, []laburen.EventType{laburen.EventToolCall, "progress", laburen.EventAnswer}, types[:3])
		assert.JSONEq(t, reply.Events[0].Data, data[0])
		assert.Equal(t, "50% done", data[1])
		assert.Equal(t, reply.Answer, st.Answer())

		res, err := srv.Client().Query(t.Context(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi"})
		require.NoError(t, err)
		assert.Equal(t, reply.Answer, res.Answer)
	}

	srv := laburentest.New(t, laburentest.WithResponder(func(context.Context, string, laburen.QueryRequest) (laburentest.Reply, error) {
		return laburentest.Reply{Answer: "x", Events: []laburentest.Event{{Name: "a\nb"}}}, nil
	}))
	_, err := srv.Client().QueryStream(t.Context(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi"})
	assert.ErrorContains(t, err, "Reply.Events[0].Name contains a line break")
}

// fetchEventSourceJoin joins the data lines of one event as @microsoft/fetch-event-source
// (the API documentation's client) does: message.data = message.data ? message.data + "\n" +
// value : value, which drops a leading empty line.
func fetchEventSourceJoin(lines []string) string {
	data := ""
	for _, v := range lines {
		if data != "" {
			data += "\n" + v
		} else {
			data = v
		}
	}
	return data
}

// TestPlainStreamRebuildsTheAnswer: in the plain rendering, both a WHATWG parser (go-sse) and
// the documentation's client rebuild the answer exactly, line breaks included.
func TestPlainStreamRebuildsTheAnswer(t *testing.T) {
	answers := []string{
		"Hola,\nLínea dos",
		"Uno.\n\nDos.\n\n\nTres.",
		"fin de línea\n",
		"espacios \n  antes y después  \n",
		"CRLF\r\nse vuelve LF",
	}
	for _, answer := range answers {
		t.Run(answer, func(t *testing.T) {
			srv := laburentest.New(t, laburentest.WithPlainStreamData(), laburentest.WithResponder(laburentest.Answer(answer)))
			_, body := post(t, srv, queryPath, laburentest.DefaultAPIKey, `{"query":"hi","streaming":true}`)
			want := strings.ReplaceAll(answer, "\r\n", "\n") // plain SSE cannot carry a CR

			var whatwg strings.Builder
			for ev, err := range sse.Read(strings.NewReader(body), nil) {
				require.NoError(t, err)
				if ev.Type == "answer" {
					whatwg.WriteString(ev.Data)
				}
			}
			assert.Equal(t, want, whatwg.String(), "WHATWG")

			var fetched strings.Builder
			for _, frame := range frames(body) {
				var lines []string
				answerEvent := false
				for line := range strings.SplitSeq(frame, "\n") {
					if v, ok := strings.CutPrefix(line, "data: "); ok {
						lines = append(lines, v)
					}
					answerEvent = answerEvent || line == "event: answer"
				}
				if answerEvent {
					fetched.WriteString(fetchEventSourceJoin(lines))
				}
			}
			assert.Equal(t, want, fetched.String(), "@microsoft/fetch-event-source")
		})
	}
}

// TestNewClosesWithTheTest: New closes the server when the test ends.
func TestNewClosesWithTheTest(t *testing.T) {
	var srv *laburentest.Server
	t.Run("inner", func(t *testing.T) {
		srv = laburentest.New(t)
		_, err := srv.Client().Query(t.Context(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi"})
		require.NoError(t, err)
	})
	_, err := srv.Client(laburen.WithMaxRetries(0)).Query(t.Context(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi"})
	assert.ErrorContains(t, err, "connect")
	_, err = srv.WaitWebhooks(t.Context(), 1)
	assert.ErrorContains(t, err, "server closed")
}

// TestSetResponder: a responder set after the server started can read the server's state.
func TestSetResponder(t *testing.T) {
	srv := laburentest.New(t)
	srv.SetResponder(func(_ context.Context, _ string, req laburen.QueryRequest) (laburentest.Reply, error) {
		conv, _ := srv.Conversation(req.ConversationID)
		return laburentest.Reply{Answer: strings.Repeat("again ", len(conv.Messages)-1) + "hi"}, nil
	})
	c := srv.Client()
	res, err := c.Query(t.Context(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi"})
	require.NoError(t, err)
	assert.Equal(t, "hi", res.Answer)
	res, err = c.Query(t.Context(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi", ConversationID: res.ConversationID})
	require.NoError(t, err)
	assert.Equal(t, "again again hi", res.Answer)

	srv.SetResponder(nil) // back to DefaultResponder
	res, err = c.Query(t.Context(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "hi"})
	require.NoError(t, err)
	assert.Equal(t, "Hello from laburentest! You said: hi", res.Answer)
}
