package laburen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/laburen/laburen-go/internal/eventstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// evt is the part of a StreamEvent the table tests compare.
type evt struct {
	Type EventType
	Data string
}

// drainStream reads a stream to its end and returns its events.
func drainStream(st *Stream) []evt {
	var got []evt
	for st.Next() {
		ev := st.Current()
		got = append(got, evt{ev.Type, ev.Data})
	}
	return got
}

// feeds are the ways a test body hands out its bytes.
var feeds = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"one byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"7-byte reads", func(r io.Reader) io.Reader { return &chunkReader{r: r, n: 7} }},
}

// chunkReader hands out at most n bytes per Read, as a network does.
type chunkReader struct {
	r     io.Reader
	n     int
	reads int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p[:min(len(p), c.n)])
}

func TestStreamConformance(t *testing.T) {
	// Each input is written with "\n" line ends and run with LF, CR and CRLF; raw inputs run as
	// they are. The stream then ends with "data: [DONE]" and a blank line.
	tests := []struct {
		name string
		in   string
		raw  bool
		want []evt
	}{
		{name: "answer events", in: "event: answer\ndata: Hello\n\nevent: answer\ndata: , world\n\n",
			want: []evt{{EventAnswer, "Hello"}, {EventAnswer, ", world"}}},
		{name: "comments", in: ": keepalive\n\nevent: answer\n: inside an event\ndata: a\n\n:\n\n",
			want: []evt{{EventAnswer, "a"}}},
		{name: "one optional space after the colon", in: "data:x\n\ndata: x\n\ndata:  x\n\ndata: x  \n\n",
			want: []evt{{EventMessage, "x"}, {EventMessage, "x"}, {EventMessage, " x"}, {EventMessage, "x  "}}},
		{name: "several data lines", in: "data: a\ndata: b\ndata:\n\ndata:\ndata: x\n\n",
			want: []evt{{EventMessage, "a\nb\n"}, {EventMessage, "\nx"}}},
		{name: "leading BOM", in: "\xEF\xBB\xBFevent: answer\ndata: hi\n\n",
			want: []evt{{EventAnswer, "hi"}}},
		{name: "only the first BOM is stripped", in: "\xEF\xBB\xBFdata: 1\n\n\xEF\xBB\xBFdata: 2\n\ndata: 3\n\n",
			want: []evt{{EventMessage, "1"}, {EventMessage, "3"}}},
		{name: "unknown fields", in: "foo: bar\nData: no\nevent: answer\nretry: 10\nid: 7\njustsometext\ndata: a\n\n",
			want: []evt{{EventAnswer, "a"}}},
		{name: "unknown event types", in: "event: thinking\ndata: hmm\n\nevent: tool_call\ndata: {\"name\":\"x\"}\n\n",
			want: []evt{{"thinking", "hmm"}, {EventToolCall, `{"name":"x"}`}}},
		{name: "unnamed events are messages", in: "data: hi\n\nevent: \ndata: there\n\nevent: message\ndata: again\n\n",
			want: []evt{{EventMessage, "hi"}, {EventMessage, "there"}, {EventMessage, "again"}}},
		{name: "blocks without data are not events", in: "event: answer\n\nid: 7\n\nretry: 5\n\nevent: answer\ndata: a\n\n",
			want: []evt{{EventAnswer, "a"}}},
		{name: "empty data is an event", in: "data\n\ndata:\n\n",
			want: []evt{{EventMessage, ""}, {EventMessage, ""}}},
		{name: "empty data beside blocks without data", in: "data:\n\nevent: x\n\ndata:\n\nid: 1\n\nevent: answer\ndata:\n\nevent: y\n\n",
			want: []evt{{EventMessage, ""}, {EventMessage, ""}, {EventAnswer, ""}}},
		{name: "WPT parsing fun", in: "data:test\n data\ndata\nfoobar:xxx\njustsometext\n:comment\ndata:test\n\n",
			want: []evt{{EventMessage, "test\n\ntest"}}},
		{name: "blank lines between events", in: "\n\n\nevent: answer\ndata: a\n\n\n\n\nevent: answer\ndata: b\n\n",
			want: []evt{{EventAnswer, "a"}, {EventAnswer, "b"}}},
		{name: "percent-encoded answer", in: "event: answer\ndata: Hola%2C%0Amundo\n\n",
			want: []evt{{EventAnswer, "Hola,\nmundo"}}},
		{name: "a BOM after blank lines is not stripped", in: "\n\xEF\xBB\xBFdata: x\n\ndata: y\n\n",
			want: []evt{{EventMessage, "y"}}},
		{name: "invalid UTF-8 becomes U+FFFD", in: "data: a\xFFb\n\nevent: a\xFFb\ndata: \xE2\x82x\n\n",
			want: []evt{{EventMessage, "a\uFFFDb"}, {"a\uFFFDb", "\uFFFDx"}}},
		{name: "answer pieces with a rune cut in two", in: "event: answer\ndata: \xE2\n\nevent: answer\ndata: \x82\xACuro\n\nevent: answer\ndata: \xFF\xFEabc\n\n",
			want: []evt{{EventAnswer, "\uFFFD"}, {EventAnswer, "\uFFFD\uFFFDuro"}, {EventAnswer, "\uFFFD\uFFFDabc"}}},
		{name: "WPT newline fest", raw: true, in: "data:test\r\ndata\ndata:test\r\n\r",
			want: []evt{{EventMessage, "test\n\ntest"}}},
		{name: "mixed line ends", raw: true, in: "event: answer\r\ndata: a\r\revent: answer\ndata: b\n\r\n",
			want: []evt{{EventAnswer, "a"}, {EventAnswer, "b"}}},
	}
	endings := []struct{ name, nl string }{{"LF", "\n"}, {"CR", "\r"}, {"CRLF", "\r\n"}}
	for _, tt := range tests {
		for _, end := range endings {
			if tt.raw && end.nl != "\n" {
				continue
			}
			in := tt.in + "data: [DONE]\n\n"
			if !tt.raw {
				in = strings.ReplaceAll(in, "\n", end.nl)
			}
			for _, feed := range feeds {
				t.Run(tt.name+"/"+end.name+"/"+feed.name, func(t *testing.T) {
					st := readerStream(feed.wrap(strings.NewReader(in)), nil)
					defer st.Close()
					assert.Equal(t, tt.want, drainStream(st))
					assert.NoError(t, st.Err())
					var answer strings.Builder
					for _, ev := range tt.want {
						if ev.Type == EventAnswer {
							answer.WriteString(ev.Data)
						}
					}
					assert.Equal(t, answer.String(), st.Answer())
				})
			}
		}
	}
}

