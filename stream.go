package laburen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/laburen/laburen-go/internal/eventstream"
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
		return newStream(ctx, sctx, cancel, op, res.StatusCode, res.Body, cfg), nil
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		defer cancel(nil)
		defer res.Body.Close()
		body, err := readBody(res, cfg.maxEventSize)
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
// Next, Current, Err, Answer, Response, Text and Final belong to one goroutine at a time: a
// Next called while another runs ends the stream with an error saying so. Close may be called
// from any goroutine, any number of times: it ends a Next that is waiting for data at once. The
// stream also releases its connection and its buffers by itself when it ends.
type Stream struct {
	op     string
	status int

	// mu guards the decoder and the resources: Next holds it while the decoder runs (and may
	// wait for the body), Close while it releases them.
	mu       sync.Mutex
	released bool // the connection, buffers and timer are released (under mu)
	dec      *eventstream.Decoder

	reading    atomic.Bool // a Next is running
	concurrent atomic.Bool // a Next was called while another ran

	// The fields below belong to the goroutine that calls Next.
	ended    bool  // Next returns false from now on
	finished bool  // the final [DONE] event arrived
	err      error // why the stream ended, wrapped with op; nil after [DONE]

	// The current event. The Raw of a percent-encoded answer piece is built by Current from
	// raw, so that an answer piece costs no allocation.
	ev         StreamEvent
	raw        []byte
	rawPending bool
	answer     strings.Builder
	maxAnswer  int
	resp       *QueryResponse

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
	idle      *idleTimer
	maxEvent  int
	drainWait time.Duration // the bound of drain
}

// newStream wraps the body of an event stream. sctx is the request's context, derived from
// parent; cancel cancels it (and with it the body).
func newStream(parent, sctx context.Context, cancel context.CancelCauseFunc, op string, status int, body io.ReadCloser, cfg *config) *Stream {
	s := &Stream{
		op:        op,
		status:    status,
		parent:    parent,
		done:      parent.Done(),
		cancel:    cancel,
		body:      body,
		maxEvent:  cfg.maxEventSize,
		maxAnswer: cfg.maxAnswerSize,
		afterDone: make(chan struct{}),
	}
	if s.maxAnswer <= 0 {
		s.maxAnswer = DefaultMaxAnswerSize
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
	s.dec = eventstream.NewDecoder(timedReader{body, s.idle}, cfg.maxEventSize)
	// Closing the body ends a Read that is waiting for data even when the transport does not
	// tie the body to the request's context.
	s.stopAfter = context.AfterFunc(sctx, func() {
		s.ctxDone.Store(true)
		body.Close()
		close(s.afterDone)
	})
	return s
}

// timedReader runs the idle timer while a read of the body waits.
type timedReader struct {
	r    io.Reader
	idle *idleTimer
}

func (t timedReader) Read(p []byte) (int, error) {
	if t.idle == nil {
		return t.r.Read(p)
	}
	t.idle.arm()
	defer t.idle.disarm()
	return t.r.Read(p)
}

// finishedStream is a stream whose whole response is already known.
func finishedStream(op string, status int, res *QueryResponse) *Stream {
	s := &Stream{op: op, status: status, released: true}
	if res.Answer != "" {
		s.synth = append(s.synth, StreamEvent{Type: EventAnswer, Text: res.Answer, Data: res.Answer, Raw: res.Answer})
	}
	raw := string(res.Raw)
	s.synth = append(s.synth, StreamEvent{Type: EventEndpointResponse, Response: res, Data: raw, Raw: raw})
	return s
}

// errConcurrentNext ends a stream whose Next was called while another Next ran.
var errConcurrentNext = errors.New("Next called concurrently from two goroutines (a stream has one reader)")

// Next advances to the next event and reports whether there is one; read it with Current.
// Next returns false when the stream ends: after the final [DONE] event (Err is nil), or on
// any failure, an [ERROR] event, a cut-off body, a cancelled context, the idle timeout or Close
// (Err says which). Blocks with no data field, and the [DONE] and [ERROR] events, are not
// shown as events.
func (s *Stream) Next() bool {
	if !s.reading.CompareAndSwap(false, true) {
		s.concurrent.Store(true)
		if s.cancel != nil {
			s.cancel(errConcurrentNext) // ends the other Next's read
		}
		return false
	}
	defer s.reading.Store(false)
	if s.ended {
		return false
	}
	if s.synth != nil {
		return s.nextSynthetic()
	}
	for !s.interrupted() {
		typ, data, err := s.decode()
		if err != nil {
			break
		}
		if s.show(typ, data) {
			return true
		}
		if s.ended {
			return false
		}
	}
	s.end(s.failure())
	return false
}

// decode returns the next event from the decoder, unless Close released the stream.
func (s *Stream) decode() (typ, data []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return nil, nil, io.EOF
	}
	return s.dec.Next()
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
	s.ev, s.synth = s.synth[0], s.synth[1:]
	switch s.ev.Type {
	case EventAnswer:
		s.answer.WriteString(s.ev.Text)
	case EventEndpointResponse:
		s.resp = s.ev.Response
	}
	return true
}

