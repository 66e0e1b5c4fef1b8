package laburen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/laburen/laburen-go/internal/eventstream"
)

// EventType is the type of a stream event: the name in its "event:" field.
type EventType string

// The event types of a streamed answer; other names are kept as they came.
const (
	EventAnswer           EventType = "answer"            // a piece of the answer, in Text
	EventEndpointResponse EventType = "endpoint_response" // the response object, in Response
	EventToolCall         EventType = "tool_call"         // a JSON object, in Data
	EventMessage          EventType = "message"           // an event without a name
)

// ErrStreamClosed matches Err of a stream that Close ended before its end.
var ErrStreamClosed = errors.New("laburen: stream closed")

// StreamEvent is one event of a streamed answer.
type StreamEvent struct {
	Type     EventType
	Text     string         // an EventAnswer's text, decoded; empty for other types
	Response *QueryResponse // an EventEndpointResponse's object; nil for other types
	Data     string         // the payload, percent-decoded when it was encoded
	Raw      string         // the payload as received
}

// QueryStream streams an agent's answer. It returns when the headers arrive (an error status
// as an *APIError); ctx bounds the whole stream. Always Close it.
func (c *Client) QueryStream(ctx context.Context, agentID string, req QueryRequest, opts ...Option) (*Stream, error) {
	op := "stream query agent " + strconv.Quote(agentID)
	cfg, r, err := c.queryRequest(agentID, &req, true, opts)
	if err != nil {
		return nil, opError(op, err)
	}
	return c.openStream(ctx, op, cfg, r)
}

// AgentQueryStream is AgentQuery with the reply streamed as in QueryStream.
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
		s := newStream(ctx, sctx, cancel, op, res.StatusCode, res.Body, cfg, r.obs)
		s.path, s.header = urlPath(cfg.baseURL+r.path), redactHeader(res.Header, cfg.redact)
		return s, nil
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		defer cancel(nil)
		var qr QueryResponse
		if err := decodeResponse(res, cfg, &qr); err != nil {
			return nil, opError(op, err)
		}
		return finishedStream(op, res.StatusCode, &qr), nil
	default:
		defer cancel(nil)
		defer res.Body.Close()
		start, _ := readBody(res, 200, cfg.streamIdleTimeout) // the start is enough: no drain
		return nil, opError(op, fmt.Errorf("HTTP %d with Content-Type %q is not an event stream; body starts %q",
			res.StatusCode, ct, cfg.redact(string(start), 200)))
	}
}

// Stream is a streamed answer, read by one goroutine at a time (Next, Current, Answer, Err);
// Close and Response may be called from any. An ended stream releases its connection by itself.
type Stream struct {
	op          string
	path        string      // the request's URL path and the response's headers, for an [ERROR] event
	header      http.Header // with the API key redacted
	status      int
	redact      func(string, int) string // config.redact: hides the API key in server text
	obs         *observation             // told of the first answer event and of the end; nil when unobserved
	once        sync.Once                // releases the connection
	dec         *eventstream.Decoder     // used by whoever holds reading
	reading     atomic.Int32             // free, busy (Next, Current, Answer or Err runs) or released (by Close)
	concurrent  atomic.Bool              // a Next was called while another ran
	ended       atomic.Bool              // Next returns false from now on
	resp        atomic.Pointer[QueryResponse]
	parent, ctx context.Context // the caller's context, and the request's derived from it
	cancel      context.CancelCauseFunc
	closed      atomic.Bool // Close was called
	afterDone   chan struct{}
	body        io.ReadCloser
	idle        *time.Timer // cancels ctx when a read waits longer than the idle timeout
	idleErr     error
	maxEvent    int // WithMaxEventSize and WithMaxAnswerSize
	maxAnswer   int
	drainWait   time.Duration
	// Owned by whoever holds reading; fixed once ended is set.
	finished bool  // the final [DONE] arrived
	err      error // why the stream ended, wrapped with op; nil after [DONE]
	inPiece  bool
	ev       StreamEvent // the current event, unless inPiece: then it is an answer piece,
	piece    [2]int      // answer[piece[0]:piece[1]], and its text as received when it
	raw      string      // was percent-encoded
	answer   strings.Builder
	synth    []StreamEvent // the events of a finished stream (a JSON answer)
}

