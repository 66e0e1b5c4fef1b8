package laburen

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seen is what a test Observer was told, in order.
type seen struct {
	mu       sync.Mutex
	order    []string
	calls    []Call
	attempts []Attempt
	ends     []CallEnd
	ctxOK    []bool // each Attempt and End got the context Start returned
}

type obsKey struct{}

func (s *seen) observer() Observer {
	return Observer{
		Start: func(ctx context.Context, call Call) context.Context {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.order = append(s.order, "start")
			s.calls = append(s.calls, call)
			return context.WithValue(ctx, obsKey{}, "observed")
		},
		Attempt: func(ctx context.Context, _ Call, a Attempt) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.order = append(s.order, "attempt")
			s.attempts = append(s.attempts, a)
			s.ctxOK = append(s.ctxOK, ctx.Value(obsKey{}) == "observed")
		},
		End: func(ctx context.Context, _ Call, e CallEnd) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.order = append(s.order, "end")
			s.ends = append(s.ends, e)
			s.ctxOK = append(s.ctxOK, ctx.Value(obsKey{}) == "observed")
		},
	}
}

func (s *seen) snapshot() seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return seen{order: append([]string(nil), s.order...), calls: append([]Call(nil), s.calls...),
		attempts: append([]Attempt(nil), s.attempts...), ends: append([]CallEnd(nil), s.ends...),
		ctxOK: append([]bool(nil), s.ctxOK...)}
}