func TestDecodePayload(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Hello", "Hello"},
		{"", ""},
		{"Hello%2C%20world", "Hello, world"},
		{"line%0Abreak", "line\nbreak"},
		{"1%2B1%3D2", "1+1=2"},
		{"caf%C3%A9", "café"},
		{"%E2%82%AC%20%F0%9F%98%80", "€ 😀"},
		{"%e2%82%ac", "€"},
		{"%25", "%"},
		{"%5BDONE%5D", "[DONE]"},
		{"%7B%22a%22%3A1%7D", `{"a":1}`},
		{"-_.!~*'()%20", "-_.!~*'() "},
		// plain text: a byte encodeURIComponent escapes, or an invalid escape
		{"100% sure", "100% sure"},
		{"50%off", "50%off"},
		{"%", "%"},
		{"abc%4", "abc%4"},
		{"%zz", "%zz"},
		{"a+b%20", "a+b%20"},
		{"%20 ", "%20 "},
		{`{"a":"%20"}`, `{"a":"%20"}`},
		{"it's (fine)!", "it's (fine)!"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, decodePayload(tt.in), "decodePayload(%q)", tt.in)
	}
}

func TestDecodePayloadDoesNotAllocateWithoutPercent(t *testing.T) {
	for _, s := range []string{"Hello, world", "plain_word", "{\"answer\": \"x\"}", ""} {
		allocs := testing.AllocsPerRun(100, func() { sinkString = decodePayload(s) })
		assert.Zero(t, allocs, "decodePayload(%q)", s)
	}
}

var sinkString string

// fixtureOutcome is what a golden fixture produced, as JSON for testdata/golden.
type fixtureOutcome struct {
	Events   []fixtureEvent  `json:"events"`
	Answer   string          `json:"answer"`
	Response json.RawMessage `json:"response,omitempty"`
	Err      string          `json:"err,omitempty"`
}

type fixtureEvent struct {
	Type EventType `json:"type"`
	Text string    `json:"text,omitempty"`
	Data string    `json:"data"`
	Raw  string    `json:"raw"`
}

func TestStreamFixtures(t *testing.T) {
	const answer = "Hola! ¿Cómo estás? 1+1=2, línea 1\nlínea 2 € 😀 100% seguro"
	tests := []struct {
		file     string
		answer   string
		types    []EventType
		response string // the response's MessageID; "" when none arrived
		is       []error
	}{
		{file: "stream_plain", answer: answer, response: "clmsg1",
			types: []EventType{EventAnswer, EventAnswer, EventAnswer, EventAnswer, EventAnswer, EventAnswer, EventEndpointResponse}},
		{file: "stream_encoded", answer: answer, response: "clmsg1",
			types: []EventType{EventAnswer, EventAnswer, EventAnswer, EventAnswer, EventAnswer, EventAnswer, EventEndpointResponse}},
		{file: "stream_error", answer: "Hola! ¿Cómo estás? ",
			types: []EventType{EventAnswer, EventAnswer}, is: []error{ErrUsageLimit}},
		{file: "stream_truncated", answer: "Hola! ¿Cómo estás? ", response: "clmsg2",
			types: []EventType{EventAnswer, EventAnswer, EventEndpointResponse}, is: []error{ErrStreamTruncated, io.ErrUnexpectedEOF}},
		{file: "stream_truncated_mid_event", answer: "Hola! ",
			types: []EventType{EventAnswer}, is: []error{ErrStreamTruncated, io.ErrUnexpectedEOF}},
		{file: "stream_tool_call", answer: "Déjame revisar. Tu pedido A-100 salió ayer.", response: "clmsg4",
			types: []EventType{EventAnswer, EventToolCall, EventAnswer, EventEndpointResponse}},
	}
	for _, tt := range tests {
		in, err := os.ReadFile(filepath.Join("testdata", tt.file+".sse"))
		require.NoError(t, err)
		for _, feed := range feeds {
			t.Run(tt.file+"/"+feed.name, func(t *testing.T) {
				st := readerStream(feed.wrap(bytes.NewReader(in)), nil)
				defer st.Close()
				var out fixtureOutcome
				var types []EventType
				for st.Next() {
					ev := st.Current()
					types = append(types, ev.Type)
					out.Events = append(out.Events, fixtureEvent{ev.Type, ev.Text, ev.Data, ev.Raw})
				}
				assert.Equal(t, tt.types, types)
				assert.Equal(t, tt.answer, st.Answer())
				if tt.response == "" {
					assert.Nil(t, st.Response())
				} else if assert.NotNil(t, st.Response()) {
					assert.Equal(t, tt.response, st.Response().MessageID)
					out.Response = st.Response().Raw
				}
				out.Answer = st.Answer()
				err := st.Err()
				if len(tt.is) == 0 {
					assert.NoError(t, err)
				} else {
					require.Error(t, err)
					out.Err = err.Error()
					for _, target := range tt.is {
						assert.ErrorIs(t, err, target)
					}
				}
				got, err := json.Marshal(out)
				require.NoError(t, err)
				if feed.name == "whole" {
					assertGolden(t, tt.file, got)
				} else {
					// every way of feeding the bytes gives the same outcome
					want, err := os.ReadFile(filepath.Join("testdata", "golden", tt.file+".json"))
					require.NoError(t, err)
					assert.JSONEq(t, string(want), string(got))
				}
			})
		}
	}
}

