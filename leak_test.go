package laburen

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// settle bounds the waits of the leak checks for goroutines and connections to wind down. The
// checks pass as soon as everything has ended; only a leak waits this long, and then fails.
const settle = 10 * time.Second

// eventually polls cond until it holds or settle has passed, and reports whether it held.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(settle)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(wait)
	}
}

// goroutineStacks returns the stacks of all goroutines by their ID, leaving out those of the
// testing package (test functions and the runner) and of the runtime alone.
func goroutineStacks() map[int]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := map[int]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		idText, ok := strings.CutPrefix(header, "goroutine ")
		if !ok {
			continue
		}
		idText, _, _ = strings.Cut(idText, " ")
		id, err := strconv.Atoi(idText)
		if err != nil || ownedByTesting(g) {
			continue
		}
		stacks[id] = g
	}
	return stacks
}

// ownedByTesting reports whether a goroutine belongs to the test framework or the runtime: a
// test function, the test runner, the -timeout alarm, the signal handler.
func ownedByTesting(stack string) bool {
	for _, s := range []string{"testing.tRunner", "testing.(*T).Run", "testing.(*M).", "testing.runTests",
		"runtime.ensureSigM", "os/signal.signal_recv"} {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}

// leakCheck records the goroutines that run now; the function it returns fails the test when
// goroutines started since are still running after a bounded wait.
func leakCheck(t *testing.T) func() {
	t.Helper()
	before := goroutineStacks()
	return func() {
		t.Helper()
		var left []string
		ok := eventually(func() bool {
			left = left[:0]
			for id, g := range goroutineStacks() {
				if _, old := before[id]; !old {
					left = append(left, g)
				}
			}
			return len(left) == 0
		})
		if !ok {
			sort.Strings(left)
			t.Errorf("%d goroutines left behind:\n\n%s", len(left), strings.Join(left, "\n\n"))
		}
	}
}

// connServer is an httptest server that tracks the state of every connection it accepted.
type connServer struct {
	*httptest.Server
	mu     sync.Mutex
	states map[net.Conn]http.ConnState
	order  []net.Conn
}

// newConnServer starts a server with handler and registers its Close with the test.
func newConnServer(t *testing.T, handler http.HandlerFunc) *connServer {
	t.Helper()
	s := &connServer{states: map[net.Conn]http.ConnState{}}
	s.Server = httptest.NewUnstartedServer(handler)
	s.Config.ConnState = func(c net.Conn, state http.ConnState) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, seen := s.states[c]; !seen {
			s.order = append(s.order, c)
		}
		s.states[c] = state
	}
	s.Start()
	t.Cleanup(s.Close)
	// Runs first: a connection the client leaked must not keep Close waiting.
	t.Cleanup(s.CloseClientConnections)
	return s
}

// conns returns the number of connections accepted so far.
func (s *connServer) conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.order)
}

// settled reports whether every connection is either closed or idle: none is still serving a
// request that the client has given up on.
func (s *connServer) settled(allowIdle bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.states {
		if st != http.StateClosed && (!allowIdle || st != http.StateIdle) {
			return false
		}
	}
	return true
}

// describe lists the connections' states, for a failure message.
func (s *connServer) describe() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for i, c := range s.order {
		b.WriteString("conn " + strconv.Itoa(i+1) + ": " + s.states[c].String() + "\n")
	}
	return b.String()
}

// leakFree runs fn against srv with a client of its own, then checks that nothing is left: every
// connection is closed or idle in the client's pool, and once the pool is emptied every
// connection is closed and no goroutine started since the check began is still running.
func leakFree(t *testing.T, srv *connServer, fn func(c *Client), opts ...Option) {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	hc := &http.Client{Transport: tr}
	check := leakCheck(t)
	base := []Option{WithBaseURL(srv.URL), WithAPIKey(testKey), WithHTTPClient(hc), WithMaxRetries(0)}
	c, err := NewClient(append(base, opts...)...)
	require.NoError(t, err)
	fn(c)
	assert.True(t, eventually(func() bool { return srv.settled(true) }),
		"a connection is still busy after the client is done:\n%s", srv.describe())
	hc.CloseIdleConnections()
	assert.True(t, eventually(func() bool { return srv.settled(false) }),
		"a connection is still open after the pool was emptied:\n%s", srv.describe())
	check()
}

