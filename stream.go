package laburen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

// EventType is the type of a stream event: the name in its "event:" field.
type EventType string

// The event types of a streamed answer. Any other name is kept as it came; an event without a
// name has the type EventMessage, as in a browser's EventSource.
const (
	// EventAnswer carries a piece of the answer text, in StreamEvent.Text.
	EventAnswer EventType = "answer"
	// EventEndpointResponse carries the whole response object, parsed in StreamEvent.Response.
	EventEndpointResponse EventType = "endpoint_response"
	// EventToolCall carries a tool call as a JSON object, in StreamEvent.Data.
	EventToolCall EventType = "tool_call"
	// EventMessage is the type of an event sent without a name (other than the final [DONE] and
	// [ERROR] events, which end the stream and are not shown as events).
	EventMessage EventType = "message"
)

// ErrStreamClosed is the error of a stream that Close ended before its final [DONE] or [ERROR]
// event: Err returns an error matching it through errors.Is.
var ErrStreamClosed = errors.New("laburen: stream closed")

// StreamEvent is one event of a streamed answer.
type StreamEvent struct {
	// Type is the event's name: EventAnswer, EventEndpointResponse, EventToolCall, EventMessage
	// for an unnamed event, or any other name as it came.
	Type EventType
	// Text is the piece of answer text of an EventAnswer, decoded; empty for other types, so
	// that printing Text of every event prints the answer.
	Text string
	// Response is the parsed response object of an EventEndpointResponse; nil for other types.
	Response *QueryResponse
	// Data is the event's payload, percent-decoded when the server percent-encoded it: the
	// answer piece, or the JSON text of an endpoint_response or tool_call.
	Data string
	// Raw is the payload exactly as received.
	Raw string
}

// QueryStream sends a user's message to an agent and streams the answer as it is generated
// ("streaming": true). It returns once the response headers have arrived: an error status is
// returned here as an *APIError, and retried like Query when it is safe to (no connection, 429,
// 502, 503, 504); nothing is retried once the stream has begun.
//
// Read the events with Next and Current, or the answer text with Text, or wait for the whole
// response with Final; always Close the stream. Err reports how the stream ended: nil only after
// the server's final [DONE] event. The context bounds the whole stream; WithStreamIdleTimeout
// bounds each wait for the server (not the time the caller takes between two calls of Next).
//
// A 2xx response without a Content-Type, or with text/event-stream, is read as the event stream.
// A JSON response (a server that ignored "streaming") is decoded as the whole response and shown
// as a finished stream: an EventAnswer with the whole answer, then its EventEndpointResponse.
// Any other content type (an HTML page from a proxy, for example) is an error that names the
// status, the content type and the start of the body.
func (c *Client) QueryStream(ctx context.Context, agentID string, req QueryRequest, opts ...Option) (*Stream, error) {
	op := "stream query agent " + strconv.Quote(agentID)
	cfg, r, err := c.queryRequest(agentID, &req, true, opts)
	if err != nil {
		return nil, opError(op, err)
	}
	return c.openStream(ctx, op, cfg, r)
}

// AgentQueryStream records an agent-side message like AgentQuery and streams the server's
// answer, exactly as QueryStream does. The endpoint_response event of this endpoint describes
// the recorded message (its IDs and the conversation's status); it is parsed into the same
// QueryResponse, and StreamEvent.Data and QueryResponse.Raw keep the object as it came.
func (c *Client) AgentQueryStream(ctx context.Context, agentID string, req AgentQueryRequest, opts ...Option) (*Stream, error) {
	op := "stream agent query to agent " + strconv.Quote(agentID)
	cfg, r, err := c.agentQueryRequest(agentID, &req, true, opts)
	if err != nil {
		return nil, opError(op, err)
	}
	return c.openStream(ctx, op, cfg, r)
}