func TestStreamFixtureDetails(t *testing.T) {
	open := func(t *testing.T, name string) *Stream {
		in, err := os.ReadFile(filepath.Join("testdata", name+".sse"))
		require.NoError(t, err)
		st := readerStream(bytes.NewReader(in), nil)
		t.Cleanup(func() { st.Close() })
		return st
	}
	t.Run("both encodings give the same events", func(t *testing.T) {
		plain, encoded := open(t, "stream_plain"), open(t, "stream_encoded")
		for plain.Next() {
			require.True(t, encoded.Next())
			p, e := plain.Current(), encoded.Current()
			assert.Equal(t, p.Type, e.Type)
			assert.Equal(t, p.Text, e.Text)
			assert.Equal(t, p.Data, e.Data)
			assert.NotEqual(t, p.Raw, e.Raw)
		}
		assert.False(t, encoded.Next())
		require.NoError(t, plain.Err())
		require.NoError(t, encoded.Err())
		assert.Equal(t, plain.Response().Answer, encoded.Response().Answer)
		assert.Equal(t, plain.Answer(), plain.Response().Answer)
		require.Len(t, encoded.Response().Sources, 1)
		assert.Equal(t, "Envíos: 24h", encoded.Response().Sources[0].Chunk)
		assert.JSONEq(t, `{"lang":"es"}`, string(encoded.Response().Metadata))
	})
	t.Run("[ERROR] is the API error of the stream's status", func(t *testing.T) {
		st := open(t, "stream_error")
		drainStream(st)
		var apiErr *APIError
		require.ErrorAs(t, st.Err(), &apiErr)
		assert.Equal(t, http.StatusOK, apiErr.StatusCode)
		assert.Equal(t, "USAGE_LIMIT", apiErr.Code)
		assert.Empty(t, apiErr.Message)
		assert.Equal(t, "[ERROR]USAGE_LIMIT", apiErr.Body)
		assert.True(t, errors.Is(st.Err(), ErrUsageLimit))
		assert.False(t, errors.Is(st.Err(), ErrStreamTruncated))
		assert.Contains(t, st.Err().Error(), `laburen: stream test: stream error: USAGE_LIMIT (sent as an [ERROR] event in the stream)`)
		assert.NotContains(t, st.Err().Error(), "HTTP 200")
	})
	t.Run("a tool call keeps its JSON", func(t *testing.T) {
		st := open(t, "stream_tool_call")
		require.True(t, st.Next())
		require.True(t, st.Next())
		ev := st.Current()
		assert.Equal(t, EventToolCall, ev.Type)
		assert.Empty(t, ev.Text)
		assert.Nil(t, ev.Response)
		assert.JSONEq(t, `{"id":"call_1","name":"lookup_order","arguments":{"orderId":"A-100"}}`, ev.Data)
		assert.True(t, strings.HasPrefix(ev.Raw, "%7B%22id%22"))
	})
}

func TestStreamEndings(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		answer   string
		response bool
		is       []error // nil: Err is nil
		msg      []string
	}{
		{name: "[DONE]", in: "event: answer\ndata: a\n\ndata: [DONE]\n\n", answer: "a"},
		{name: "nothing after [DONE] is read", in: "event: answer\ndata: a\n\ndata: [DONE]\n\nevent: answer\ndata: b\n\n<html>",
			answer: "a"},
		{name: "[DONE] percent-encoded", in: "event: answer\ndata: a\n\nevent: \ndata: %5BDONE%5D\n\n", answer: "a"},
		{name: "[ERROR] code", in: "event: answer\ndata: a\n\ndata: [ERROR]USAGE_LIMIT\n\nevent: answer\ndata: b\n\n",
			answer: "a", is: []error{ErrUsageLimit}, msg: []string{"USAGE_LIMIT", "[ERROR] event"}},
		{name: "[ERROR] not found", in: "data: [ERROR]NOT_FOUND\n\n", is: []error{ErrNotFound}},
		{name: "[ERROR] sentence", in: "data: [ERROR]The agent is disabled\n\n",
			msg: []string{"The agent is disabled"}, is: []error{}},
		{name: "[ERROR] alone", in: "data: [ERROR]\n\n", msg: []string{"without a code or message"}, is: []error{}},
		{name: "empty body", in: "", is: []error{ErrStreamTruncated, io.ErrUnexpectedEOF},
			msg: []string{"ended after 0 bytes without [DONE] or [ERROR]"}},
		{name: "cut after endpoint_response", answer: "a", response: true,
			in: "event: answer\ndata: a\n\nevent: endpoint_response\ndata: {\"answer\":\"a\"}\n\n",
			is: []error{ErrStreamTruncated, io.ErrUnexpectedEOF}},
		{name: "cut inside an event", in: "event: answer\ndata: a\n\nevent: answer\ndata: b", answer: "a",
			is: []error{ErrStreamTruncated, io.ErrUnexpectedEOF}, msg: []string{"ended inside an event; its 21 bytes were discarded"}},
		{name: "[DONE] without its blank line", in: "event: answer\ndata: a\n\ndata: [DONE]\n", answer: "a",
			is: []error{ErrStreamTruncated, io.ErrUnexpectedEOF}},
		{name: "malformed endpoint_response", in: "event: endpoint_response\ndata: {\"answer\": \n\ndata: [DONE]\n\n",
			is: []error{}, msg: []string{"decode endpoint_response event", `data starts "{\"answer\": "`}},
		{name: "endpoint_response that is not an object", in: "event: endpoint_response\ndata: [1]\n\ndata: [DONE]\n\n",
			is: []error{}, msg: []string{"decode endpoint_response event: not a JSON object"}},
		{name: "empty endpoint_response", in: "event: endpoint_response\ndata:\n\ndata: [DONE]\n\n",
			is: []error{}, msg: []string{"decode endpoint_response event"}},
		{name: "blocks without data do not touch the answer",
			in:     "event: answer\ndata: a\n\nevent: answer\n\nevent: endpoint_response\n\nid: 1\n\nevent: answer\ndata: b\n\ndata: [DONE]\n\n",
			answer: "ab"},
	}
	for _, tt := range tests {
		for _, feed := range feeds[:2] {
			t.Run(tt.name+"/"+feed.name, func(t *testing.T) {
				st := readerStream(feed.wrap(strings.NewReader(tt.in)), nil)
				defer st.Close()
				drainStream(st)
				assert.False(t, st.Next(), "Next after the end")
				assert.Equal(t, tt.answer, st.Answer())
				assert.Equal(t, tt.response, st.Response() != nil)
				err := st.Err()
				if tt.is == nil {
					assert.NoError(t, err)
					return
				}
				require.Error(t, err)
				assert.True(t, strings.HasPrefix(err.Error(), "laburen: stream test: "), err.Error())
				for _, target := range tt.is {
					assert.ErrorIs(t, err, target)
				}
				for _, m := range tt.msg {
					assert.Contains(t, err.Error(), m)
				}
				for name, target := range sentinels {
					if !containsErr(tt.is, target) {
						assert.NotErrorIs(t, err, target, "matches %s", name)
					}
				}
			})
		}
	}
}

func containsErr(errs []error, target error) bool {
	for _, e := range errs {
		if e == target {
			return true
		}
	}
	return false
}

