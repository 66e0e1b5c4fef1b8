package laburen

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

// Observer watches every call a Client sends, for tracing and metrics, without the SDK depending
// on a telemetry library (package laburenotel builds OpenTelemetry spans and metrics on it). Any
// of its functions may be nil. They run on the goroutine of the call (for a stream, on the one
// that reads it, or on the one that calls Close), and must be quick and safe for concurrent use.
// A call refused before anything was sent (a *ValidationError) is not observed.
type Observer struct {
	// Start is called when a call begins. The context it returns, which must be ctx or derived
	// from it, is the call's context from then on: the HTTP requests and the log records carry
	// it, and Attempt and End receive it. A nil result keeps ctx.
	Start func(ctx context.Context, call Call) context.Context
	// Attempt is called after each HTTP attempt of a call, once its outcome is known.
	Attempt func(ctx context.Context, call Call, a Attempt)
	// End is called once when the call ends; for a stream, when the stream ends (its final
	// event, a failure, or Close), not when its headers arrive.
	End func(ctx context.Context, call Call, end CallEnd)
}

// Call describes an observed call. It holds no message text and no credential.
type Call struct {
	// Operation is the endpoint: "query" (Query, QueryStream, QueryAsync) or "query-agent"
	// (AgentQuery, AgentQueryStream).
	Operation string
	// AgentID is the agent the call goes to.
	AgentID string
	// Stream is true for QueryStream and AgentQueryStream.
	Stream bool
	// Async is true for a query that carries a webhook URL (QueryAsync): its answer may come
	// later, by webhook.
	Async bool
	// BaseURL is the API's base URL the call goes to.
	BaseURL string
}

// Attempt is the outcome of one HTTP attempt of a call.
type Attempt struct {
	// N is the attempt's number, from 1.
	N int
	// StatusCode is the response's HTTP status; 0 when no response arrived.
	StatusCode int
	// Err is the attempt's error: nil for a 2xx response, an *APIError for another status,
	// or the transport's error.
	Err error
	// ErrorType classifies Err as CallEnd.ErrorType does; empty when Err is nil.
	ErrorType string
	// RetryWait is the wait before the next attempt; negative when no attempt follows.
	RetryWait time.Duration
}

// CallEnd is the result of an observed call.
type CallEnd struct {
	// Err is the call's error, which the error the caller gets is or wraps (for a stream, what
	// Stream.Err returns); nil on success (for a stream, after [DONE]).
	Err error
	// ErrorType classifies Err in a few stable words: the code of an *APIError ("USAGE_LIMIT",
	// also for an [ERROR] event) or its status when it has no code ("503"); for a stream that
	// did not end with [DONE] or [ERROR]: "truncated", "idle_timeout", "closed" (Close before
	// the end), "event_too_large"; "canceled" and "deadline_exceeded" when the context ended;
	// "timeout" or "connection" for a transport failure; "_OTHER" otherwise. Empty on success.
	ErrorType string
	// Attempts is the number of HTTP attempts made.
	Attempts int
	// Duration is the time from Start to the end.
	Duration time.Duration
	// ConversationID and MessageID identify the answer (for QueryAsync, MessageID is the
	// queued message's InputMessageID); empty when no response arrived.
	ConversationID, MessageID string
	// Usage is the usage the response reported; zero when it reported none.
	Usage Usage
	// TimeToFirstAnswer is, for a stream, the time from Start to its first answer event; zero
	// when none arrived.
	TimeToFirstAnswer time.Duration
}

// WithObserver has o watch every call (it replaces an observer set before).
func WithObserver(o Observer) Option {
	return func(c *config) error {
		c.observer = &o
		return nil
	}
}

// observation is one observed call. A nil *observation observes nothing: the request path and
// the stream call its methods without checking.
type observation struct {
	o        *Observer
	ctx      context.Context // the context Start returned
	call     Call
	start    time.Time
	attempts int
	first    atomic.Int64 // nanoseconds from start to the first answer event; 0 before it
	ended    atomic.Bool
}