// eventType names an event by its "event" field.
func eventType(typ []byte) EventType {
	switch string(typ) {
	case "", "message":
		return EventMessage
	case "answer":
		return EventAnswer
	case "endpoint_response":
		return EventEndpointResponse
	case "tool_call":
		return EventToolCall
	}
	return EventType(typ)
}

// show interprets one event. It reports whether the event is shown to the caller; when the
// event ends the stream it calls end.
func (s *Stream) show(typ, data []byte) bool {
	s.rawPending = false
	t := eventType(typ)
	if t == EventAnswer {
		return s.showAnswer(data)
	}
	raw := string(data)
	s.ev = StreamEvent{Type: t, Data: decodePayload(raw), Raw: raw}
	switch t {
	case EventMessage:
		if s.ev.Data == "[DONE]" {
			s.drain()
			s.end(nil)
			return false
		}
		if msg, ok := strings.CutPrefix(s.ev.Data, "[ERROR]"); ok {
			s.drain()
			s.end(s.inBandError(msg, raw))
			return false
		}
	case EventEndpointResponse:
		res, err := decodeResponse(s.ev.Data)
		if err != nil {
			s.end(fmt.Errorf("decode endpoint_response event: %w; data starts %q", err, shorten(s.ev.Data, 200)))
			return false
		}
		s.resp, s.ev.Response = res, res
	}
	return true
}