// newStream wraps the body of an event stream; sctx is the request's context, derived from parent.
func newStream(parent, sctx context.Context, cancel context.CancelCauseFunc, op string, status int, body io.ReadCloser, cfg *config, obs *observation) *Stream {
	body = hideBody(body)
	s := &Stream{op: op, status: status, parent: parent, ctx: sctx, cancel: cancel, obs: obs,
		body: body, maxEvent: cfg.maxEventSize, maxAnswer: cmp.Or(cfg.maxAnswerSize, DefaultMaxAnswerSize),
		afterDone: make(chan struct{}), redact: cfg.redact}
	var read io.Reader = body
	drain := drainTimeout
	if d := cfg.streamIdleTimeout; d > 0 {
		s.idleErr = &streamError{msg: fmt.Sprintf("no data arrived for %v, the stream stalled (WithStreamIdleTimeout)", d),
			errs: []error{context.DeadlineExceeded, errStreamIdle}}
		s.idle = time.AfterFunc(time.Hour, func() { cancel(s.idleErr) })
		s.idle.Stop()
		read, drain = timedReader{r: body, t: s.idle, d: d}, min(drain, d)
	}
	s.drainWait = cmp.Or(cfg.drainTimeout, drain)
	s.dec = eventstream.NewDecoder(read, cfg.maxEventSize)
	// Closing the body ends a waiting Read even where the transport ties it to no context.
	context.AfterFunc(sctx, func() {
		body.Close()
		close(s.afterDone)
		if parent.Err() != nil { // observe: the caller ended the call, whether or not a Next follows
			s.obs.end(opError(op, interrupted(parent)), s.resp.Load())
		}
	})
	return s
}

// timedReader runs the idle timer t while a read waits.
type timedReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (t timedReader) Read(p []byte) (int, error) {
	t.t.Reset(t.d)
	defer t.t.Stop()
	return t.r.Read(p)
}

// finishedStream is a stream whose whole response is already known.
func finishedStream(op string, status int, res *QueryResponse) *Stream {
	s := &Stream{op: op, status: status, cancel: func(error) {}}
	s.once.Do(func() {}) // nothing to release
	if res.Answer != "" {
		s.synth = append(s.synth, StreamEvent{Type: EventAnswer, Text: res.Answer, Data: res.Answer, Raw: res.Answer})
	}
	raw := string(res.Raw)
	s.synth = append(s.synth, StreamEvent{Type: EventEndpointResponse, Response: res, Data: raw, Raw: raw})
	return s
}

// The states of Stream.reading.
const (
	free int32 = iota
	busy
	released // for good: Close let go of the buffers
)

var (
	errDrainTimeout   = errors.New("the body did not end after the final event")
	errConcurrentNext = errors.New("Next called while another Next ran: a stream has one reader at a time")
	errClosed         = &streamError{msg: "stream closed before its end", errs: []error{ErrStreamClosed}}
)

// Next advances to the next event (see Current). It returns false at the end: after [DONE],
// or on a failure that Err reports.
func (s *Stream) Next() bool {
	if !s.reading.CompareAndSwap(free, busy) {
		s.misuse()
		return false
	}
	defer s.reading.Store(free)
	switch {
	case s.ended.Load():
		return false
	case s.synth != nil:
		return s.nextSynthetic()
	}
	var err error
	for s.ctx.Err() == nil { // Close, the caller's context, the idle timer or a misuse ends it
		var typ, data []byte
		if typ, data, err = s.dec.Next(); err != nil {
			break
		}
		if s.show(typ, data) {
			return true
		}
		if s.ended.Load() {
			return false
		}
	}
	s.end(s.failure(err))
	return false
}

func (s *Stream) nextSynthetic() bool {
	if s.closed.Load() || len(s.synth) == 0 {
		s.synth, s.finished = nil, !s.closed.Load()
		s.ended.Store(true)
		return false
	}
	s.ev, s.synth, s.inPiece = s.synth[0], s.synth[1:], false
	s.answer.WriteString(s.ev.Text) // empty but for an answer
	s.resp.Store(s.ev.Response)     // nil but for the endpoint_response, which comes last
	return true
}

// misuse ends a live stream that a goroutine reads while another's Next runs.
func (s *Stream) misuse() {
	if !s.closed.Load() && !s.ended.Load() {
		s.concurrent.Store(true)
		s.cancel(errConcurrentNext) // ends the other Next's read
	}
}