func TestStreamBodyReadError(t *testing.T) {
	cut := errors.New("connection reset by peer")
	body := io.MultiReader(strings.NewReader("event: answer\ndata: a\n\nevent: answer\ndata: b\n"), iotest.ErrReader(cut))
	st := readerStream(body, nil)
	defer st.Close()
	assert.Equal(t, []evt{{EventAnswer, "a"}}, drainStream(st))
	err := st.Err()
	assert.ErrorIs(t, err, cut)
	assert.ErrorIs(t, err, ErrStreamTruncated)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Contains(t, err.Error(), "reading the body failed after 45 bytes")
}

func TestStreamMaxEventSize(t *testing.T) {
	event := func(n int) string { // an event of exactly n bytes
		return "event: answer\ndata: " + strings.Repeat("x", n-len("event: answer\ndata: \n\n")) + "\n\n"
	}
	const limit = 100
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"at the limit", event(limit), true},
		{"one byte over", event(limit + 1), false},
		{"far over", event(10 * limit), false},
		{"many events, each under it", strings.Repeat(event(limit), 50), true},
		{"over it without an end", "data: " + strings.Repeat("y", 2*limit), false},
	}
	for _, tt := range tests {
		for _, feed := range feeds[:2] {
			t.Run(tt.name+"/"+feed.name, func(t *testing.T) {
				cfg := &config{maxEventSize: limit}
				st := readerStream(feed.wrap(strings.NewReader(tt.in+"data: [DONE]\n\n")), cfg)
				defer st.Close()
				drainStream(st)
				if tt.ok {
					assert.NoError(t, st.Err())
					return
				}
				require.Error(t, st.Err())
				assert.Contains(t, st.Err().Error(), "larger than 100 bytes")
				assert.Contains(t, st.Err().Error(), "WithMaxEventSize")
				assert.NotErrorIs(t, st.Err(), ErrStreamTruncated)
			})
		}
	}
}

func TestStreamLargeEventInSmallReads(t *testing.T) {
	big := `{"answer":"` + strings.Repeat("a", 1<<20) + `"}`
	in := "event: endpoint_response\ndata: " + big + "\n\ndata: [DONE]\n\n"
	st := readerStream(&chunkReader{r: strings.NewReader(in), n: 1400}, nil)
	defer st.Close()
	res, err := st.Final()
	require.NoError(t, err)
	assert.Len(t, res.Answer, 1<<20)
}

// probe wraps a test client's transport to watch the response body: it reports when a Read
// starts waiting, and counts Close calls.
type probe struct {
	base     http.RoundTripper
	mu       sync.Mutex
	reading  chan struct{} // closed by the next Read; replaced by arm
	closes   atomic.Int32
	requests atomic.Int32
}

func (p *probe) arm() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reading = make(chan struct{})
	return p.reading
}

func (p *probe) RoundTrip(r *http.Request) (*http.Response, error) {
	p.requests.Add(1)
	res, err := p.base.RoundTrip(r)
	if err == nil {
		res.Body = &probeBody{ReadCloser: res.Body, p: p}
	}
	return res, err
}

type probeBody struct {
	io.ReadCloser
	p *probe
}

func (b *probeBody) Read(buf []byte) (int, error) {
	b.p.mu.Lock()
	if b.p.reading != nil {
		close(b.p.reading)
		b.p.reading = nil
	}
	b.p.mu.Unlock()
	return b.ReadCloser.Read(buf)
}

func (b *probeBody) Close() error {
	b.p.closes.Add(1)
	return b.ReadCloser.Close()
}

// sseServer starts a test server with handler and returns a client for it, whose transport is
// watched by the returned probe.
func sseServer(t *testing.T, handler http.HandlerFunc, opts ...Option) (*Client, *probe) {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	p := &probe{base: srv.Client().Transport}
	base := []Option{
		WithBaseURL(srv.URL), WithAPIKey(testKey), WithHTTPClient(&http.Client{Transport: p}),
		withSleep(func(context.Context, time.Duration) error { return nil }),
	}
	c, err := NewClient(append(base, opts...)...)
	require.NoError(t, err)
	return c, p
}

// writeSSE writes an event stream response and flushes it.
func writeSSE(w http.ResponseWriter, body string) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "text/event-stream")
	}
	io.WriteString(w, body)
	w.(http.Flusher).Flush()
}

// noStreamGoroutines reports whether no goroutine runs the stream's code, once those that have
// done their work (a timer's or a context's callback that has just closed its channel, of this
// test or of the one before) have had a bounded time to return.
func noStreamGoroutines() bool {
	return eventually(func() bool { return streamGoroutines() == 0 })
}

// streamGoroutines counts the goroutines running the stream's code: its timer, its context
// callback, or a Next.
func streamGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "laburen-go.(*Stream)") || strings.Contains(g, "internal/eventstream") ||
			strings.Contains(g, "laburen-go.newStream") || strings.Contains(g, "laburen-go.newIdleTimer") ||
			strings.Contains(g, "tmaxmax/go-sse") {
			n++
		}
	}
	return n
}

func TestQueryStreamRequest(t *testing.T) {
	type seen struct {
		path, accept, auth string
		body               map[string]any
	}
	got := make(chan seen, 1)
	c, _ := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		assert.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		got <- seen{r.URL.Path, r.Header.Get("Accept"), r.Header.Get("Authorization"), body}
		writeSSE(w, "event: answer\ndata: Hi\n\nevent: endpoint_response\ndata: {\"messageId\":\"m1\",\"status\":\"UNRESOLVED\"}\n\ndata: [DONE]\n\n")
	})
	ctx := context.Background()

	st, err := c.QueryStream(ctx, "agent 1", QueryRequest{Query: "Hello", ConversationID: "conv1"})
	require.NoError(t, err)
	res, err := st.Final()
	require.NoError(t, err)
	assert.Equal(t, "Hi", res.Answer)
	assert.Equal(t, "m1", res.MessageID)
	s := <-got
	assert.Equal(t, "/agents/agent 1/query", s.path)
	assert.Equal(t, "text/event-stream", s.accept)
	assert.Equal(t, "Bearer "+testKey, s.auth)
	assert.Equal(t, map[string]any{"query": "Hello", "conversationId": "conv1", "streaming": true}, s.body)

	st, err = c.AgentQueryStream(ctx, "agent1", AgentQueryRequest{Query: "Shipped", ConversationID: "conv1"})
	require.NoError(t, err)
	res, err = st.Final()
	require.NoError(t, err)
	assert.Equal(t, ConversationStatus("UNRESOLVED"), res.Status)
	assert.JSONEq(t, `{"messageId":"m1","status":"UNRESOLVED"}`, string(res.Raw))
	s = <-got
	assert.Equal(t, "/agents/agent1/query-agent", s.path)
	assert.Equal(t, map[string]any{"query": "Shipped", "conversationId": "conv1", "streaming": true}, s.body)
}

