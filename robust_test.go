package laburen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawServer accepts connections on loopback and answers one request per connection by writing
// whatever respond writes to the connection, HTTP or not; then it closes the connection.
func rawServer(t *testing.T, respond func(w io.Writer)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				req, err := http.ReadRequest(bufio.NewReader(conn))
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				respond(conn)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// rawResponse is an HTTP/1.1 response with a Content-Length of declared bytes (-1: none, the
// body ends when the connection closes) and body as its body.
func rawResponse(status int, contentType string, declared int, body string) func(w io.Writer) {
	return func(w io.Writer) {
		fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n", status, http.StatusText(status), contentType)
		if declared >= 0 {
			fmt.Fprintf(w, "Content-Length: %d\r\n", declared)
		}
		io.WriteString(w, "\r\n"+body)
	}
}

// endless writes chunk to the response until the client goes away.
func endless(status int, contentType, start, chunk string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, start)
		buf := []byte(strings.Repeat(chunk, 32<<10/len(chunk)))
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}
}

// The calls a bad server is tried with: each returns the error the caller sees, from the call or
// from reading the stream to its end.
var badServerCalls = []struct {
	name string
	op   string // how the error starts
	json bool   // asks for JSON (not a stream)
	call func(ctx context.Context, c *Client) error
}{
	{"Query", `laburen: query agent "a1": `, true, func(ctx context.Context, c *Client) error {
		_, err := c.Query(ctx, "a1", QueryRequest{Query: "Hi"})
		return err
	}},
	{"AgentQuery", `laburen: agent query to agent "a1": `, true, func(ctx context.Context, c *Client) error {
		_, err := c.AgentQuery(ctx, "a1", AgentQueryRequest{Query: "Shipped", ConversationID: "c1"})
		return err
	}},
	{"QueryStream", `laburen: stream query agent "a1": `, false, func(ctx context.Context, c *Client) error {
		st, err := c.QueryStream(ctx, "a1", QueryRequest{Query: "Hi"})
		if err != nil {
			return err
		}
		defer st.Close()
		_, err = st.Final()
		return err
	}},
}