// openStream sends a streaming request through the request path and wraps its response.
func (c *Client) openStream(ctx context.Context, op string, cfg *config, r request) (*Stream, error) {
	if cfg.observer != nil && r.obs == nil { // observe: the call starts here, ends with the stream
		return c.observedStream(ctx, op, cfg, r)
	}
	sctx, cancel := context.WithCancelCause(ctx)
	res, err := c.send(sctx, cfg, r)
	if err != nil {
		cancel(nil)
		return nil, opError(op, err)
	}
	ct := res.Header.Get("Content-Type")
	mediaType, _, _ := strings.Cut(ct, ";")
	mediaType = strings.ToLower(strings.TrimSpace(mediaType))
	switch {
	case ct == "" || mediaType == "text/event-stream":
		s := newStream(ctx, sctx, cancel, op, res.StatusCode, res.Body, cfg)
		s.path, s.header = urlPath(cfg.baseURL+r.path), res.Header
		return s, nil
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		defer cancel(nil)
		defer res.Body.Close()
		body, err := readBody(res, cfg.maxEventSize, cfg.streamIdleTimeout)
		if err != nil {
			return nil, opError(op, fmt.Errorf("read JSON response (HTTP %d) to a streaming request: %w", res.StatusCode, err))
		}
		if len(body) > cfg.maxEventSize {
			return nil, opError(op, fmt.Errorf("JSON response to a streaming request exceeds %d bytes (raise WithMaxEventSize)", cfg.maxEventSize))
		}
		var qr QueryResponse
		if err := decodeOwnedJSON(body, &qr); err != nil {
			return nil, opError(op, fmt.Errorf("decode JSON response (HTTP %d) to a streaming request: %w; body starts %q",
				res.StatusCode, err, shorten(string(body), 200)))
		}
		return finishedStream(op, res.StatusCode, &qr), nil
	default:
		defer cancel(nil)
		defer res.Body.Close()
		start, _ := io.ReadAll(io.LimitReader(res.Body, 200))
		return nil, opError(op, fmt.Errorf("HTTP %d with Content-Type %q is not an event stream; body starts %q",
			res.StatusCode, ct, shorten(string(start), 200)))
	}
}

// Stream is a streamed answer. Next advances it one event at a time; Close releases it.
//
// Next, Current, Err, Answer, Response, Text and Final belong to the goroutine that reads the
// stream. Close may be called from any goroutine, any number of times: it ends a Next that is
// waiting for data at once. The stream also releases its connection by itself when it ends.
type Stream struct {
	op     string
	path   string // the request's URL path and the response's headers, for an [ERROR] event
	header http.Header
	status int

	// mu guards the parsing coroutine and the resources: Next holds it while the coroutine
	// runs (and may wait for the body), Close while it releases them.
	mu       sync.Mutex
	released bool // the connection, coroutine and timer are released (under mu)

	// The fields below belong to the goroutine that calls Next.
	ended    bool  // Next returns false from now on
	finished bool  // the final [DONE] event arrived
	err      error // why the stream ended, wrapped with op; nil after [DONE]

	// The current event is queue[cur]; with cur < 0 it is kept (the last event of a batch that
	// is gone, or an event of a finished stream). Current builds the StreamEvent, so that Next
	// stores no pointers per event.
	cur    int
	kept   StreamEvent
	answer strings.Builder
	resp   *QueryResponse

	// synthetic events of a finished stream (a JSON answer to a streaming request)
	synth []StreamEvent

	// the event stream
	parent    context.Context
	done      <-chan struct{} // parent.Done()
	cancel    context.CancelCauseFunc
	ctxDone   atomic.Bool // the stream's context ended: parent cancelled, idle, or Close
	closed    atomic.Bool // Close was called
	stopAfter func() bool
	afterDone chan struct{}
	body      io.ReadCloser
	feed      feeder
	idle      *idleTimer
	maxEvent  int
	drainWait time.Duration // the bound of drain
	pull      func() (struct{}, bool)
	stopPull  func()
	yield     func(struct{}) bool // the coroutine's yield, while parse runs
	queue     []queued            // events parsed by go-sse: queue[qi:qn] are not yet handled
	qi, qn    int
	parsed    bool  // go-sse has stopped: the queue is all that is left
	parseErr  error // the error go-sse stopped with

	obs *observation // told of the first answer event and of the end; nil when unobserved
}

// queued is an event as go-sse parsed it, and what Next made of it.
type queued struct {
	typ, data string         // as go-sse parsed them
	text      string         // data percent-decoded, when decoded is set
	resp      *QueryResponse // the parsed endpoint_response
	hasData   bool           // the event's block has a data field
	decoded   bool           // text holds data decoded
}

// event is the StreamEvent of a handled event.
func (q *queued) event() StreamEvent {
	data := q.data
	if q.decoded {
		data = q.text
	}
	switch typ := EventType(q.typ); typ {
	case EventAnswer:
		return StreamEvent{Type: typ, Text: data, Data: data, Raw: q.data}
	case "":
		return StreamEvent{Type: EventMessage, Data: data, Raw: q.data}
	default:
		return StreamEvent{Type: typ, Response: q.resp, Data: data, Raw: q.data}
	}
}

// maxBatch bounds how many parsed events wait for Next at once.
const maxBatch = 64

