package laburen

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

// Observer watches every call, for tracing and metrics (see laburenotel). Its funcs may be nil,
// run on the call's goroutine (a stream's End, when its context ends, on the context's), and
// must be quick and safe for concurrent use.
type Observer struct {
	// Start is called when a call begins; the context it returns (ctx or derived from it; nil
	// keeps ctx) carries the call's requests and log records and goes to Attempt and End.
	Start   func(ctx context.Context, call Call) context.Context
	Attempt func(ctx context.Context, call Call, a Attempt)   // after each HTTP attempt
	End     func(ctx context.Context, call Call, end CallEnd) // once; for a stream, when it ends
}

// Call describes an observed call, without message text or credential.
type Call struct {
	Operation string // "query" or "query-agent"
	AgentID   string
	Stream    bool      // QueryStream, AgentQueryStream
	Async     bool      // a query with a webhook URL (QueryAsync)
	Model     ModelName // the query's ModelName; empty keeps the agent's model
	BaseURL   string
}

// Attempt is the outcome of one HTTP attempt of a call.
type Attempt struct {
	N          int           // from 1
	StatusCode int           // 0 when no response arrived
	Err        error         // nil for a 2xx, an *APIError for another status, or the transport's
	ErrorType  string        // as CallEnd.ErrorType
	RetryWait  time.Duration // before the next attempt; negative when none follows
}

// CallEnd is the result of an observed call. ErrorType classifies Err in stable words: an
// APIError's code or status, "truncated", "idle_timeout", "closed", "canceled", "timeout"...
type CallEnd struct {
	Err               error  // what the caller gets (or wraps); nil on success
	ErrorType         string // empty on success
	Attempts          int
	Duration          time.Duration // from Start
	ConversationID    string        // empty when no response arrived
	MessageID         string        // the answer's; empty for a queued query
	InputMessageID    string        // a queued query's message (QueryAsync)
	Usage             Usage
	TimeToFirstAnswer time.Duration // a stream's first answer event, from Start; 0 without one
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
	obs := &observation{o: cfg.observer, call: call}
	if obs.o.Start != nil {
		if c := obs.o.Start(ctx, call); c != nil {
			ctx = c
		}
	}
	// Timed from after Start, so that the durations fit inside a span that Start began.
	obs.ctx, obs.start = ctx, time.Now()
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
			e.InputMessageID = r.InputMessageID
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
		switch {
		case apiErr.Code != "":
			return apiErr.Code
		case apiErr.inStream: // an [ERROR] event without a code, on a 200 stream
			return "stream_error"
		}
		return strconv.Itoa(apiErr.StatusCode)
	}
	var tooLarge *tooLargeError
	var netErr net.Error
	switch {
	case errors.Is(err, errStreamIdle):
		return "idle_timeout"
	case errors.Is(err, ErrStreamClosed):
		return "closed"
	case errors.As(err, &tooLarge) && tooLarge.option == "WithMaxAnswerSize":
		return "answer_too_large"
	case tooLarge != nil:
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