// sseBody writes an event stream's headers and body, flushed.
func sseBody(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/event-stream")
	io.WriteString(w, body)
	w.(http.Flusher).Flush()
}

// withDrainTimeout sets the bound on the drain of a body after its final event.
func withDrainTimeout(d time.Duration) Option {
	return func(c *config) error {
		c.drainTimeout = d
		return nil
	}
}

// doneReader wraps a response body: it closes sawDone once a Read has returned the final
// event, and draining when the next Read (the drain's) begins. Either channel may be nil.
type doneReader struct {
	io.ReadCloser
	once, drainOnce   sync.Once
	sawDone, draining chan struct{}
	done              bool
}

func (d *doneReader) Read(p []byte) (int, error) {
	if d.done && d.draining != nil {
		d.drainOnce.Do(func() { close(d.draining) })
	}
	n, err := d.ReadCloser.Read(p)
	if bytes.Contains(p[:n], []byte("[DONE]")) {
		d.done = true
		if d.sawDone != nil {
			d.once.Do(func() { close(d.sawDone) })
		}
	}
	return n, err
}

// watchBodies returns an HTTP client for srv whose response bodies are wrapped by wrap.
func watchBodies(t *testing.T, srv *httptest.Server, wrap func(io.ReadCloser) io.ReadCloser) *http.Client {
	tr := srv.Client().Transport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		res, err := tr.RoundTrip(r)
		if err == nil {
			res.Body = wrap(res.Body)
		}
		return res, err
	})}
}

// TestStreamReusesTheConnection: a stream that ended with [DONE] gives its connection back to
// the pool, even when the end of the body (the last chunk) arrives only after the client has
// read [DONE]: the server here sends it only then. Without the drain after [DONE], every stream
// would pay a new connection.
func TestStreamReusesTheConnection(t *testing.T) {
	sawDone := make(chan chan struct{}, 1)
	srv := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		seen := make(chan struct{})
		sawDone <- seen
		sseBody(w, "event: answer\ndata: Hi\n\ndata: [DONE]\n\n")
		select { // the handler returns, and the server ends the body, once the client has [DONE]
		case <-seen:
		case <-r.Context().Done():
		}
	})
	hc := watchBodies(t, srv.Server, func(body io.ReadCloser) io.ReadCloser {
		return &doneReader{ReadCloser: body, sawDone: <-sawDone}
	})
	c, err := NewClient(WithBaseURL(srv.URL), WithHTTPClient(hc), withDrainTimeout(time.Hour))
	require.NoError(t, err)
	for i := range 3 {
		st, err := c.QueryStream(context.Background(), "a1", QueryRequest{Query: "Hi"})
		require.NoError(t, err)
		res, err := st.Final()
		require.NoError(t, err, "stream %d", i)
		assert.Equal(t, "Hi", res.Answer)
	}
	assert.Equal(t, 1, srv.conns(), "three streams in a row use one connection")
}

// stallAfter writes body as an event stream, closes sent, and holds the response open until the
// client goes away.
func stallAfter(body string, sent chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sseBody(w, body)
		close(sent)
		<-r.Context().Done()
	}
}

// readAll reads a stream to its end and returns its error.
func readAll(st *Stream) error {
	for st.Next() {
	}
	return st.Err()
}