// newStream wraps the body of an event stream. sctx is the request's context, derived from
// parent; cancel cancels it (and with it the body).
func newStream(parent, sctx context.Context, cancel context.CancelCauseFunc, op string, status int, body io.ReadCloser, cfg *config) *Stream {
	body = hideBody(body)
	s := &Stream{
		op:        op,
		status:    status,
		parent:    parent,
		done:      parent.Done(),
		cancel:    cancel,
		body:      body,
		maxEvent:  cfg.maxEventSize,
		afterDone: make(chan struct{}),
		cur:       -1,
	}
	if cfg.streamIdleTimeout > 0 {
		s.idle = newIdleTimer(cfg.streamIdleTimeout, func(err error) { cancel(err) })
	}
	s.drainWait = cfg.drainTimeout
	if s.drainWait <= 0 {
		s.drainWait = drainTimeout
		if cfg.streamIdleTimeout > 0 {
			s.drainWait = min(s.drainWait, cfg.streamIdleTimeout)
		}
	}
	s.feed = feeder{r: body, max: cfg.maxEventSize, idle: s.idle, flush: s.flush}
	// Closing the body ends a Read that is waiting for data even when the transport does not
	// tie the body to the request's context.
	s.stopAfter = context.AfterFunc(sctx, func() {
		s.ctxDone.Store(true)
		body.Close()
		close(s.afterDone)
	})
	s.pull, s.stopPull = iter.Pull(s.parse)
	return s
}

// finishedStream is a stream whose whole response is already known.
func finishedStream(op string, status int, res *QueryResponse) *Stream {
	s := &Stream{op: op, status: status, released: true, cur: -1}
	if res.Answer != "" {
		s.synth = append(s.synth, StreamEvent{Type: EventAnswer, Text: res.Answer, Data: res.Answer, Raw: res.Answer})
	}
	raw := string(res.Raw)
	s.synth = append(s.synth, StreamEvent{Type: EventEndpointResponse, Response: res, Data: raw, Raw: raw})
	return s
}

// parse runs go-sse over the body in a coroutine (iter.Pull). It queues the events go-sse
// yields and goes on parsing; the batch goes to Next when the feeder is about to wait for the
// body (see flush), or when the queue is full. Parsing what is already buffered costs no switch
// per event, and no event waits in the queue while the body is read.
func (s *Stream) parse(yield func(struct{}) bool) {
	s.yield = yield
	defer func() { s.yield = nil }()
	for ev, err := range sse.Read(&s.feed, &sse.ReadConfig{MaxEventSize: s.maxEvent}) {
		if err != nil {
			s.parseErr = err
			return
		}
		if s.queue == nil {
			s.queue = make([]queued, maxBatch)
		}
		// Set the fields one by one: each pointer written costs a write barrier while the
		// garbage collector runs.
		q := &s.queue[s.qn]
		q.typ, q.data = ev.Type, ev.Data
		s.feed.runYields++
		q.hasData = ev.Data != "" || s.feed.emptyEventHasData()
		q.decoded = false
		if q.text != "" {
			q.text = ""
		}
		if q.resp != nil {
			q.resp = nil
		}
		s.qn++
		if s.qn == len(s.queue) && !yield(struct{}{}) {
			return
		}
	}
}

// flush hands the queued events to Next before the feeder waits for the body. It reports false
// when the stream was released meanwhile and parsing must stop.
func (s *Stream) flush() bool {
	if s.qn == 0 {
		return true
	}
	return s.yield(struct{}{})
}

// Next advances to the next event and reports whether there is one; read it with Current.
// Next returns false when the stream ends: after the final [DONE] event (Err is nil), or on
// any failure, an [ERROR] event, a cut-off body, a cancelled context, the idle timeout or Close
// (Err says which). Blocks with no data field, and the [DONE] and [ERROR] events, are not
// shown as events.
func (s *Stream) Next() bool {
	if s.ended {
		return false
	}
	if s.synth != nil {
		return s.nextSynthetic()
	}
	for {
		if s.interrupted() {
			s.end(s.failure())
			return false
		}
		for s.qi < s.qn {
			i := s.qi
			s.qi++
			if s.handle(&s.queue[i]) {
				s.cur = i
				return true
			}
			if s.ended {
				return false
			}
		}
		if s.parsed {
			s.end(s.failure())
			return false
		}
		if s.cur >= 0 {
			s.kept, s.cur = s.queue[s.cur].event(), -1
		}
		s.qi, s.qn = 0, 0
		if !s.parseMore() {
			s.parsed = true
		}
	}
}

// parseMore resumes the parsing coroutine until it has queued events or stopped. It reports
// false when the coroutine has stopped, or when Close released the stream.
func (s *Stream) parseMore() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return false
	}
	_, ok := s.pull()
	return ok
}

// interrupted reports whether the stream must stop: Close was called, or the caller's context
// ended, or the idle timer fired.
func (s *Stream) interrupted() bool {
	select {
	case <-s.done:
		return true
	default:
		return s.closed.Load() || s.ctxDone.Load()
	}
}

func (s *Stream) nextSynthetic() bool {
	if s.closed.Load() {
		s.ended = true
		return false
	}
	if len(s.synth) == 0 {
		s.synth = nil
		s.ended, s.finished = true, true
		return false
	}
	s.kept, s.synth = s.synth[0], s.synth[1:]
	switch s.kept.Type {
	case EventAnswer:
		s.answer.WriteString(s.kept.Text)
	case EventEndpointResponse:
		s.resp = s.kept.Response
	}
	return true
}