func TestQueryStreamFailsBeforeTheStream(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		is          []error
		msg         []string
	}{
		{name: "402 JSON", status: 402, contentType: "application/json", body: `{"error":"USAGE_LIMIT"}`,
			is: []error{ErrUsageLimit}},
		{name: "404 SSE frame without an SSE type", status: 404, contentType: "text/plain", body: "data: [ERROR]NOT_FOUND\n\n",
			is: []error{ErrNotFound}, msg: []string{"NOT_FOUND"}},
		{name: "404 SSE frame with an SSE type", status: 404, contentType: "text/event-stream", body: "data: [ERROR]NOT_FOUND\n\n",
			is: []error{ErrNotFound}},
		{name: "403 text", status: 403, contentType: "text/plain", body: "Forbidden", is: []error{ErrUnauthorized}},
		{name: "500 HTML", status: 500, contentType: "text/html", body: "<html><title>Internal error</title></html>",
			is: []error{ErrServer}, msg: []string{"Internal error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			st, err := c.QueryStream(context.Background(), "a1", QueryRequest{Query: "Hi"})
			require.Error(t, err)
			assert.Nil(t, st)
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, tt.status, apiErr.StatusCode)
			assert.True(t, strings.HasPrefix(err.Error(), `laburen: stream query agent "a1": POST /agents/a1/query: HTTP `), err.Error())
			for _, target := range tt.is {
				assert.ErrorIs(t, err, target)
			}
			for _, m := range tt.msg {
				assert.Contains(t, err.Error(), m)
			}
			assert.NotContains(t, err.Error(), testKey)
			assert.EqualValues(t, 1, p.closes.Load(), "the error body is closed")
		})
	}
	t.Run("invalid input sends nothing", func(t *testing.T) {
		c, p := sseServer(t, func(w http.ResponseWriter, r *http.Request) { t.Error("request sent") })
		_, err := c.QueryStream(context.Background(), "a1", QueryRequest{Query: " "})
		var vErr *ValidationError
		require.ErrorAs(t, err, &vErr)
		assert.Equal(t, "query", vErr.Field)
		_, err = c.AgentQueryStream(context.Background(), "", AgentQueryRequest{Query: "x"})
		require.ErrorAs(t, err, &vErr)
		assert.Equal(t, "agentID", vErr.Field)
		assert.Contains(t, err.Error(), `laburen: stream agent query to agent "": invalid agentID`)
		assert.Zero(t, p.requests.Load())
	})
}

func TestQueryStreamContentTypes(t *testing.T) {
	const stream = "event: answer\ndata: Hi\n\ndata: [DONE]\n\n"
	tests := []struct {
		name        string
		contentType string // "-": no Content-Type at all
		body        string
		events      []evt
		answer      string
		messageID   string
		err         []string // the error QueryStream returns
	}{
		{name: "event stream", contentType: "text/event-stream", body: stream, events: []evt{{EventAnswer, "Hi"}}, answer: "Hi"},
		{name: "event stream with parameters", contentType: "text/event-stream; charset=utf-8", body: stream,
			events: []evt{{EventAnswer, "Hi"}}, answer: "Hi"},
		{name: "no content type", contentType: "-", body: stream, events: []evt{{EventAnswer, "Hi"}}, answer: "Hi"},
		{name: "event stream in capitals, with broken parameters", contentType: "Text/Event-Stream ;; charset", body: stream,
			events: []evt{{EventAnswer, "Hi"}}, answer: "Hi"},
		{name: "JSON: the server ignored streaming", contentType: "application/json",
			body:   `{"answer":"Hello there","messageId":"m9","usage":{"totalTokens":3}}`,
			events: []evt{{EventAnswer, "Hello there"}, {EventEndpointResponse, `{"answer":"Hello there","messageId":"m9","usage":{"totalTokens":3}}`}},
			answer: "Hello there", messageID: "m9"},
		{name: "JSON without an answer", contentType: "application/json; charset=utf-8", body: `{"messageId":"m9"}`,
			events: []evt{{EventEndpointResponse, `{"messageId":"m9"}`}}, messageID: "m9"},
		{name: "malformed JSON", contentType: "application/json", body: `{"answer":`,
			err: []string{`decode response (HTTP 200, Content-Type "application/json")`, `body starts "{\"answer\":"`}},
		{name: "HTML from a proxy", contentType: "text/html", body: "<html><body>Please log in</body></html>",
			err: []string{`HTTP 200 with Content-Type "text/html" is not an event stream`, "Please log in"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.contentType == "-" {
					w.Header()["Content-Type"] = nil
				} else {
					w.Header().Set("Content-Type", tt.contentType)
				}
				io.WriteString(w, tt.body)
			})
			st, err := c.QueryStream(context.Background(), "a1", QueryRequest{Query: "Hi"})
			if tt.err != nil {
				require.Error(t, err)
				for _, m := range tt.err {
					assert.Contains(t, err.Error(), m)
				}
				assert.EqualValues(t, 1, p.closes.Load())
				return
			}
			require.NoError(t, err)
			defer st.Close()
			assert.Equal(t, tt.events, drainStream(st))
			require.NoError(t, st.Err())
			assert.Equal(t, tt.answer, st.Answer())
			res, err := st.Final()
			require.NoError(t, err)
			assert.Equal(t, tt.answer, res.Answer)
			assert.Equal(t, tt.messageID, res.MessageID)
			assert.EqualValues(t, 1, p.closes.Load())
		})
	}
}