// show interprets one event. It reports whether the event is shown to the caller; an event
// that ends the stream calls end.
func (s *Stream) show(typ, data []byte) bool {
	if string(typ) == "answer" {
		return s.showAnswer(data)
	}
	raw := string(data)
	ev := StreamEvent{Type: cmp.Or(EventType(typ), EventMessage), Data: decodePayload(raw), Raw: raw}
	switch {
	case ev.Type == EventMessage && ev.Data == "[DONE]":
		s.drain()
		s.end(nil)
		return false
	case ev.Type == EventMessage && strings.HasPrefix(ev.Data, "[ERROR]"):
		s.drain()
		s.end(s.inBandError(ev.Data[len("[ERROR]"):], raw))
		return false
	case ev.Type == EventEndpointResponse:
		var res QueryResponse
		if err := decodeOwnedJSON([]byte(ev.Data), &res); err != nil {
			s.end(fmt.Errorf("decode endpoint_response event: %w; data starts %q", err, s.redact(ev.Data, 200)))
			return false
		}
		ev.Response = &res
		s.resp.Store(&res)
	}
	s.ev, s.inPiece = ev, false
	return true
}

// showAnswer appends an answer piece, decoded, to the answer. The event's text is the answer's
// new tail, which a strings.Builder never changes: a plain piece costs no allocation, and
// Current builds its StreamEvent.
func (s *Stream) showAnswer(data []byte) bool {
	s.obs.firstAnswer() // observe: the first answer event
	start := s.answer.Len()
	escapes, encoded := percentEncoded(data)
	if len(data)-2*escapes > s.maxAnswer-start {
		s.end(&tooLargeError{what: "the answer", option: "WithMaxAnswerSize", max: s.maxAnswer})
		return false
	}
	if !encoded {
		s.answer.Write(data)
	} else {
		writeDecoded(&s.answer, data, escapes)
	}
	s.piece, s.inPiece, s.raw = [2]int{start, s.answer.Len()}, true, ""
	if encoded {
		s.raw = string(data) // the one allocation of an encoded piece
	}
	return true
}

const maxDrain, drainTimeout = 4 << 10, 100 * time.Millisecond // what drain reads, how long

// drain reads what is left of the body after the final [DONE] or [ERROR] event, so that the
// connection returns to the pool: an HTTP/1.1 connection whose body is closed before its end
// is closed with it. A server that keeps the body open costs drainTimeout, and the connection.
// Close and the context end drain as they end a read of Next.
func (s *Stream) drain() {
	if s.dec.Err() != nil || s.ctx.Err() != nil {
		return // the body has ended or failed already, or the stream is being stopped
	}
	t := time.AfterFunc(s.drainWait, func() { s.cancel(errDrainTimeout) }) // closes the body
	io.Copy(io.Discard, io.LimitReader(s.body, maxDrain))
	t.Stop()
}

// inBandError is the *APIError of an "[ERROR]..." event.
func (s *Stream) inBandError(msg, raw string) error {
	msg, raw = s.redact(msg, -1), s.redact(raw, -1)
	e := &APIError{StatusCode: s.status, Body: raw, Method: http.MethodPost, Path: s.path,
		RequestID: requestID(s.header), Header: s.header, inStream: true, hint: "sent as an [ERROR] event in the stream"}
	e.Code, e.Message = splitText(oneLine(msg, maxErrorMessage))
	if e.Code == "" && e.Message == "" {
		e.Message = "the server reported an error without a code or message"
	}
	return e
}

// failure explains why the stream stopped without its final event; err is the decoder's.
func (s *Stream) failure(err error) error {
	switch {
	case s.concurrent.Load():
		return errConcurrentNext
	case s.closed.Load():
		return errClosed
	case s.parent.Err() != nil:
		return interrupted(s.parent)
	case s.idle != nil && context.Cause(s.ctx) == s.idleErr:
		return s.idleErr
	case err == eventstream.ErrTooLarge:
		return &tooLargeError{what: "an event", option: "WithMaxEventSize", max: s.maxEvent}
	}
	read, pending := s.dec.Read()
	errs := []error{ErrStreamTruncated, io.ErrUnexpectedEOF}
	if err != nil && err != io.EOF {
		return &streamError{errs: append(errs, err), msg: fmt.Sprintf(
			"stream truncated: reading the body failed after %d bytes, before [DONE] or [ERROR]: %v", read, err)}
	}
	msg := fmt.Sprintf("stream truncated: the body ended after %d bytes without [DONE] or [ERROR]", read)
	if n := pending; n > 0 {
		msg += fmt.Sprintf(" (it ended inside an event; its %d bytes were discarded)", n)
	}
	return &streamError{msg: msg, errs: errs}
}

// interrupted is the error of a stream whose caller's context ended.
func interrupted(parent context.Context) error {
	if cause := context.Cause(parent); cause != parent.Err() {
		return fmt.Errorf("stream interrupted: %w (%w)", parent.Err(), cause)
	}
	return fmt.Errorf("stream interrupted: %w", parent.Err())
}