// handle interprets one parsed event. It reports whether the event is shown to the caller;
// when the event ends the stream it calls end.
func (s *Stream) handle(q *queued) bool {
	if !q.hasData {
		// A block without a data field: the WHATWG rules do not dispatch it.
		return false
	}
	if EventType(q.typ) == EventAnswer {
		s.obs.firstAnswer() // observe: the first answer event
		// Decode straight into the answer: the event's text is the answer's new tail, which a
		// strings.Builder never changes, so an encoded piece costs no allocation of its own.
		start := s.answer.Len()
		if !s.appendDecoded(q.data) {
			s.answer.WriteString(q.data)
			return true
		}
		q.text, q.decoded = s.answer.String()[start:], true
		return true
	}
	data := decodePayload(q.data)
	if len(data) != len(q.data) {
		q.text, q.decoded = data, true
	}
	switch EventType(q.typ) {
	case "", EventMessage:
		if data == "[DONE]" {
			s.drain()
			s.end(nil)
			return false
		}
		if msg, ok := strings.CutPrefix(data, "[ERROR]"); ok {
			s.drain()
			s.end(s.inBandError(msg, q.data))
			return false
		}
	case EventEndpointResponse:
		res, err := decodeResponse(data)
		if err != nil {
			s.end(fmt.Errorf("decode endpoint_response event: %w; data starts %q", err, shorten(data, 200)))
			return false
		}
		s.resp, q.resp = res, res
	}
	return true
}

// appendDecoded appends the percent-decoded data to the answer and reports true, or reports
// false and appends nothing when data is plain text. A short piece is checked and decoded in
// one pass over a buffer on the stack.
func (s *Stream) appendDecoded(data string) bool {
	if strings.IndexByte(data, '%') < 0 {
		return false
	}
	var buf [256]byte
	if len(data) > len(buf) {
		first, escapes, ok := percentEncoded(data)
		if ok {
			s.answer.Grow(len(data) - 2*escapes)
			writeDecoded(&s.answer, data, first)
		}
		return ok
	}
	n := 0
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c == '%' {
			if i+2 >= len(data) || !isHex(data[i+1]) || !isHex(data[i+2]) {
				return false
			}
			c = unhex(data[i+1])<<4 | unhex(data[i+2])
			i += 2
		} else if !uriUnreserved[c] {
			return false
		}
		buf[n] = c
		n++
	}
	s.answer.Write(buf[:n])
	return true
}

// decodeResponse decodes the JSON object of an endpoint_response, in one scan: the bytes are a
// copy the response keeps as its Raw.
func decodeResponse(data string) (*QueryResponse, error) {
	var res QueryResponse
	if err := decodeOwnedJSON([]byte(data), &res); err != nil {
		return nil, err
	}
	return &res, nil
}

const (
	// maxDrain caps what drain reads of a body after its final event.
	maxDrain = 4 << 10
	// drainTimeout bounds the wait of drain for the end of the body (capped by the stream's
	// idle timeout). A server ends the body right after the final event; one that keeps it
	// open costs this wait, and then its connection.
	drainTimeout = 100 * time.Millisecond
)

// errDrainTimeout ends the request's context when the body does not end after the final event.
var errDrainTimeout = errors.New("the body did not end after the final event")

// drain reads what is left of the body after the final [DONE] or [ERROR] event, up to maxDrain
// bytes and for at most drainWait, so that the connection returns to the pool: an HTTP/1.1
// connection whose body is closed before its end is closed with it, and the next request pays
// a new connection (TCP and TLS handshakes). It runs on the goroutine of Next, while the parsing
// coroutine is suspended; Close and the context end it as they end a read of Next.
func (s *Stream) drain() {
	if s.feed.err != nil || s.interrupted() {
		return // the body has ended or failed already, or the stream is being stopped
	}
	fired := make(chan struct{})
	t := time.AfterFunc(s.drainWait, func() {
		s.cancel(errDrainTimeout) // ends the read, and closes the body (see newStream)
		close(fired)
	})
	buf := make([]byte, 512)
	for n, reads := 0, 0; n <= maxDrain && reads < 64; reads++ {
		m, err := s.body.Read(buf)
		n += m
		if err != nil {
			break
		}
	}
	if !t.Stop() {
		<-fired // nothing of the stream outlives it
	}
}

// inBandError is the *APIError of an "[ERROR]..." event.
func (s *Stream) inBandError(msg, raw string) error {
	e := &APIError{StatusCode: s.status, Body: raw, Method: http.MethodPost, Path: s.path,
		RequestID: requestID(s.header), Header: s.header, inStream: true, hint: "sent as an [ERROR] event in the stream"}
	e.Code, e.Message = splitText(oneLine(msg, maxErrorMessage))
	if e.Code == "" && e.Message == "" {
		e.Message = "the server reported an error without a code or message"
	}
	return e
}