func TestObserverSeesCalls(t *testing.T) {
	const asyncAnswer = `{"status":"QUEUED","conversationId":"clconv","inputMessageId":"clin","message":"queued"}`
	const agentAnswer = `{"messageId":"clmsg2","conversationId":"clconv2","status":"UNRESOLVED"}`
	tests := []struct {
		name     string
		script   []func(http.ResponseWriter)
		body     string
		call     func(c *Client) error
		wantCall Call
		wantAtt  []Attempt // without Err
		wantEnd  CallEnd   // without Err and Duration
	}{
		{name: "Query", body: okAnswer,
			call: func(c *Client) error {
				_, err := c.Query(context.Background(), "clagent1", QueryRequest{Query: "Hi"})
				return err
			},
			wantCall: Call{Operation: "query", AgentID: "clagent1"},
			wantAtt:  []Attempt{{N: 1, StatusCode: 200, RetryWait: -1}},
			wantEnd: CallEnd{Attempts: 1, ConversationID: "clconv", MessageID: "clmsg",
				Usage: Usage{CompletionTokens: 28, PromptTokens: 1250, TotalTokens: 1278, Cost: 0.0064}}},
		{name: "Query retried after a 503", body: okAnswer, script: []func(http.ResponseWriter){status(503)},
			call: func(c *Client) error {
				_, err := c.Query(context.Background(), "clagent1", QueryRequest{Query: "Hi"})
				return err
			},
			wantCall: Call{Operation: "query", AgentID: "clagent1"},
			wantAtt: []Attempt{{N: 1, StatusCode: 503, ErrorType: "503", RetryWait: time.Millisecond},
				{N: 2, StatusCode: 200, RetryWait: -1}},
			wantEnd: CallEnd{Attempts: 2, ConversationID: "clconv", MessageID: "clmsg",
				Usage: Usage{CompletionTokens: 28, PromptTokens: 1250, TotalTokens: 1278, Cost: 0.0064}}},
		{name: "Query refused with a usage limit", script: []func(http.ResponseWriter){func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusPaymentRequired)
			io.WriteString(w, `{"error":"USAGE_LIMIT","message":"limit reached"}`)
		}},
			call: func(c *Client) error {
				_, err := c.Query(context.Background(), "clagent1", QueryRequest{Query: "Hi"})
				return err
			},
			wantCall: Call{Operation: "query", AgentID: "clagent1"},
			wantAtt:  []Attempt{{N: 1, StatusCode: 402, ErrorType: "USAGE_LIMIT", RetryWait: -1}},
			wantEnd:  CallEnd{ErrorType: "USAGE_LIMIT", Attempts: 1}},
		{name: "QueryAsync", body: asyncAnswer,
			call: func(c *Client) error {
				_, err := c.QueryAsync(context.Background(), "clagent1", QueryRequest{Query: "Hi", WebhookURL: "https://me.example/hook"})
				return err
			},
			wantCall: Call{Operation: "query", AgentID: "clagent1", Async: true},
			wantAtt:  []Attempt{{N: 1, StatusCode: 200, RetryWait: -1}},
			wantEnd:  CallEnd{Attempts: 1, ConversationID: "clconv", InputMessageID: "clin"}},
		{name: "AgentQuery", body: agentAnswer,
			call: func(c *Client) error {
				_, err := c.AgentQuery(context.Background(), "clagent1", AgentQueryRequest{Query: "Shipped"})
				return err
			},
			wantCall: Call{Operation: "query-agent", AgentID: "clagent1"},
			wantAtt:  []Attempt{{N: 1, StatusCode: 200, RetryWait: -1}},
			wantEnd:  CallEnd{Attempts: 1, ConversationID: "clconv2", MessageID: "clmsg2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s seen
			var reqMarked bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if len(tt.script) > 0 {
					f := tt.script[0]
					tt.script = tt.script[1:]
					f(w)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			hc := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
				reqMarked = r.Context().Value(obsKey{}) == "observed"
				return srv.Client().Transport.RoundTrip(r)
			})}
			c, err := NewClient(WithBaseURL(srv.URL), WithHTTPClient(hc), WithObserver(s.observer()),
				withSleep(func(context.Context, time.Duration) error { return nil }), WithRetryDelay(time.Millisecond))
			require.NoError(t, err)
			callErr := tt.call(c)

			got := s.snapshot()
			require.Len(t, got.calls, 1)
			tt.wantCall.BaseURL = srv.URL
			assert.Equal(t, tt.wantCall, got.calls[0])
			assert.True(t, reqMarked, "the HTTP request carries the context Start returned")
			require.Len(t, got.attempts, len(tt.wantAtt))
			for i, a := range got.attempts {
				assert.Equal(t, a.ErrorType != "", a.Err != nil)
				a.Err = nil
				if tt.wantAtt[i].RetryWait > 0 {
					assert.Positive(t, a.RetryWait)
					assert.LessOrEqual(t, a.RetryWait, tt.wantAtt[i].RetryWait)
					a.RetryWait = tt.wantAtt[i].RetryWait
				}
				assert.Equal(t, tt.wantAtt[i], a)
			}
			require.Len(t, got.ends, 1)
			end := got.ends[0]
			assert.ErrorIs(t, callErr, end.Err) // the caller's error wraps it in the operation
			assert.Positive(t, end.Duration)
			end.Err, end.Duration = nil, 0
			assert.Equal(t, tt.wantEnd, end)
			assert.Equal(t, "end", got.order[len(got.order)-1])
			for _, ok := range got.ctxOK {
				assert.True(t, ok, "Attempt and End get the context Start returned")
			}
		})
	}
}

func TestObserverSkipsRefusedInput(t *testing.T) {
	var s seen
	c, err := NewClient(WithBaseURL("http://127.0.0.1:1"), WithObserver(s.observer()))
	require.NoError(t, err)
	_, err = c.Query(context.Background(), "clagent1", QueryRequest{})
	var vErr *ValidationError
	require.ErrorAs(t, err, &vErr)
	assert.Empty(t, s.snapshot().order)
}