// TestBadServers: a server that breaks the protocol in any of these ways gives each call a clear
// error (it says what arrived), within its bounds, and never a panic or a hang.
func TestBadServers(t *testing.T) {
	const answer = `{"answer":"Hello there, how can I help?","messageId":"m1"}`
	const events = "event: answer\ndata: Hello\n\nevent: answer\ndata: there\n\ndata: [DONE]\n\n"
	tests := []struct {
		name string
		opts []Option
		// The server: a handler for an httptest server, or a raw answer (any bytes) on a
		// connection; jsonRaw/streamRaw, jsonHandler/streamHandler answer a JSON and a streaming
		// request.
		jsonRaw, streamRaw         func(w io.Writer)
		jsonHandler, streamHandler http.HandlerFunc
		jsonErr, streamErr         []string // the error says all of these
	}{
		{name: "garbage instead of HTTP",
			jsonRaw: func(w io.Writer) { io.WriteString(w, "\x00\xffSSH-2.0-OpenSSH\r\n\r\n") }, streamRaw: func(w io.Writer) { io.WriteString(w, "\x00\xffSSH-2.0-OpenSSH\r\n\r\n") },
			jsonErr: []string{"malformed HTTP"}, streamErr: []string{"malformed HTTP"}},
		{name: "a 2xx with garbage",
			jsonRaw:   rawResponse(200, "application/json", -1, "\x00\xff\x13garbage"),
			streamRaw: rawResponse(200, "text/event-stream", -1, "\x00\xff\x13garbage"),
			jsonErr:   []string{`decode response (HTTP 200, Content-Type "application/json"): not a JSON object; body starts "\x00\xff\x13garbage"`},
			streamErr: []string{"stream truncated: the body ended after 10 bytes without [DONE] or [ERROR] (it ended inside an event; its 10 bytes were discarded)"}},
		{name: "a 2xx with HTML",
			jsonRaw:   rawResponse(200, "text/html", -1, "<html><title>Sign in</title></html>"),
			streamRaw: rawResponse(200, "text/html", -1, "<html><title>Sign in</title></html>"),
			jsonErr:   []string{`decode response (HTTP 200, Content-Type "text/html"): not a JSON object; body starts "<html><title>Sign in`},
			streamErr: []string{`HTTP 200 with Content-Type "text/html" is not an event stream; body starts "<html><title>Sign in`}},
		{name: "the body cut in half, the connection closed",
			jsonRaw:   rawResponse(200, "application/json", len(answer), answer[:len(answer)/2]),
			streamRaw: rawResponse(200, "text/event-stream", len(events), events[:len(events)/2]),
			jsonErr:   []string{"read response (HTTP 200): unexpected EOF"},
			streamErr: []string{"stream truncated: reading the body failed after 34 bytes, before [DONE] or [ERROR]: unexpected EOF"}},
		{name: "a Content-Length longer than the body",
			jsonRaw:   rawResponse(200, "application/json", len(answer)+100, answer),
			streamRaw: rawResponse(200, "text/event-stream", len(events)-len("data: [DONE]\n\n")+100, events[:len(events)-len("data: [DONE]\n\n")]),
			jsonErr:   []string{"read response (HTTP 200): unexpected EOF"},
			streamErr: []string{"stream truncated: reading the body failed after 54 bytes, before [DONE] or [ERROR]: unexpected EOF"}},
		{name: "a Content-Length shorter than the body",
			jsonRaw:   rawResponse(200, "application/json", 20, answer),
			streamRaw: rawResponse(200, "text/event-stream", 30, events),
			jsonErr:   []string{`decode response (HTTP 200, Content-Type "application/json"): unexpected end of JSON input; body starts "{\"answer\":\"Hello the"`},
			streamErr: []string{"stream truncated: the body ended after 30 bytes without [DONE] or [ERROR] (it ended inside an event; its 3 bytes were discarded)"}},
		{name: "a body that never ends", opts: []Option{WithMaxEventSize(64 << 10)},
			jsonHandler:   endless(200, "application/json", `{"answer":"`, "blah "),
			streamHandler: endless(200, "text/event-stream", "event: answer\ndata: ", "blah "),
			jsonErr:       []string{"response body exceeds 65536 bytes (raise WithMaxEventSize)"},
			streamErr:     []string{"an event is larger than 65536 bytes (raise the limit with WithMaxEventSize)"}},
		{name: "a stream that stalls", opts: []Option{WithStreamIdleTimeout(50 * time.Millisecond)},
			streamHandler: func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				sseBody(w, "event: answer\ndata: Hel\n\n")
				<-r.Context().Done()
			},
			streamErr: []string{"no data arrived for 50ms, the stream stalled (WithStreamIdleTimeout)"}},
		{name: "a 2xx with an SSE stream to a JSON request",
			jsonRaw: rawResponse(200, "text/event-stream", -1, events),
			jsonErr: []string{`decode response (HTTP 200, Content-Type "text/event-stream"): not a JSON object; body starts "event: answer\ndata: Hello`}},
	}
	for _, tt := range tests {
		for _, call := range badServerCalls {
			raw, handler, want := tt.streamRaw, tt.streamHandler, tt.streamErr
			if call.json {
				raw, handler, want = tt.jsonRaw, tt.jsonHandler, tt.jsonErr
			}
			if want == nil {
				continue
			}
			t.Run(tt.name+"/"+call.name, func(t *testing.T) {
				var base string
				if raw != nil {
					base = rawServer(t, raw)
				} else {
					srv := httptest.NewServer(handler)
					t.Cleanup(srv.Close)
					base = srv.URL
				}
				tr := http.DefaultTransport.(*http.Transport).Clone()
				defer tr.CloseIdleConnections()
				opts := append([]Option{WithBaseURL(base), WithAPIKey(testKey), WithHTTPClient(&http.Client{Transport: tr}), WithMaxRetries(0)}, tt.opts...)
				c, err := NewClient(opts...)
				require.NoError(t, err)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang fails, it does not block the run
				defer cancel()
				err = call.call(ctx, c)
				require.Error(t, err)
				require.NoError(t, ctx.Err(), "the call ended by itself")
				msg := err.Error()
				assert.True(t, strings.HasPrefix(msg, call.op), msg)
				for _, w := range want {
					assert.Contains(t, msg, w)
				}
				assert.LessOrEqual(t, len(msg), 600, "the error is short")
				assert.NotContains(t, msg, testKey)
			})
		}
	}
}