// failure explains why the stream stopped without its final event.
func (s *Stream) failure() error {
	switch {
	case s.closed.Load():
		return &streamError{msg: "stream closed before its end", errs: []error{ErrStreamClosed}}
	case s.parent.Err() != nil:
		err := s.parent.Err()
		if cause := context.Cause(s.parent); cause != nil && cause != err {
			return fmt.Errorf("stream interrupted: %w (%w)", err, cause)
		}
		return fmt.Errorf("stream interrupted: %w", err)
	case s.idle != nil && s.idle.fired.Load():
		return s.idle.err
	}
	err := s.feed.err
	if errors.Is(s.parseErr, bufio.ErrTooLong) {
		err = s.parseErr
	}
	var tooLarge *eventTooLargeError
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.Is(err, bufio.ErrTooLong):
		return &eventTooLargeError{max: s.maxEvent}
	}
	return s.feed.truncated(s.parseErr)
}

// end records how the stream ended and releases it. err is nil after [DONE].
func (s *Stream) end(err error) {
	s.ended = true
	if s.cur >= 0 {
		s.kept, s.cur = s.queue[s.cur].event(), -1
	}
	s.queue = nil
	if err == nil {
		s.finished = true
	} else {
		s.err = opError(s.op, err)
	}
	s.obs.end(s.err, s.resp) // observe: how the stream ended
	s.mu.Lock()
	defer s.mu.Unlock()
	s.release()
}

// release frees everything the stream holds: the parsing coroutine, the timer, the body and
// the context. It runs once, with s.mu held; it touches nothing that Next reads without the
// lock.
func (s *Stream) release() {
	if s.released {
		return
	}
	s.released = true
	s.stopPull()
	if s.idle != nil {
		s.idle.stop()
	}
	if s.stopAfter() {
		s.body.Close()
	} else {
		<-s.afterDone // the context ended first: its AfterFunc closes the body
	}
	s.cancel(context.Canceled)
}

// Current returns the event Next advanced to.
func (s *Stream) Current() StreamEvent {
	if s.cur >= 0 {
		return s.queue[s.cur].event()
	}
	return s.kept
}

// Err returns why the stream ended: nil while it runs and after the final [DONE] event; an
// *APIError (matching ErrUsageLimit and the other sentinels) after an [ERROR] event; an error
// matching ErrStreamTruncated and io.ErrUnexpectedEOF when the body ended without either; the
// context's error; an error naming WithStreamIdleTimeout or WithMaxEventSize; or one matching
// ErrStreamClosed after Close.
func (s *Stream) Err() error {
	if s.err != nil {
		return s.err
	}
	if !s.finished && s.closed.Load() {
		return opError(s.op, &streamError{msg: "stream closed before its end", errs: []error{ErrStreamClosed}})
	}
	return nil
}

// Answer returns the answer text joined from the EventAnswer events read so far.
func (s *Stream) Answer() string { return s.answer.String() }

// Response returns the response object of the endpoint_response event, or nil before it has
// been read.
func (s *Stream) Response() *QueryResponse { return s.resp }

// Close ends the stream and releases its connection. It may be called from any goroutine and
// more than once; it ends a Next that is waiting for data. It always returns nil.
func (s *Stream) Close() error {
	s.closed.Store(true)
	if s.obs != nil && !s.obs.ended.Load() { // observe: closed before its end
		s.obs.end(opError(s.op, &streamError{msg: "stream closed before its end", errs: []error{ErrStreamClosed}}), nil)
	}
	if s.cancel != nil {
		s.cancel(context.Canceled)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.release()
	return nil
}

// Text returns the answer as an iterator of text pieces, for a range loop. It reads the stream
// to its end and closes it when the loop ends, also when the loop breaks early. When the
// stream fails the last iteration yields ("", err); a stream that ends with [DONE] yields no
// error.
//
//	for text, err := range st.Text() {
//		if err != nil {
//			return err
//		}
//		fmt.Print(text)
//	}
func (s *Stream) Text() iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		defer s.Close()
		for s.Next() {
			ev := s.Current()
			if ev.Type != EventAnswer || ev.Text == "" {
				continue
			}
			if !yield(ev.Text, nil) {
				return
			}
		}
		if err := s.Err(); err != nil {
			yield("", err)
		}
	}
}