// TestNoLeaks ends streams and calls in every way they can end, and checks that each leaves no
// goroutine and no busy connection behind; the ends that leave the connection reusable are
// checked to give it back to the pool.
func TestNoLeaks(t *testing.T) {
	const (
		events = "event: answer\ndata: Hel\n\nevent: answer\ndata: lo\n\n"
		done   = "data: [DONE]\n\n"
	)
	ctx := context.Background()
	open := func(c *Client) (*Stream, error) { return c.QueryStream(ctx, "a1", QueryRequest{Query: "Hi"}) }
	// stream opens a stream and ends it with end, returning the error of the stream. It does
	// not close the stream: a stream that ends releases itself.
	stream := func(end func(st *Stream) error) func(c *Client) error {
		return func(c *Client) error {
			st, err := open(c)
			if err != nil {
				return err
			}
			return end(st)
		}
	}
	// cancelled opens a stream with a context that ends once sent is closed: before the
	// response arrives, or after the first event.
	cancelled := func(sent chan struct{}, afterFirst bool) func(c *Client) error {
		return func(c *Client) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			stop := func() { <-sent; cancel() }
			if !afterFirst {
				go stop()
			}
			st, err := c.QueryStream(ctx, "a1", QueryRequest{Query: "Hi"})
			if err != nil {
				return err
			}
			if !st.Next() {
				return st.Err()
			}
			go stop()
			return readAll(st)
		}
	}
	json := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	// cut sends the start of a body and then drops the connection.
	cut := func(contentType, start string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			io.WriteString(w, start)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
	}
	query := func(ctx context.Context) func(c *Client) error {
		return func(c *Client) error {
			_, err := c.Query(ctx, "a1", QueryRequest{Query: "Hi"})
			return err
		}
	}
	sent := func() chan struct{} { return make(chan struct{}) }
	s1, s2, s3, s4, s5, s6, s7 := sent(), sent(), sent(), sent(), sent(), sent(), sent()
	var attempts int
	tests := []struct {
		name    string
		opts    []Option
		handler http.HandlerFunc
		run     func(c *Client) error
		is      error  // the error must match it; nil: no error
		msg     string // the error's message must contain it
		reuse   bool   // the connection goes back to the pool
	}{
		{name: "stream: [DONE]", handler: func(w http.ResponseWriter, r *http.Request) { sseBody(w, events+done) },
			run: stream(readAll), reuse: true},
		{name: "stream: Final", handler: func(w http.ResponseWriter, r *http.Request) { sseBody(w, events+done) },
			run: stream(func(st *Stream) error { _, err := st.Final(); return err }), reuse: true},
		{name: "stream: [ERROR]", handler: func(w http.ResponseWriter, r *http.Request) { sseBody(w, events+"data: [ERROR]USAGE_LIMIT\n\n") },
			run: stream(readAll), is: ErrUsageLimit, msg: "USAGE_LIMIT", reuse: true},
		{name: "stream: the body ends without [DONE]", handler: func(w http.ResponseWriter, r *http.Request) { sseBody(w, events) },
			run: stream(readAll), is: ErrStreamTruncated, msg: "the body ended after 49 bytes without [DONE] or [ERROR]", reuse: true},
		{name: "stream: the connection drops mid-event", handler: cut("text/event-stream", events+"event: answer\ndata: wor"),
			run: stream(readAll), is: ErrStreamTruncated, msg: "reading the body failed after 72 bytes"},
		{name: "stream: the server lingers after [DONE]", handler: stallAfter(events+done, s1),
			run: stream(readAll)},
		{name: "stream: context cancelled while Next waits", handler: stallAfter(events, s2),
			run: cancelled(s2, true), is: context.Canceled, msg: "stream interrupted: context canceled"},
		{name: "stream: idle timeout", opts: []Option{WithStreamIdleTimeout(20 * time.Millisecond)}, handler: stallAfter(events, sent()),
			run: stream(readAll), is: context.DeadlineExceeded, msg: "no data arrived for 20ms"},
		{name: "stream: Close from another goroutine", handler: stallAfter(events, s3),
			run: stream(func(st *Stream) error {
				go func() { <-s3; st.Close() }()
				return readAll(st)
			}), is: ErrStreamClosed, msg: "stream closed before its end"},
		{name: "stream: Close without reading", handler: stallAfter(events, sent()),
			run: stream(func(st *Stream) error { st.Close(); return readAll(st) }), is: ErrStreamClosed},
		{name: "stream: break out of Text", handler: stallAfter(events, sent()),
			run: stream(func(st *Stream) error {
				for range st.Text() {
					break
				}
				return st.Err()
			}), is: ErrStreamClosed},
		{name: "stream: an event over WithMaxEventSize", opts: []Option{WithMaxEventSize(1024)},
			handler: stallAfter("event: answer\ndata: "+strings.Repeat("x", 4096), sent()),
			run:     stream(readAll), msg: "an event is larger than 1024 bytes"},
		{name: "stream: error status before the stream", handler: json(500, `{"error":"INTERNAL_SERVER_ERROR"}`),
			run: stream(readAll), is: ErrServer, msg: "HTTP 500 Internal Server Error", reuse: true},
		{name: "stream: 503 retried, then [DONE]", opts: []Option{WithMaxRetries(1), withSleep(func(context.Context, time.Duration) error { return nil })},
			handler: func(w http.ResponseWriter, r *http.Request) {
				if attempts++; attempts == 1 {
					json(503, `{"error":"busy"}`)(w, r)
					return
				}
				sseBody(w, events+done)
			},
			run: stream(readAll), reuse: true},
		{name: "stream: an HTML page instead", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html>"+strings.Repeat("<p>Log in</p>", 1000)+"</html>")
		}, run: stream(readAll), msg: `HTTP 200 with Content-Type "text/html" is not an event stream`},
		{name: "stream: a JSON answer instead", handler: json(200, `{"answer":"Hello"}`),
			run: stream(readAll), reuse: true},
		{name: "stream: context cancelled before the headers", handler: func(w http.ResponseWriter, r *http.Request) {
			close(s4)
			<-r.Context().Done()
		}, run: cancelled(s4, false), is: context.Canceled},
		{name: "query: error status", handler: json(500, `{"error":"INTERNAL_SERVER_ERROR"}`),
			run: query(ctx), is: ErrServer, msg: "HTTP 500 Internal Server Error: INTERNAL_SERVER_ERROR", reuse: true},
		{name: "query: a 2xx that is not JSON", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html>hi</html>")
		}, run: query(ctx), msg: `decode response (HTTP 200, Content-Type "text/html"): not a JSON object`, reuse: true},
		{name: "query: the connection drops mid-body", handler: cut("application/json", `{"answer":"Hel`),
			run: query(ctx), is: io.ErrUnexpectedEOF, msg: "read response (HTTP 200): unexpected EOF"},
		{name: "query: a body over WithMaxEventSize", opts: []Option{WithMaxEventSize(1024)},
			handler: json(200, `{"answer":"`+strings.Repeat("x", 64<<10)+`"}`),
			run:     query(ctx), msg: "response body exceeds 1024 bytes (raise WithMaxEventSize)"},
		{name: "query: context cancelled before the headers", handler: func(w http.ResponseWriter, r *http.Request) {
			close(s5)
			<-r.Context().Done()
		}, run: func(c *Client) error {
			ctx, cancel := context.WithCancel(ctx)
			go func() { <-s5; cancel() }()
			return query(ctx)(c)
		}, is: context.Canceled},
		{name: "query: context cancelled while the body is read", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"answer":"Hel`)
			w.(http.Flusher).Flush()
			close(s6)
			<-r.Context().Done()
		}, run: func(c *Client) error {
			ctx, cancel := context.WithCancel(ctx)
			go func() { <-s6; cancel() }()
			return query(ctx)(c)
		}, is: context.Canceled},
		{name: "agent query: error status", handler: json(404, `{"error":"NOT_FOUND"}`),
			run: func(c *Client) error {
				_, err := c.AgentQuery(ctx, "a1", AgentQueryRequest{Query: "Shipped", ConversationID: "c1"})
				return err
			}, is: ErrNotFound, msg: "HTTP 404 Not Found: NOT_FOUND", reuse: true},
		{name: "agent query stream: Close from another goroutine", handler: stallAfter(events, s7),
			run: func(c *Client) error {
				st, err := c.AgentQueryStream(ctx, "a1", AgentQueryRequest{Query: "Shipped", ConversationID: "c1"})
				if err != nil {
					return err
				}
				go func() { <-s7; st.Close() }()
				return readAll(st)
			}, is: ErrStreamClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			if tt.reuse {
				// These servers end their bodies: a stream's drain after [DONE] ends with the
				// body, however slow the machine, rather than with its time bound.
				opts = append(opts[:len(opts):len(opts)], withDrainTimeout(time.Hour))
			}
			srv := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)                          // then the server notices when the client goes away
				if strings.HasPrefix(r.URL.Path, "/agents/probe/") { // the second call of a reuse check
					json(200, `{"answer":"ok"}`)(w, r)
					return
				}
				tt.handler(w, r)
			})
			leakFree(t, srv, func(c *Client) {
				err := tt.run(c)
				switch {
				case tt.is == nil && tt.msg == "":
					assert.NoError(t, err)
				default:
					require.Error(t, err)
					if tt.is != nil {
						assert.ErrorIs(t, err, tt.is)
					}
					assert.Contains(t, err.Error(), tt.msg)
					assert.True(t, strings.HasPrefix(err.Error(), "laburen: "), err.Error())
				}
				if tt.reuse {
					_, err := c.Query(ctx, "probe", QueryRequest{Query: "Hi"})
					require.NoError(t, err)
					assert.Equal(t, 1, srv.conns(), "the next call reuses the connection")
				}
			}, opts...)
		})
	}
}