// bytesAllocated runs fn and returns how many bytes the process allocated meanwhile.
func bytesAllocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestHugeErrorBody: a 50 MB error body is read only up to 64 KiB, for every call, so the memory a
// call takes stays bounded; the error shows a bounded message and keeps 64 KiB of the body.
func TestHugeErrorBody(t *testing.T) {
	const size = 50 << 20
	var sent sync.Map // bytes written, per request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusInternalServerError)
		chunk := []byte(strings.Repeat("Internal error. ", 4096)) // 64 KiB
		n := 0
		for n < size {
			m, err := w.Write(chunk)
			n += m
			if err != nil {
				break
			}
		}
		sent.Store(r.URL.Path, n)
	}))
	defer srv.Close()
	for _, call := range badServerCalls {
		t.Run(call.name, func(t *testing.T) {
			tr := srv.Client().Transport.(*http.Transport).Clone()
			defer tr.CloseIdleConnections()
			c, err := NewClient(WithBaseURL(srv.URL), WithAPIKey(testKey), WithHTTPClient(&http.Client{Transport: tr}), WithMaxRetries(0))
			require.NoError(t, err)
			var callErr error
			allocated := bytesAllocated(func() { callErr = call.call(context.Background(), c) })
			t.Logf("allocated %d KiB for a %d MiB error body", allocated>>10, size>>20)
			assert.Less(t, allocated, uint64(8<<20), "memory stays bounded")
			var apiErr *APIError
			require.ErrorAs(t, callErr, &apiErr)
			assert.ErrorIs(t, callErr, ErrServer)
			assert.Len(t, apiErr.Body, maxErrorBody, "64 KiB of the body is kept")
			assert.True(t, strings.HasPrefix(apiErr.Message, "Internal error. Internal error."), apiErr.Message)
			assert.LessOrEqual(t, len(callErr.Error()), 500)
			assert.Contains(t, callErr.Error(), "HTTP 500 Internal Server Error: Internal error.")
		})
	}
}

// TestRedirects: Go's HTTP client follows redirects, and the SDK does not send the
// Authorization header to another origin. A redirect to the same host keeps working (a 307 or 308 sends the same POST
// with its body and key again); a redirect to another host reaches it without the API key, and
// an error from there says where the request went and that the key did not go with it.
func TestRedirects(t *testing.T) {
	type seen struct {
		method, path, auth, body string
	}
	var mu sync.Mutex
	var got []seen
	record := func(r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, seen{r.Method, r.URL.Path, r.Header.Get("Authorization"), string(body)})
	}
	// The other host answers as an API that did not get a key would.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(r)
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"UNAUTHORIZED"}`)
			return
		}
		io.WriteString(w, `{"answer":"from the other host"}`)
	}))
	defer other.Close()
	otherURL, err := url.Parse(other.URL)
	require.NoError(t, err)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(r)
		switch {
		case strings.HasPrefix(r.URL.Path, "/moved/"):
			code := map[string]int{"a307": 307, "a308": 308, "a301": 301, "a302": 302}[strings.Split(r.URL.Path, "/")[3]]
			http.Redirect(w, r, "/api/"+strings.TrimPrefix(r.URL.Path, "/moved/"), code)
		case strings.HasPrefix(r.URL.Path, "/away/"):
			// the other host, by name: a host that is not the API's
			http.Redirect(w, r, "http://other.example:"+otherURL.Port()+"/api/"+strings.TrimPrefix(r.URL.Path, "/away/"), http.StatusTemporaryRedirect)
		case r.Method != http.MethodPost:
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"answer":"Hello"}`)
		}
	}))
	defer api.Close()
	// Every host name leads to loopback: the API is 127.0.0.1, the other host other.example.
	tr := api.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+port)
	}
	defer tr.CloseIdleConnections()
	ctx := context.Background()

	tests := []struct {
		name   string
		base   string // below the API server's URL
		agent  string
		answer string   // the call succeeds with this answer
		err    []string // or fails with an error saying these
		is     error
		want   []seen // the requests the servers got after the first
	}{
		{name: "307 to the same host", base: "/moved", agent: "a307", answer: "Hello",
			want: []seen{{"POST", "/api/agents/a307/query", "Bearer " + testKey, `{"query":"Hi"}`}}},
		{name: "308 to the same host", base: "/moved", agent: "a308", answer: "Hello",
			want: []seen{{"POST", "/api/agents/a308/query", "Bearer " + testKey, `{"query":"Hi"}`}}},
		{name: "301 to the same host turns the POST into a GET", base: "/moved", agent: "a301",
			err:  []string{"HTTP 405 Method Not Allowed: method not allowed", "the request was redirected to " + api.URL + "/api/agents/a301/query, which turned the POST into a GET"},
			want: []seen{{"GET", "/api/agents/a301/query", "Bearer " + testKey, ""}}},
		{name: "302 to the same host turns the POST into a GET", base: "/moved", agent: "a302",
			err:  []string{"HTTP 405", "turned the POST into a GET"},
			want: []seen{{"GET", "/api/agents/a302/query", "Bearer " + testKey, ""}}},
		{name: "307 to another host goes without the key", base: "/away", agent: "a1", is: ErrUnauthorized,
			err: []string{"HTTP 401 Unauthorized: UNAUTHORIZED",
				"the request was redirected to http://other.example:" + otherURL.Port() + "/api/agents/a1/query, without the API key: it is sent only to " + api.URL},
			want: []seen{{"POST", "/api/agents/a1/query", "", `{"query":"Hi"}`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			c, err := NewClient(WithBaseURL(api.URL+tt.base), WithAPIKey(testKey), WithHTTPClient(&http.Client{Transport: tr}), WithMaxRetries(0))
			require.NoError(t, err)
			res, err := c.Query(ctx, tt.agent, QueryRequest{Query: "Hi"})
			if tt.err == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.answer, res.Answer)
			} else {
				require.Error(t, err)
				for _, w := range tt.err {
					assert.Contains(t, err.Error(), w)
				}
				if tt.is != nil {
					assert.ErrorIs(t, err, tt.is)
				}
				assert.NotContains(t, err.Error(), testKey)
			}
			mu.Lock()
			defer mu.Unlock()
			require.NotEmpty(t, got)
			assert.Equal(t, tt.want, got[1:], "the requests after the redirect")
		})
	}
	t.Run("without a key, both hints", func(t *testing.T) {
		c, err := NewClient(WithBaseURL(api.URL+"/away"), WithAPIKey(""), WithHTTPClient(&http.Client{Transport: tr}), WithMaxRetries(0))
		require.NoError(t, err)
		_, err = c.Query(ctx, "a1", QueryRequest{Query: "Hi"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "HTTP 401 Unauthorized: UNAUTHORIZED (no API key was configured: use WithAPIKey or set LABUREN_API_KEY; "+
			"the request was redirected to http://other.example:"+otherURL.Port()+"/api/agents/a1/query; point WithBaseURL at the new location)")
	})
	t.Run("a client that refuses redirects", func(t *testing.T) {
		hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		c, err := NewClient(WithBaseURL(api.URL+"/away"), WithAPIKey(testKey), WithHTTPClient(hc), WithMaxRetries(0))
		require.NoError(t, err)
		_, err = c.Query(ctx, "a1", QueryRequest{Query: "Hi"})
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, http.StatusTemporaryRedirect, apiErr.StatusCode)
		assert.Contains(t, err.Error(), `laburen: query agent "a1": POST /away/agents/a1/query: HTTP 307 Temporary Redirect`)
	})
	t.Run("a stream follows a 307 too", func(t *testing.T) {
		c, err := NewClient(WithBaseURL(api.URL+"/away"), WithAPIKey(testKey), WithHTTPClient(&http.Client{Transport: tr}), WithMaxRetries(0))
		require.NoError(t, err)
		_, err = c.QueryStream(ctx, "a1", QueryRequest{Query: "Hi"})
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrUnauthorized)
		assert.Contains(t, err.Error(), "without the API key")
	})
}