// Final reads the stream to its end and returns the whole response: the endpoint_response
// object, with Answer set to the joined answer text when the object has no answer. When the
// stream ends with [DONE] but sent no endpoint_response, the response holds the joined answer
// alone. When the stream fails, Final returns its error; Answer and Response still show what
// arrived.
func (s *Stream) Final() (*QueryResponse, error) {
	for s.Next() {
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	var res QueryResponse
	if s.resp != nil {
		res = *s.resp
	}
	if res.Answer == "" {
		res.Answer = s.Answer()
	}
	return &res, nil
}

// streamError is an error with its own message that matches the errors it lists.
type streamError struct {
	msg  string
	errs []error
}

func (e *streamError) Error() string   { return e.msg }
func (e *streamError) Unwrap() []error { return e.errs }

// eventTooLargeError reports an event larger than WithMaxEventSize allows.
type eventTooLargeError struct{ max int }

func (e *eventTooLargeError) Error() string {
	return fmt.Sprintf("an event is larger than %d bytes (raise the limit with WithMaxEventSize)", e.max)
}

// idleTimer fails a stream that waits longer than d for its body to deliver a byte. It runs
// only while a read is waiting.
type idleTimer struct {
	d       time.Duration
	t       *time.Timer
	err     error
	fired   atomic.Bool
	started bool          // a disarm found that the timer had fired
	done    chan struct{} // closed when the timer's function has run
	once    sync.Once
}

func newIdleTimer(d time.Duration, fail func(error)) *idleTimer {
	it := &idleTimer{
		d:    d,
		done: make(chan struct{}),
		err: &streamError{
			msg:  fmt.Sprintf("no data arrived for %v, the stream stalled (WithStreamIdleTimeout)", d),
			errs: []error{context.DeadlineExceeded, errStreamIdle},
		},
	}
	it.t = time.AfterFunc(time.Hour, func() {
		it.fired.Store(true)
		fail(it.err)
		it.once.Do(func() { close(it.done) })
	})
	it.t.Stop()
	return it
}

// arm starts the timer before a read; disarm stops it after the read. Both run on the
// goroutine that reads the stream, as does stop.
func (it *idleTimer) arm() { it.t.Reset(it.d) }

func (it *idleTimer) disarm() {
	if !it.t.Stop() {
		it.started = true // the timer fired during the read: its function has started
	}
}

// stop stops the timer for good; when the timer fired, it waits for the timer's function to
// return, so that nothing of the stream outlives it.
func (it *idleTimer) stop() {
	it.t.Stop()
	if it.started {
		<-it.done
	}
}

// feeder sits between the body and go-sse. go-sse looks for the end of an event from the start
// of the buffered event at every read, so an event that arrives in many small reads costs time
// quadratic in its size. The feeder finds the ends of events itself, with one linear scan, and
// hands go-sse only whole events: all those that fit in its buffer, or as much of a larger one as
// the buffer holds (go-sse then doubles its buffer). Each event is thus scanned a bounded number
// of times, and reaches go-sse as soon as its blank line has arrived.
type feeder struct {
	r     io.Reader
	max   int
	idle  *idleTimer
	flush func() bool // called before a read of the body that may wait

	buf        []byte
	rpos, wpos int // buf[rpos:wpos] is read from the body and not yet handed to go-sse
	scanned    int // buf[:scanned] is scanned

	// The complete events in buf: segs[segHead:] are not yet (wholly) handed to go-sse;
	// segs[runFrom:runTo] are the events whose ends the last Read handed over, of which go-sse
	// has yielded runYields so far. segs is cleared when the body is read again.
	segs           []segment
	segHead        int
	runFrom, runTo int
	runYields      int
	sawEvent       bool // an event's end has been found

	// scanning state
	segStart  int  // where the event being scanned starts (just after the previous one)
	midLine   bool // inside a line (false at the start of a line)
	pendingCR bool // the last line ended with CR: a LF right after it belongs to it
	content   bool // the event being scanned has a non-blank line

	total   int64 // bytes read from the body
	err     error // the body's error (io.EOF at its end), or an event over the limit
	empties int
}

// segment is a complete event in the feeder's buffer: buf[start:end]. Blank lines before an
// event belong to it.
type segment struct {
	start, end int
	first      bool // the first event of the stream, where go-sse strips a byte order mark
}

const feederMinBuf = 4096

// errStopped stops go-sse when the stream is released while the parser waits.
var errStopped = errors.New("stream released")

// Read hands go-sse the complete events that p holds whole, or the start (or rest) of one that
// does not fit.
func (f *feeder) Read(p []byte) (int, error) {
	for f.segHead == len(f.segs) {
		if f.err != nil {
			return 0, f.err
		}
		if f.flush != nil && !f.flush() {
			return 0, errStopped
		}
		f.fill()
	}
	from := f.segHead
	if f.segs[from].end-f.rpos <= len(p) {
		// As many whole events as p holds.
		for f.segHead+1 < len(f.segs) && f.segs[f.segHead+1].end-f.rpos <= len(p) {
			f.segHead++
		}
	}
	end := f.segs[f.segHead].end
	n := copy(p, f.buf[f.rpos:end])
	f.rpos += n
	if f.rpos == end {
		f.segHead++
		f.runFrom, f.runTo, f.runYields = from, f.segHead, 0
	}
	return n, nil
}

// fill reads from the body once. It is called when no complete event is buffered, so
// buf[rpos:wpos] is the start of an incomplete event.
func (f *feeder) fill() {
	f.segs, f.segHead = f.segs[:0], 0
	f.runFrom, f.runTo = 0, 0
	if f.rpos > 0 {
		n := copy(f.buf, f.buf[f.rpos:f.wpos])
		d := f.rpos
		f.rpos, f.wpos = 0, n
		f.scanned -= d
		f.segStart -= d
	}
	if f.wpos == len(f.buf) {
		size := max(2*len(f.buf), feederMinBuf)
		if size > f.max+1 && f.max+1 > len(f.buf) {
			size = f.max + 1
		}
		nb := make([]byte, size)
		copy(nb, f.buf[:f.wpos])
		f.buf = nb
	}
	if f.idle != nil {
		f.idle.arm()
	}
	n, err := f.r.Read(f.buf[f.wpos:])
	if f.idle != nil {
		f.idle.disarm()
	}
	if n > 0 {
		f.empties = 0
		f.wpos += n
		f.total += int64(n)
		f.scan()
	}
	switch {
	case err != nil:
		if f.err == nil {
			f.err = err
		}
	case n == 0:
		if f.empties++; f.empties > 100 {
			f.err = io.ErrNoProgress
		}
	}
}

// scan finds the ends of events in buf[scanned:wpos]. Lines end with CR, LF or CRLF; an event
// ends with a blank line after a non-blank one.
func (f *feeder) scan() {
	buf := f.buf[:f.wpos]
	if !f.pendingCR && bytes.IndexByte(buf[f.scanned:], '\r') < 0 {
		f.scanLF(buf)
	} else {
		f.scanAny(buf)
	}
	f.scanned = len(buf)
	if len(buf)-f.segStart > f.max && f.err == nil {
		f.err = &eventTooLargeError{max: f.max}
	}
}

// scanLF scans bytes without CR: an event ends at "\n\n", found with bytes.Index.
func (f *feeder) scanLF(buf []byte) {
	for i := f.scanned; i < len(buf); {
		if !f.midLine {
			if buf[i] == '\n' { // a blank line
				if f.content && !f.boundary(i+1) {
					return
				}
				i++
				continue
			}
			f.midLine, f.content = true, true
		}
		// Inside a non-blank line: every LF before the first "\n\n" ends a non-blank line.
		e := indexLFLF(buf, i) // the LF that ends the event's last line
		if e < 0 {
			f.midLine = buf[len(buf)-1] != '\n'
			return
		}
		if !f.boundary(e + 2) {
			return
		}
		f.midLine = false
		i = e + 2
	}
}

// indexLFLF returns the index of the first "\n\n" in buf[i:], or -1. A short event is found by a
// plain loop; a long one with IndexByte.
func indexLFLF(buf []byte, i int) int {
	for short := min(i+64, len(buf)-1); i < short; i++ {
		if buf[i] == '\n' && buf[i+1] == '\n' {
			return i
		}
	}
	for {
		k := bytes.IndexByte(buf[i:], '\n')
		if k < 0 || i+k+1 >= len(buf) {
			return -1
		}
		if i += k; buf[i+1] == '\n' {
			return i
		}
		i++
	}
}

// scanAny scans bytes line by line, for streams with CR or CRLF line ends.
func (f *feeder) scanAny(buf []byte) {
	for i := f.scanned; i < len(buf); {
		j := lineEnd(buf, i)
		if j > i {
			f.midLine, f.pendingCR, f.content = true, false, true
			if j == len(buf) {
				return
			}
		}
		c := buf[j]
		if c == '\n' && f.pendingCR {
			f.pendingCR = false
			i = j + 1
			continue
		}
		if !f.midLine {
			if f.content && !f.boundary(j+1) {
				return
			}
		} else {
			f.midLine = false
		}
		f.pendingCR = c == '\r'
		i = j + 1
	}
}

// boundary records an event that ends just before end. It reports false when the event is over
// the limit.
func (f *feeder) boundary(end int) bool {
	if end-f.segStart > f.max {
		f.err = &eventTooLargeError{max: f.max}
		return false
	}
	f.segs = append(f.segs, segment{start: f.segStart, end: end, first: !f.sawEvent})
	f.sawEvent = true
	f.segStart = end
	f.content = false
	return true
}

// emptyEventHasData tells, for an event with empty data that go-sse has just yielded, whether its
// block has a data field: go-sse yields an empty event both for "data:" and for a block with no
// data field at all ("event: x"), which the WHATWG rules do not dispatch. The event is the
// runYields-th that go-sse yielded from the events the last Read handed over; the blocks that
// go-sse yields for are found with its own rules. It runs only for empty events.
func (f *feeder) emptyEventHasData() bool {
	k := f.runYields
	for _, sg := range f.segs[f.runFrom:f.runTo] {
		yields, hasData := f.fields(sg)
		if yields {
			if k--; k == 0 {
				return hasData
			}
		}
	}
	return true // not found: show the event rather than lose it
}

// fields reads an event's fields as go-sse does, and reports whether go-sse yields it (it has a
// data or event field, or an id field without NUL) and whether it has a data field.
func (f *feeder) fields(sg segment) (yields, hasData bool) {
	b := f.buf[sg.start:sg.end]
	first := sg.first
	for len(b) > 0 {
		j := lineEnd(b, 0)
		if line := b[:j]; len(line) > 0 {
			if first {
				line, first = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF")), false
			}
			name, value := line, []byte(nil)
			if c := bytes.IndexByte(line, ':'); c > 5 {
				name = nil // go-sse skips a line whose colon comes after the longest field name
			} else if c >= 0 {
				name, value = line[:c], line[c+1:]
			}
			switch string(name) {
			case "data":
				return true, true
			case "event":
				yields = true
			case "id":
				yields = yields || bytes.IndexByte(value, 0) < 0
			}
		}
		if j == len(b) {
			break
		}
		if b[j] == '\r' && j+1 < len(b) && b[j+1] == '\n' {
			j++
		}
		b = b[j+1:]
	}
	return yields, false
}

// lineEnd returns the index of the first CR or LF in buf[i:], or len(buf). Short lines are
// scanned byte by byte; the rest of a long line with IndexByte, so each byte is looked at no
// more than twice.
func lineEnd(buf []byte, i int) int {
	short := min(i+32, len(buf))
	for k := i; k < short; k++ {
		if c := buf[k]; c == '\n' || c == '\r' {
			return k
		}
	}
	rest := buf[short:]
	if k := bytes.IndexByte(rest, '\n'); k >= 0 {
		rest = rest[:k]
	}
	if k := bytes.IndexByte(rest, '\r'); k >= 0 {
		return short + k
	}
	return short + len(rest)
}

// truncated is the error of a body that ended, or failed, before the final event. parseErr
// is the error go-sse stopped with, nil at a clean end of the body.
func (f *feeder) truncated(parseErr error) error {
	errs := []error{ErrStreamTruncated, io.ErrUnexpectedEOF}
	readErr := f.err
	if readErr == io.EOF {
		readErr = nil
	}
	if readErr == nil && parseErr != nil && parseErr != io.EOF {
		readErr = parseErr
	}
	var msg string
	if readErr != nil {
		errs = append(errs, readErr)
		msg = fmt.Sprintf("stream truncated: reading the body failed after %d bytes, before [DONE] or [ERROR]: %v", f.total, readErr)
	} else {
		msg = fmt.Sprintf("stream truncated: the body ended after %d bytes without [DONE] or [ERROR]", f.total)
		if f.content {
			msg += fmt.Sprintf(" (it ended inside an event; its %d bytes were discarded)", f.wpos-f.segStart)
		}
	}
	return &streamError{msg: msg, errs: errs}
}

// uriUnreserved marks the bytes JavaScript's encodeURIComponent leaves as they are.
var uriUnreserved = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.!~*'()" {
		t[c] = true
	}
	return t
}()