// showAnswer appends an answer piece, decoded, to the answer. The event's text is the
// answer's new tail, which a strings.Builder never changes, so a piece costs no allocation.
func (s *Stream) showAnswer(data []byte) bool {
	start := s.answer.Len()
	escapes, encoded := percentEncoded(data)
	if n := len(data) - 2*escapes; n > s.maxAnswer-start {
		s.end(&answerTooLargeError{max: s.maxAnswer})
		return false
	}
	if encoded {
		writeDecoded(&s.answer, data, escapes)
		s.raw, s.rawPending = append(s.raw[:0], data...), true
	} else {
		s.answer.Write(data)
	}
	text := s.answer.String()[start:]
	s.ev = StreamEvent{Type: EventAnswer, Text: text, Data: text}
	if !encoded {
		s.ev.Raw = text
	}
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
// a new connection (TCP and TLS handshakes). It runs on the goroutine of Next; Close and the
// context end it as they end a read of Next.
func (s *Stream) drain() {
	if s.dec.Err() != nil || s.interrupted() {
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
	e := &APIError{StatusCode: s.status, Body: raw, hint: "sent as an [ERROR] event in the stream"}
	e.Code, e.Message = splitText(oneLine(msg, maxErrorMessage))
	if e.Code == "" && e.Message == "" {
		e.Message = "the server reported an error without a code or message"
	}
	return e
}

// failure explains why the stream stopped without its final event.
func (s *Stream) failure() error {
	switch {
	case s.concurrent.Load():
		return errConcurrentNext
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
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.dec.Err()
	errs := []error{ErrStreamTruncated, io.ErrUnexpectedEOF}
	switch {
	case err == eventstream.ErrTooLarge:
		return &eventTooLargeError{max: s.maxEvent}
	case err != io.EOF:
		msg := fmt.Sprintf("stream truncated: reading the body failed after %d bytes, before [DONE] or [ERROR]: %v", s.dec.Read(), err)
		return &streamError{msg: msg, errs: append(errs, err)}
	}
	msg := fmt.Sprintf("stream truncated: the body ended after %d bytes without [DONE] or [ERROR]", s.dec.Read())
	if n := s.dec.Pending(); n > 0 {
		msg += fmt.Sprintf(" (it ended inside an event; its %d bytes were discarded)", n)
	}
	return &streamError{msg: msg, errs: errs}
}

// end records how the stream ended and releases it. err is nil after [DONE]. Every ending of
// a stream read by Next goes through here.
func (s *Stream) end(err error) {
	s.ended = true
	if s.rawPending {
		s.ev.Raw, s.rawPending = string(s.raw), false
	}
	s.raw = nil
	if err == nil {
		s.finished = true
	} else {
		s.err = opError(s.op, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.release()
}

// release frees everything the stream holds: the timer, the body, the decoder's buffers and
// the context. It runs once, with s.mu held; it touches nothing that Next reads without the
// lock.
func (s *Stream) release() {
	if s.released {
		return
	}
	s.released = true
	if s.idle != nil {
		s.idle.stop()
	}
	if s.stopAfter() {
		s.body.Close()
	} else {
		<-s.afterDone // the context ended first: its AfterFunc closes the body
	}
	s.cancel(context.Canceled)
	s.dec.Release()
}

// Current returns the event Next advanced to; after the end of the stream, the last one.
func (s *Stream) Current() StreamEvent {
	if s.rawPending {
		s.ev.Raw, s.rawPending = string(s.raw), false
	}
	return s.ev
}

// Err returns why the stream ended: nil while it runs and after the final [DONE] event; an
// *APIError (matching ErrUsageLimit and the other sentinels) after an [ERROR] event; an error
// matching ErrStreamTruncated and io.ErrUnexpectedEOF when the body ended without either; the
// context's error; an error naming WithStreamIdleTimeout, WithMaxEventSize or
// WithMaxAnswerSize; one matching ErrStreamClosed after Close; or one saying that Next was
// called from two goroutines at once.
func (s *Stream) Err() error {
	if s.concurrent.Load() {
		return opError(s.op, errConcurrentNext)
	}
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

// answerTooLargeError reports an answer longer than WithMaxAnswerSize allows.
type answerTooLargeError struct{ max int }

func (e *answerTooLargeError) Error() string {
	return fmt.Sprintf("the answer is longer than %d bytes (raise the limit with WithMaxAnswerSize)", e.max)
}

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
			errs: []error{context.DeadlineExceeded},
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
	escapes, ok := percentEncoded(s)
	if !ok {
		return s
	}
	var b strings.Builder
	writeDecoded(&b, s, escapes)
	return b.String()
}

// percentEncoded reports whether s is percent-encoded text to decode: it has a '%', and only
// unreserved bytes and valid escapes, of which it counts the escapes.
func percentEncoded[T string | []byte](s T) (escapes int, ok bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return 0, false
			}
			escapes++
			i += 2
			continue
		}
		if !uriUnreserved[c] {
			return 0, false
		}
	}
	return escapes, escapes > 0
}

// writeDecoded writes s, which percentEncoded accepted with its escapes, decoded to b.
func writeDecoded[T string | []byte](b *strings.Builder, s T, escapes int) {
	b.Grow(len(s) - 2*escapes)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		b.WriteByte(c)
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