func TestQueryStreamRetries(t *testing.T) {
	const stream = "event: answer\ndata: Hi\n\ndata: [DONE]\n\n"
	t.Run("429 and 503 before the stream are retried", func(t *testing.T) {
		var hits atomic.Int32
		c, _ := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
			switch hits.Add(1) {
			case 1:
				w.WriteHeader(http.StatusTooManyRequests)
			case 2:
				w.WriteHeader(http.StatusServiceUnavailable)
			default:
				writeSSE(w, stream)
			}
		})
		st, err := c.QueryStream(context.Background(), "a1", QueryRequest{Query: "Hi"})
		require.NoError(t, err)
		res, err := st.Final()
		require.NoError(t, err)
		assert.Equal(t, "Hi", res.Answer)
		assert.EqualValues(t, 3, hits.Load())
	})
	t.Run("a connection never made is retried", func(t *testing.T) {
		var hits atomic.Int32
		c, p := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			writeSSE(w, stream)
		})
		base := p.base
		var attempts atomic.Int32
		p.base = roundTrip(func(r *http.Request) (*http.Response, error) {
			if attempts.Add(1) == 1 {
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
			}
			return base.RoundTrip(r)
		})
		st, err := c.QueryStream(context.Background(), "a1", QueryRequest{Query: "Hi"})
		require.NoError(t, err)
		_, err = st.Final()
		require.NoError(t, err)
		assert.EqualValues(t, 2, attempts.Load())
		assert.EqualValues(t, 1, hits.Load())
	})
	t.Run("nothing is retried once the stream has begun", func(t *testing.T) {
		var hits atomic.Int32
		c, _ := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			writeSSE(w, "event: answer\ndata: Hi\n\n") // and the body ends: cut off
		})
		st, err := c.QueryStream(context.Background(), "a1", QueryRequest{Query: "Hi"})
		require.NoError(t, err)
		_, err = st.Final()
		assert.ErrorIs(t, err, ErrStreamTruncated)
		assert.Equal(t, "Hi", st.Answer())
		assert.EqualValues(t, 1, hits.Load())
	})
	t.Run("a 500 is not retried", func(t *testing.T) {
		var hits atomic.Int32
		c, _ := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
		})
		_, err := c.QueryStream(context.Background(), "a1", QueryRequest{Query: "Hi"})
		assert.ErrorIs(t, err, ErrServer)
		assert.EqualValues(t, 1, hits.Load())
	})
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// stalledServer sends first, flushes, and then holds the stream open until the test ends or
// calls release; then it sends rest.
func stalledServer(t *testing.T, first, rest string, opts ...Option) (c *Client, p *probe, release func()) {
	t.Helper()
	released := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	t.Cleanup(release)
	c, p = sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeSSE(w, first)
		select {
		case <-released:
			writeSSE(w, rest)
		case <-r.Context().Done():
		}
	}, opts...)
	return c, p, release
}

func TestStreamImmediateDelivery(t *testing.T) {
	c, _, release := stalledServer(t, "event: answer\ndata: Hel\n\n", "event: answer\ndata: lo\n\ndata: [DONE]\n\n")
	st, err := c.QueryStream(context.Background(), "a1", QueryRequest{Query: "Hi"})
	require.NoError(t, err)
	defer st.Close()
	// The server is stalled until release: the first event must arrive without it.
	next := make(chan bool)
	go func() { next <- st.Next() }()
	select {
	case more := <-next:
		require.True(t, more)
	case <-time.After(10 * time.Second):
		t.Fatal("the first event did not arrive while the server held the rest back")
	}
	assert.Equal(t, "Hel", st.Current().Text)
	release()
	require.True(t, st.Next())
	assert.Equal(t, "lo", st.Current().Text)
	assert.False(t, st.Next())
	assert.NoError(t, st.Err())
	assert.Equal(t, "Hello", st.Answer())
}

func TestStreamCancelAndClose(t *testing.T) {
	tests := []struct {
		name string
		stop func(cancel context.CancelFunc, st *Stream)
		is   error
		msg  string
	}{
		{"context cancelled", func(cancel context.CancelFunc, st *Stream) { cancel() }, context.Canceled, "stream interrupted: context canceled"},
		{"Close from another goroutine", func(cancel context.CancelFunc, st *Stream) { st.Close() }, ErrStreamClosed, "stream closed before its end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p, _ := stalledServer(t, "event: answer\ndata: Hel\n\n", "")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st, err := c.QueryStream(ctx, "a1", QueryRequest{Query: "Hi"})
			require.NoError(t, err)
			require.True(t, st.Next())

			reading := p.arm()
			stopped := make(chan struct{})
			go func() {
				<-reading // Next is waiting for the stalled server
				tt.stop(cancel, st)
				close(stopped)
			}()
			assert.False(t, st.Next())
			<-stopped
			err = st.Err()
			assert.ErrorIs(t, err, tt.is)
			assert.Contains(t, err.Error(), tt.msg)
			assert.NotErrorIs(t, err, ErrStreamTruncated)
			assert.Equal(t, "Hel", st.Answer(), "what arrived stays readable")
			assert.NoError(t, st.Close())
			assert.NoError(t, st.Close())
			assert.EqualValues(t, 1, p.closes.Load())
			assert.True(t, noStreamGoroutines(), "goroutines left behind")
		})
	}
}

func TestStreamCancelledBeforeNext(t *testing.T) {
	c, _, _ := stalledServer(t, "event: answer\ndata: a\n\nevent: answer\ndata: b\n\n", "")
	ctx, cancel := context.WithCancel(context.Background())
	st, err := c.QueryStream(ctx, "a1", QueryRequest{Query: "Hi"})
	require.NoError(t, err)
	defer st.Close()
	require.True(t, st.Next())
	cancel()
	assert.False(t, st.Next(), "events buffered before the cancel are not shown after it")
	assert.ErrorIs(t, st.Err(), context.Canceled)
}

// signalReader closes reading when its second Read starts (the first one delivers the first
// event).
type signalReader struct {
	r       io.Reader
	reads   int
	reading chan struct{}
}

func (s *signalReader) Read(p []byte) (int, error) {
	if s.reads++; s.reads == 2 {
		close(s.reading)
	}
	return s.r.Read(p)
}