// decodePayload decodes a payload percent-encoded by encodeURIComponent: one made only of
// A-Z a-z 0-9 - _ . ! ~ * ' ( ) and valid %XX escapes. Any other payload is plain text and is
// returned as it is. A payload without '%' is returned without allocating; an encoded one costs
// one allocation. The result is what url.PathUnescape returns.
func decodePayload(s string) string {
	first, escapes, ok := percentEncoded(s)
	if !ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) - 2*escapes)
	writeDecoded(&b, s, first)
	return b.String()
}

// percentEncoded reports whether s is percent-encoded text to decode: it has a '%' (the first
// at first), and only unreserved bytes and valid escapes (escapes of them).
func percentEncoded(s string) (first, escapes int, ok bool) {
	first = strings.IndexByte(s, '%')
	if first < 0 {
		return 0, 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return 0, 0, false
			}
			escapes++
			i += 2
			continue
		}
		if !uriUnreserved[c] {
			return 0, 0, false
		}
	}
	return first, escapes, true
}

// writeDecoded writes s, which percentEncoded accepted, decoded to b.
func writeDecoded(b *strings.Builder, s string, first int) {
	b.WriteString(s[:first])
	for i := first; i < len(s); {
		if s[i] == '%' {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 3
			continue
		}
		j := strings.IndexByte(s[i:], '%')
		if j < 0 {
			j = len(s) - i
		}
		b.WriteString(s[i : i+j])
		i += j
	}
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