// startObservation starts observing call when the configuration has an observer; otherwise it
// returns ctx and nil.
func startObservation(ctx context.Context, cfg *config, call Call) (context.Context, *observation) {
	if cfg.observer == nil {
		return ctx, nil
	}
	call.BaseURL = cfg.baseURL
	obs := &observation{o: cfg.observer, call: call, start: time.Now()}
	if obs.o.Start != nil {
		if c := obs.o.Start(ctx, call); c != nil {
			ctx = c
		}
	}
	obs.ctx = ctx
	return ctx, obs
}

// attempt reports attempt n: its response (nil when none arrived), error, and the wait before
// the next attempt (negative when none follows).
func (obs *observation) attempt(n, status int, err error, wait time.Duration) {
	if obs == nil {
		return
	}
	obs.attempts = n
	if obs.o.Attempt != nil {
		obs.o.Attempt(obs.ctx, obs.call, Attempt{N: n, StatusCode: status, Err: err, ErrorType: errorType(err), RetryWait: wait})
	}
}

// firstAnswer records the arrival of a stream's first answer event.
func (obs *observation) firstAnswer() {
	if obs != nil && obs.first.Load() == 0 {
		obs.first.Store(max(int64(time.Since(obs.start)), 1))
	}
}

// end reports the end of the call, once: later calls do nothing. res is the response object
// (*QueryResponse or *AgentQueryResponse) or nil.
func (obs *observation) end(err error, res any) {
	if obs == nil || !obs.ended.CompareAndSwap(false, true) {
		return
	}
	e := CallEnd{Err: err, ErrorType: errorType(err), Attempts: obs.attempts,
		Duration: time.Since(obs.start), TimeToFirstAnswer: time.Duration(obs.first.Load())}
	switch r := res.(type) {
	case *QueryResponse:
		if r != nil {
			e.ConversationID, e.MessageID, e.Usage = r.ConversationID, r.MessageID, r.Usage
			if e.MessageID == "" {
				e.MessageID = r.InputMessageID
			}
		}
	case *AgentQueryResponse:
		if r != nil {
			e.ConversationID, e.MessageID = r.ConversationID, r.MessageID
		}
	}
	if obs.o.End != nil {
		obs.o.End(obs.ctx, obs.call, e)
	}
}

// observedCall is call with an observation around it.
func (c *Client) observedCall(ctx context.Context, cfg *config, req request, out rawDecoder) error {
	ctx, req.obs = startObservation(ctx, cfg, req.call)
	err := c.call(ctx, cfg, req, out)
	if err != nil {
		req.obs.end(err, nil)
	} else {
		req.obs.end(nil, out)
	}
	return err
}

// observedStream is openStream with an observation around it: it ends with the stream.
func (c *Client) observedStream(ctx context.Context, op string, cfg *config, req request) (*Stream, error) {
	ctx, req.obs = startObservation(ctx, cfg, req.call)
	st, err := c.openStream(ctx, op, cfg, req)
	switch {
	case err != nil:
		req.obs.end(err, nil)
	case st.synth != nil: // a JSON answer: the stream is whole already
		req.obs.firstAnswer()
		req.obs.end(nil, st.synth[len(st.synth)-1].Response)
	default:
		st.obs = req.obs
	}
	return st, err
}

// errStreamIdle marks the error of a stream that the idle timeout ended.
var errStreamIdle = errors.New("stream idle")

// errorType classifies an error for CallEnd.ErrorType.
func errorType(err error) string {
	if err == nil {
		return "" // before the variables below, which errors.As moves to the heap
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		if apiErr.Code != "" {
			return apiErr.Code
		}
		return strconv.Itoa(apiErr.StatusCode)
	}
	var tooLarge *eventTooLargeError
	var netErr net.Error
	switch {
	case errors.Is(err, errStreamIdle):
		return "idle_timeout"
	case errors.Is(err, ErrStreamClosed):
		return "closed"
	case errors.As(err, &tooLarge):
		return "event_too_large"
	case errors.Is(err, ErrStreamTruncated):
		return "truncated"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case netErr != nil:
		return "connection"
	}
	return "_OTHER"
}

// statusOf is the status of an attempt that failed with apiErr (nil: no response).
func statusOf(apiErr *APIError) int {
	if apiErr == nil {
		return 0
	}
	return apiErr.StatusCode
}