func TestObserverSeesStreamEnds(t *testing.T) {
	const answer = "event: answer\ndata: Hel\n\nevent: answer\ndata: lo\n\n"
	const response = "event: endpoint_response\ndata: {\"answer\":\"Hello\",\"messageId\":\"clmsg\",\"conversationId\":\"clconv\"," +
		"\"usage\":{\"completionTokens\":2,\"promptTokens\":10,\"totalTokens\":12,\"cost\":0.001}}\n\n"
	tests := []struct {
		name      string
		body      string
		stall     bool // hold the stream open after body
		opts      []Option
		read      func(t *testing.T, st *Stream, cancel context.CancelFunc)
		wantType  string
		wantIDs   bool
		wantFirst bool
	}{
		{name: "[DONE]", body: answer + response + "data: [DONE]\n\n",
			read: func(t *testing.T, st *Stream, _ context.CancelFunc) {
				_, err := st.Final()
				require.NoError(t, err)
			}, wantIDs: true, wantFirst: true},
		{name: "[ERROR]USAGE_LIMIT", body: answer + "data: [ERROR]USAGE_LIMIT\n\n",
			read: func(t *testing.T, st *Stream, _ context.CancelFunc) {
				_, err := st.Final()
				require.ErrorIs(t, err, ErrUsageLimit)
			}, wantType: "USAGE_LIMIT", wantFirst: true},
		{name: "cut off", body: answer,
			read: func(t *testing.T, st *Stream, _ context.CancelFunc) {
				_, err := st.Final()
				require.ErrorIs(t, err, ErrStreamTruncated)
			}, wantType: "truncated", wantFirst: true},
		{name: "cancelled", body: answer, stall: true,
			read: func(t *testing.T, st *Stream, cancel context.CancelFunc) {
				require.True(t, st.Next())
				cancel()
				_, err := st.Final()
				require.ErrorIs(t, err, context.Canceled)
			}, wantType: "canceled", wantFirst: true},
		{name: "idle timeout", body: answer, stall: true, opts: []Option{WithStreamIdleTimeout(30 * time.Millisecond)},
			read: func(t *testing.T, st *Stream, _ context.CancelFunc) {
				_, err := st.Final()
				require.ErrorIs(t, err, context.DeadlineExceeded)
			}, wantType: "idle_timeout", wantFirst: true},
		{name: "closed early", body: answer, stall: true,
			read: func(t *testing.T, st *Stream, _ context.CancelFunc) {
				require.True(t, st.Next())
				require.NoError(t, st.Close())
			}, wantType: "closed", wantFirst: true},
		{name: "closed after the response", body: answer + response, stall: true,
			read: func(t *testing.T, st *Stream, _ context.CancelFunc) {
				for st.Response() == nil {
					require.True(t, st.Next())
				}
				require.NoError(t, st.Close())
			}, wantType: "closed", wantIDs: true, wantFirst: true},
		{name: "closed before any event", body: answer, stall: true,
			read: func(t *testing.T, st *Stream, _ context.CancelFunc) {
				require.NoError(t, st.Close())
			}, wantType: "closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s seen
			c, _ := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
				writeSSE(w, tt.body)
				if tt.stall {
					<-r.Context().Done()
				}
			}, append([]Option{WithObserver(s.observer())}, tt.opts...)...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st, err := c.QueryStream(ctx, "clagent1", QueryRequest{Query: "Hi"})
			require.NoError(t, err)
			assert.Equal(t, []string{"start", "attempt"}, s.snapshot().order, "the call does not end with the headers")
			tt.read(t, st, cancel)
			st.Close()

			got := s.snapshot()
			require.Equal(t, []string{"start", "attempt", "end"}, got.order)
			assert.Equal(t, Call{Operation: "query", AgentID: "clagent1", Stream: true, BaseURL: got.calls[0].BaseURL}, got.calls[0])
			end := got.ends[0]
			assert.Equal(t, tt.wantType, end.ErrorType)
			assert.Equal(t, st.Err(), end.Err)
			assert.Equal(t, 1, end.Attempts)
			if tt.wantFirst {
				assert.Positive(t, end.TimeToFirstAnswer)
				assert.LessOrEqual(t, end.TimeToFirstAnswer, end.Duration)
			} else {
				assert.Zero(t, end.TimeToFirstAnswer)
			}
			if tt.wantIDs {
				assert.Equal(t, "clconv", end.ConversationID)
				assert.Equal(t, "clmsg", end.MessageID)
				assert.Equal(t, Usage{CompletionTokens: 2, PromptTokens: 10, TotalTokens: 12, Cost: 0.001}, end.Usage)
			}
		})
	}
}

func TestObserverSeesStreamFailingBeforeItBegins(t *testing.T) {
	var s seen
	c, _ := sseServer(t, func(w http.ResponseWriter, r *http.Request) { status(404)(w) }, WithObserver(s.observer()))
	_, err := c.AgentQueryStream(context.Background(), "clagent1", AgentQueryRequest{Query: "Hi"})
	require.ErrorIs(t, err, ErrNotFound)
	got := s.snapshot()
	require.Equal(t, []string{"start", "attempt", "end"}, got.order)
	assert.Equal(t, "query-agent", got.calls[0].Operation)
	assert.Equal(t, "404", got.ends[0].ErrorType)
	assert.Equal(t, err, got.ends[0].Err)
}