// TestErrorTextFromTheServerIsOneLine: whatever a server puts in an error, the code and message
// an error shows are valid UTF-8 on one line, and bounded; the raw body stays as it came.
func TestErrorTextFromTheServerIsOneLine(t *testing.T) {
	long := strings.Repeat("too long ", 500)
	tests := []struct {
		name, contentType, body string
		code, message           string
	}{
		{"JSON message with line breaks and a terminal escape", "application/json", `{"message":"line 1\nFAKE log line\r\n\u001b[31mred"}`,
			"", "line 1 FAKE log line [31mred"},
		{"plain text on several lines", "text/plain", "Service down.\n\n  Try\tlater.\n", "", "Service down. Try later."},
		{"invalid UTF-8", "text/plain", "caf\xe9 ferm\xe9", "", "caf\uFFFD ferm\uFFFD"},
		{"a long JSON message is cut", "application/json", `{"error":"` + long + `"}`, "", long[:maxErrorMessage] + "..."},
		{"a long JSON code is cut", "application/json", `{"code":"` + strings.Repeat("X", 300) + `"}`, strings.Repeat("X", maxErrorCode) + "...", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newAPIError(500, http.Header{"Content-Type": {tt.contentType}}, []byte(tt.body), (&config{}).redact)
			assert.Equal(t, tt.code, e.Code)
			assert.Equal(t, tt.message, e.Message)
			assert.Equal(t, tt.body, e.Body)
		})
	}
	t.Run("[ERROR] event", func(t *testing.T) {
		st := readerStream(strings.NewReader("data: [ERROR]RATE_LIMIT\ndata: try \x1b[2Jlater\xff\n\n"), nil)
		defer st.Close()
		for st.Next() {
		}
		var apiErr *APIError
		require.ErrorAs(t, st.Err(), &apiErr)
		assert.Equal(t, "RATE_LIMIT try [2Jlater\uFFFD", apiErr.Message)
		assert.Equal(t, "[ERROR]RATE_LIMIT\ntry \x1b[2Jlater\uFFFD", apiErr.Body, "the event's data, decoded as UTF-8")
	})
}