// TestStreamEndsABodyThatIgnoresTheContext: a transport whose body does not end with the
// request's context (httpmock's, a custom RoundTripper's) still lets Close and a cancelled
// context end a waiting Next, because the stream closes the body.
func TestStreamEndsABodyThatIgnoresTheContext(t *testing.T) {
	tests := []struct {
		name string
		stop func(cancel context.CancelFunc, st *Stream)
		is   error
	}{
		{"context cancelled", func(cancel context.CancelFunc, st *Stream) { cancel() }, context.Canceled},
		{"Close", func(cancel context.CancelFunc, st *Stream) { st.Close() }, ErrStreamClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			go io.WriteString(pw, "event: answer\ndata: a\n\n") // and then nothing, with the pipe open
			parent, cancel := context.WithCancel(context.Background())
			defer cancel()
			sctx, scancel := context.WithCancelCause(parent)
			body := &signalReader{r: pr, reading: make(chan struct{})}
			st := newStream(parent, sctx, scancel, "stream test", 200, readCloser{body, pr}, &config{maxEventSize: DefaultMaxEventSize}, nil)
			require.True(t, st.Next())
			go func() {
				<-body.reading
				tt.stop(cancel, st)
			}()
			done := make(chan bool)
			go func() { done <- st.Next() }()
			select {
			case more := <-done:
				assert.False(t, more)
			case <-time.After(10 * time.Second):
				t.Fatal("Next is still waiting for a body that ignores the context")
			}
			assert.ErrorIs(t, st.Err(), tt.is)
			assert.NoError(t, st.Close())
		})
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

func TestStreamCloseIsSafeFromManyGoroutines(t *testing.T) {
	c, p, _ := stalledServer(t, "event: answer\ndata: a\n\n", "")
	st, err := c.QueryStream(context.Background(), "a1", QueryRequest{Query: "Hi"})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, st.Close())
		}()
	}
	for st.Next() {
	}
	wg.Wait()
	assert.ErrorIs(t, st.Err(), ErrStreamClosed)
	assert.EqualValues(t, 1, p.closes.Load())
	assert.True(t, noStreamGoroutines(), "goroutines left behind")
}

func TestStreamIdleTimeout(t *testing.T) {
	const idle = 50 * time.Millisecond
	c, p, _ := stalledServer(t, "event: answer\ndata: a\n\n", "", WithStreamIdleTimeout(idle))
	st, err := c.QueryStream(context.Background(), "a1", QueryRequest{Query: "Hi"})
	require.NoError(t, err)
	defer st.Close()
	require.True(t, st.Next())
	assert.False(t, st.Next())
	err = st.Err()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no data arrived for 50ms")
	assert.Contains(t, err.Error(), "WithStreamIdleTimeout")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, context.Canceled)
	assert.Equal(t, "a", st.Answer())
	assert.EqualValues(t, 1, p.closes.Load())
	assert.True(t, noStreamGoroutines(), "goroutines left behind")
}

func TestStreamIdleTimeoutOff(t *testing.T) {
	cfg := &config{maxEventSize: DefaultMaxEventSize}
	st := readerStream(strings.NewReader("data: [DONE]\n\n"), cfg)
	defer st.Close()
	assert.Nil(t, st.idle, "no timer with WithStreamIdleTimeout(0)")
	st = readerStream(strings.NewReader("data: [DONE]\n\n"), nil)
	defer st.Close()
	assert.NotNil(t, st.idle)
}

func TestStreamReleasesItselfAtTheEnd(t *testing.T) {
	tests := []struct {
		name, body string
		linger     bool // the server keeps the connection open after the body
	}{
		{"[DONE]", "event: answer\ndata: a\n\ndata: [DONE]\n\n", false},
		{"[DONE], then the server lingers", "event: answer\ndata: a\n\ndata: [DONE]\n\n", true},
		{"[ERROR], then the server lingers", "data: [ERROR]USAGE_LIMIT\n\n", true},
		{"truncated", "event: answer\ndata: a\n\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
				writeSSE(w, tt.body)
				if tt.linger {
					<-r.Context().Done() // until the client closes the body
				}
			})
			st, err := c.QueryStream(context.Background(), "a1", QueryRequest{Query: "Hi"})
			require.NoError(t, err)
			for st.Next() {
			}
			// no Close: the end of the stream releases it
			assert.EqualValues(t, 1, p.closes.Load())
			assert.True(t, noStreamGoroutines(), "goroutines left behind")
		})
	}
}

func TestStreamText(t *testing.T) {
	const body = "event: answer\ndata: Hel\n\nevent: tool_call\ndata: {}\n\nevent: answer\ndata:\n\nevent: answer\ndata: lo\n\n"
	tests := []struct {
		name    string
		body    string
		stop    int // break after this many pieces; 0 reads to the end
		want    []string
		wantErr error
	}{
		{name: "to [DONE]", body: body + "data: [DONE]\n\n", want: []string{"Hel", "lo"}},
		{name: "to [ERROR]", body: body + "data: [ERROR]USAGE_LIMIT\n\n", want: []string{"Hel", "lo"}, wantErr: ErrUsageLimit},
		{name: "truncated", body: body, want: []string{"Hel", "lo"}, wantErr: ErrStreamTruncated},
		{name: "break", body: body + "data: [DONE]\n\n", stop: 1, want: []string{"Hel"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p := sseServer(t, func(w http.ResponseWriter, r *http.Request) { writeSSE(w, tt.body) })
			st, err := c.QueryStream(context.Background(), "a1", QueryRequest{Query: "Hi"})
			require.NoError(t, err)
			var got []string
			var gotErr error
			for text, err := range st.Text() {
				if err != nil {
					gotErr = err
					break
				}
				got = append(got, text)
				if len(got) == tt.stop {
					break
				}
			}
			assert.Equal(t, tt.want, got)
			if tt.wantErr == nil {
				assert.NoError(t, gotErr)
			} else {
				assert.ErrorIs(t, gotErr, tt.wantErr)
			}
			assert.False(t, st.Next(), "Text closed the stream")
			assert.EqualValues(t, 1, p.closes.Load())
		})
	}
}