func TestObserverSeesJSONAnswerToAStream(t *testing.T) {
	var s seen
	c, _ := sseServer(t, answer, WithObserver(s.observer()))
	st, err := c.QueryStream(context.Background(), "clagent1", QueryRequest{Query: "Hi"})
	require.NoError(t, err)
	defer st.Close()
	got := s.snapshot()
	require.Equal(t, []string{"start", "attempt", "end"}, got.order)
	assert.Equal(t, "clmsg", got.ends[0].MessageID)
	assert.Equal(t, 1278, got.ends[0].Usage.TotalTokens)
	assert.Positive(t, got.ends[0].TimeToFirstAnswer)
}

func TestErrorType(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{opError("query", &APIError{StatusCode: 402, Code: "USAGE_LIMIT"}), "USAGE_LIMIT"},
		{&APIError{StatusCode: 503}, "503"},
		{&APIError{StatusCode: 200, Message: "Something went wrong", inStream: true}, "stream_error"},
		{opError("stream", &streamError{msg: "idle", errs: []error{context.DeadlineExceeded, errStreamIdle}}), "idle_timeout"},
		{&streamError{msg: "closed", errs: []error{ErrStreamClosed}}, "closed"},
		{&tooLargeError{what: "an event", option: "WithMaxEventSize", max: 10}, "event_too_large"},
		{&tooLargeError{what: "the answer", option: "WithMaxAnswerSize", max: 10}, "answer_too_large"},
		{&streamError{msg: "cut", errs: []error{ErrStreamTruncated, io.ErrUnexpectedEOF}}, "truncated"},
		{opError("query", context.Canceled), "canceled"},
		{opError("query", context.DeadlineExceeded), "deadline_exceeded"},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, "connection"},
		{&net.DNSError{Err: "timeout", IsTimeout: true}, "timeout"},
		{errors.New("decode response: bad JSON"), "_OTHER"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, errorType(tt.err), "%v", tt.err)
	}
}

// TestObserverSeesAnUnreadStreamEnd: a stream opened and never read nor closed ends its
// observation when its context ends, as cancelled or past its deadline; reading it later
// reports the same error, and End is not called again.
func TestObserverSeesAnUnreadStreamEnd(t *testing.T) {
	for _, tt := range []struct {
		name     string
		ctx      func() (context.Context, func())
		wantType string
		want     error
	}{
		{"cancelled", func() (context.Context, func()) {
			ctx, cancel := context.WithCancel(context.Background())
			return ctx, cancel
		}, "canceled", context.Canceled},
		{"deadline", func() (context.Context, func()) {
			ctx := expiring{Context: context.Background(), done: make(chan struct{})}
			return ctx, func() { close(ctx.done) }
		}, "deadline_exceeded", context.DeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ends := make(chan CallEnd, 2)
			c, _ := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
				writeSSE(w, "event: answer\ndata: Hi\n\n")
				<-r.Context().Done()
			}, WithObserver(Observer{End: func(_ context.Context, _ Call, e CallEnd) { ends <- e }}))
			ctx, end := tt.ctx()
			st, err := c.QueryStream(ctx, "clagent1", QueryRequest{Query: "Hi"})
			require.NoError(t, err)
			end()
			var got CallEnd
			select {
			case got = <-ends:
			case <-time.After(10 * time.Second):
				t.Fatal("Observer.End was not called when the context ended")
			}
			assert.Equal(t, tt.wantType, got.ErrorType)
			assert.ErrorIs(t, got.Err, tt.want)
			assert.False(t, st.Next())
			assert.Equal(t, st.Err(), got.Err)
			assert.NoError(t, st.Close())
			assert.Empty(t, ends, "End is called once")
		})
	}
}

// expiring is a context whose deadline passes when done is closed.
type expiring struct {
	context.Context
	done chan struct{}
}

func (c expiring) Done() <-chan struct{} { return c.done }

func (c expiring) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}