// TestStreamDrainIsBounded: the drain after [DONE] never holds the stream for long, whatever the
// server does after its final event: it reads at most a few KiB, and Close and the context end it
// at once. The drain's own time bound is set to an hour here, so none of these ends depends on it.
func TestStreamDrainIsBounded(t *testing.T) {
	const body = "event: answer\ndata: Hi\n\ndata: [DONE]\n\n"
	tests := []struct {
		name   string
		after  func(w http.ResponseWriter, r *http.Request) // what the server does after [DONE]
		stop   func(st *Stream, cancel context.CancelFunc)  // called once the drain has begun
		reused bool
	}{
		{name: "the server sends bytes without end", after: func(w http.ResponseWriter, r *http.Request) {
			chunk := []byte(strings.Repeat(": keep-alive\n", 100))
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}},
		{name: "the server lingers, Close ends the drain",
			after: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			stop:  func(st *Stream, cancel context.CancelFunc) { st.Close() }},
		{name: "the server lingers, the context ends the drain",
			after: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			stop:  func(st *Stream, cancel context.CancelFunc) { cancel() }},
		{name: "a little more after [DONE], then the end", reused: true,
			after: func(w http.ResponseWriter, r *http.Request) { sseBody(w, ": bye\n\n"+strings.Repeat("x", 1000)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sawDone, draining := make(chan struct{}), make(chan struct{})
			srv := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				sseBody(w, body)
				if r.URL.Path == "/agents/probe/query" {
					return
				}
				select { // the rest follows once the client has read [DONE]
				case <-sawDone:
				case <-r.Context().Done():
				}
				tt.after(w, r)
			})
			first := true
			hc := watchBodies(t, srv.Server, func(b io.ReadCloser) io.ReadCloser {
				if !first {
					return b
				}
				first = false
				return &doneReader{ReadCloser: b, sawDone: sawDone, draining: draining}
			})
			c, err := NewClient(WithBaseURL(srv.URL), WithHTTPClient(hc), withDrainTimeout(time.Hour))
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st, err := c.QueryStream(ctx, "a1", QueryRequest{Query: "Hi"})
			require.NoError(t, err)
			if tt.stop != nil {
				go func() {
					<-draining
					tt.stop(st, cancel)
				}()
			}
			res, err := st.Final()
			require.NoError(t, err, "[DONE] arrived: the stream succeeded")
			assert.Equal(t, "Hi", res.Answer)
			select {
			case <-draining:
			default:
				t.Fatal("the stream did not read the body after [DONE]")
			}
			_, err = c.QueryStream(context.Background(), "probe", QueryRequest{Query: "Hi"})
			require.NoError(t, err)
			want := 2
			if tt.reused {
				want = 1
			}
			assert.Equal(t, want, srv.conns(), "connections")
		})
	}
}

func TestLeakCheckSeesALeftGoroutine(t *testing.T) {
	before := goroutineStacks()
	release := make(chan struct{})
	go func() { <-release }()
	var found string
	for id, g := range goroutineStacks() {
		if _, old := before[id]; !old {
			found = g
		}
	}
	assert.Contains(t, found, "TestLeakCheckSeesALeftGoroutine", "the new goroutine is seen")
	close(release)
	check := leakCheck(t)
	check() // nothing new since: passes
}