func TestStreamFinal(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		answer    string
		messageID string
		raw       bool
		is        error
	}{
		{name: "response with its answer", answer: "Full answer", messageID: "m1", raw: true,
			body: "event: answer\ndata: Hi\n\nevent: endpoint_response\ndata: {\"answer\":\"Full answer\",\"messageId\":\"m1\"}\n\ndata: [DONE]\n\n"},
		{name: "response without an answer", answer: "Hi there", messageID: "m1", raw: true,
			body: "event: answer\ndata: Hi\n\nevent: answer\ndata:  there\n\nevent: endpoint_response\ndata: {\"messageId\":\"m1\"}\n\ndata: [DONE]\n\n"},
		{name: "no endpoint_response", answer: "Hi there",
			body: "event: answer\ndata: Hi\n\nevent: answer\ndata:  there\n\ndata: [DONE]\n\n"},
		{name: "truncated", is: ErrStreamTruncated,
			body: "event: answer\ndata: Hi\n\nevent: endpoint_response\ndata: {\"messageId\":\"m1\"}\n\n"},
		{name: "[ERROR]", is: ErrRateLimited, body: "event: answer\ndata: Hi\n\ndata: [ERROR]RATE_LIMIT\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := readerStream(strings.NewReader(tt.body), nil)
			defer st.Close()
			res, err := st.Final()
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
				assert.Nil(t, res)
				assert.Equal(t, "Hi", st.Answer(), "what arrived stays readable")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.answer, res.Answer)
			assert.Equal(t, tt.messageID, res.MessageID)
			assert.Equal(t, tt.raw, res.Raw != nil)
			if st.Response() != nil {
				assert.NotSame(t, st.Response(), res, "Final returns a copy; Response stays as the server sent it")
			}
		})
	}
}

func TestStreamErrorsNeverShowTheKey(t *testing.T) {
	bodies := []string{"data: [ERROR]UNAUTHORIZED\n\n", "event: answer\ndata: a\n\n", "event: endpoint_response\ndata: {\n\n"}
	for _, body := range bodies {
		c, _ := sseServer(t, func(w http.ResponseWriter, r *http.Request) { writeSSE(w, body) })
		st, err := c.QueryStream(context.Background(), "a1", QueryRequest{Query: "Hi"})
		require.NoError(t, err)
		_, err = st.Final()
		require.Error(t, err)
		assert.NotContains(t, err.Error(), testKey)
		assert.NotContains(t, fmt.Sprintf("%+v %#v", err, st), testKey)
	}
}

// encodeURIComponent is JavaScript's encodeURIComponent for valid UTF-8.
func encodeURIComponent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// FuzzDecodePayload: encoded text decodes back to itself, and whatever decodePayload returns is
// either its input (plain text) or what url.PathUnescape makes of it.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{"Hola, mundo", "línea 1\nlínea 2", "100% seguro", "%E2%82%AC", "a%2", "€ 😀", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		assert.Equal(t, s, decodePayload(encodeURIComponent(s)), "round trip")
		got := decodePayload(s)
		if got != s {
			want, err := url.PathUnescape(s)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		}
	})
}

func TestDecodePayloadAllocatesOnceWhenEncoded(t *testing.T) {
	for _, s := range []string{"Hola!%20", "%C2%BFC%C3%B3mo%20est%C3%A1s%3F%20", "%7B%22a%22%3A1%7D"} {
		allocs := testing.AllocsPerRun(100, func() { sinkString = decodePayload(s) })
		assert.Equal(t, 1.0, allocs, "decodePayload(%q)", s)
	}
}

// decoderEvents returns the events of a complete event stream as the decoder reads them (its
// own tests hold it against the WHATWG steps and go-sse), named as a Stream names them.
func decoderEvents(in string) []evt {
	d := eventstream.NewDecoder(strings.NewReader(in), len(in)+1)
	var out []evt
	for {
		typ, data, err := d.Next()
		if err != nil {
			return out
		}
		t := EventType(typ)
		if t == "" {
			t = EventMessage
		}
		out = append(out, evt{t, string(data)})
	}
}

// FuzzStreamMatchesWHATWG compares the events of a Stream with those of its decoder (which its
// own fuzz target holds against the WHATWG steps), for any stream without '[' or '%' (so no
// [DONE], [ERROR] or percent-encoding but the final [DONE]).
func FuzzStreamMatchesWHATWG(f *testing.F) {
	for _, s := range []string{
		"event: answer\ndata: a\n\n", "data:x\r\rdata: y\r\n\r\n", "event: x\n\nid: 1\n\ndata:\n\n",
		"\uFEFFdata: 1\n\n: c\n\nevent:answer\ndata\ndata: 2\n\n", "data: a\r\n\r", "data:test\n data\ndata\nfoobar:xxx\njustsometext\n:comment\ndata:test\n\n",
		"id: a\x00b\nevent: answer\n\n", "retry: 10\n\nevent: message\ndata: m\n\n", "data: tail\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsAny(s, "[%") {
			return
		}
		in := s + "\n\ndata: [DONE]\n\n"
		want := decoderEvents(in)
		want = append([]evt{}, want[:slices.Index(want, evt{EventMessage, "[DONE]"})]...)
		for _, feed := range feeds[:2] {
			st := readerStream(feed.wrap(strings.NewReader(in)), nil)
			got := append([]evt{}, drainStream(st)...)
			require.NoError(t, st.Err(), feed.name)
			assert.Equal(t, want, got, "%s: %q", feed.name, in)
		}
	})
}

// FuzzStreamAnyBytes feeds arbitrary bytes to a Stream with a small event limit: it must end
// (with [DONE] or an error), never panic, and an error must name the stream and say what went
// wrong: an [ERROR] event (its code and message bounded, on one line), a truncated body, an
// event over the limit, or an endpoint_response that does not decode.
func FuzzStreamAnyBytes(f *testing.F) {
	for _, name := range []string{"stream_plain", "stream_encoded", "stream_error", "stream_truncated_mid_event", "stream_tool_call"} {
		in, err := os.ReadFile(filepath.Join("testdata", name+".sse"))
		require.NoError(f, err)
		f.Add(in)
	}
	f.Add([]byte("event: endpoint_response\r\ndata: %7B\r\n\r\ndata: [ERROR]\xff\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, feed := range feeds[:2] {
			st := readerStream(feed.wrap(bytes.NewReader(in)), &config{maxEventSize: 256})
			for st.Next() {
				_ = st.Current()
			}
			err := st.Err()
			if err == nil {
				assert.True(t, bytes.Contains(in, []byte("DONE")), "no error without [DONE]")
			} else {
				assert.True(t, strings.HasPrefix(err.Error(), "laburen: stream test: "), err.Error())
				var apiErr *APIError
				switch {
				case errors.As(err, &apiErr):
					checkShownText(t, "code", apiErr.Code, maxErrorCode)
					checkShownText(t, "message", apiErr.Message, maxErrorMessage)
				case errors.Is(err, ErrStreamTruncated),
					strings.Contains(err.Error(), "an event is larger than 256 bytes"),
					strings.Contains(err.Error(), "decode endpoint_response event"):
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}
			_ = st.Answer()
			assert.NoError(t, st.Close())
		}
	})
}