// end records how the stream ended (err is nil after [DONE]) and releases it; every end does.
func (s *Stream) end(err error) {
	if s.finished = err == nil; err != nil {
		s.err = opError(s.op, err)
	}
	s.ended.Store(true)
	s.obs.end(s.err, s.resp.Load()) // observe: how the stream ended
	s.release()
	s.dec.Release()
}

// release frees the timer, the body and the context, once.
func (s *Stream) release() {
	s.once.Do(func() {
		if s.idle != nil {
			s.idle.Stop()
		}
		s.cancel(context.Canceled)
		<-s.afterDone // the context's AfterFunc has closed the body
	})
}

// Current returns the event Next advanced to (after the end, the last one; see view).
func (s *Stream) Current() (ev StreamEvent) {
	s.view(func() {
		if ev = s.ev; s.inPiece {
			a := s.answer.String()
			text := a[min(s.piece[0], len(a)):min(s.piece[1], len(a))]
			ev = StreamEvent{Type: EventAnswer, Text: text, Data: text, Raw: cmp.Or(s.raw, text)}
		}
	})
	return ev
}

// view runs f, which reads what Next writes, unless a Next runs in another goroutine: then f
// does not run, and a live stream ends as when a second Next is called. Once the stream has
// ended, or Close let go of it (waiting for a Next that it ended), f runs as it is.
func (s *Stream) view(f func()) {
	for s.closed.Load() && !s.ended.Load() && s.reading.Load() == busy {
		runtime.Gosched()
	}
	switch {
	case s.ended.Load() || s.reading.Load() == released:
		f()
	case s.reading.CompareAndSwap(free, busy):
		f()
		s.reading.Store(free)
	default:
		s.misuse()
	}
}

// Err returns why the stream ended: nil while it runs and after [DONE], else an *APIError or an
// error matching ErrStreamTruncated, ErrStreamClosed or ctx's (see Current).
func (s *Stream) Err() (err error) {
	s.view(func() {
		if err = s.err; err == nil && !s.finished && s.closed.Load() {
			err = opError(s.op, errClosed)
		}
	})
	if s.concurrent.Load() {
		return opError(s.op, errConcurrentNext)
	}
	return err
}

// Answer returns the answer text joined so far; "" when called while a Next runs (see Current).
func (s *Stream) Answer() (answer string) {
	s.view(func() { answer = s.answer.String() })
	return answer
}

// Response returns the endpoint_response object, or nil before it.
func (s *Stream) Response() *QueryResponse { return s.resp.Load() }

// Close ends the stream and releases it, from any goroutine; it always returns nil.
func (s *Stream) Close() error {
	s.closed.Store(true)
	s.obs.end(opError(s.op, errClosed), s.resp.Load()) // observe: closed before its end (after it, nothing)
	s.release()
	if s.dec != nil && s.reading.CompareAndSwap(free, released) { // no Next runs, nor will
		s.dec.Release()
	}
	return nil
}

// Text ranges over the answer's pieces, then closes the stream; a failure comes last as ("", err).
func (s *Stream) Text() iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		defer s.Close()
		for s.Next() {
			if text := s.Current().Text; text != "" && !yield(text, nil) {
				return
			}
		}
		if err := s.Err(); err != nil {
			yield("", err)
		}
	}
}

// Final reads to the end and returns the endpoint_response, Answer set from the text if empty.
func (s *Stream) Final() (*QueryResponse, error) {
	for s.Next() {
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	var res QueryResponse
	if r := s.resp.Load(); r != nil {
		res = *r
	}
	if res.Answer == "" {
		res.Answer = s.Answer()
	}
	return &res, nil
}

// decodePayload decodes a payload percent-encoded by encodeURIComponent: one made only of
// A-Z a-z 0-9 - _ . ! ~ * ' ( ) and valid %XX escapes. Any other payload is plain text and is
// returned as it is, without allocating; an encoded one costs one allocation. The result is
// what url.PathUnescape returns.
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
		switch c := s[i]; {
		case c == '%' && i+2 < len(s) && unhex(s[i+1]) < 16 && unhex(s[i+2]) < 16:
			escapes, i = escapes+1, i+2
		case c == '%' || !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-_.!~*'()", c) >= 0):
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
			c, i = unhex(s[i+1])<<4|unhex(s[i+2]), i+2
		}
		b.WriteByte(c)
	}
}

// unhex returns the value of a hex digit, or 16 for another byte.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 16
}
