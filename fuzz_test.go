package laburen

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzAPIError decodes any error body, under any status, content type and Retry-After: it never
// panics, the raw body is kept as it came, and the code and message shown in Error are bounded,
// valid UTF-8 and on one line, whatever the server sent.
func FuzzAPIError(f *testing.F) {
	f.Add(500, "application/json", "", []byte(`{"error":{"code":"INTERNAL_SERVER_ERROR","message":"db down"}}`))
	f.Add(402, "text/event-stream", "3", []byte("data: [ERROR]USAGE_LIMIT\n\n"))
	f.Add(502, "text/html", "Wed, 21 Oct 2015 07:28:00 GMT", []byte("<html><title>502 Bad Gateway</title></html>"))
	f.Add(404, "text/plain", "-1", []byte("404 page not found\n"))
	f.Add(0, "", "NaN", []byte("\xff\xfe\x1b[31mred\r\nline"))
	f.Fuzz(func(t *testing.T, status int, contentType, retryAfter string, body []byte) {
		body = body[:min(len(body), maxErrorBody)]
		// The Retry-After text doubles as a request ID: both come from the server's headers.
		header := http.Header{"Content-Type": {contentType}, "Retry-After": {retryAfter}, "X-Request-Id": {retryAfter}}
		e := newAPIError(status, header, body, (&config{}).redact)
		checkShownText(t, "request ID", e.RequestID, maxErrorCode)
		assert.Equal(t, string(body), e.Body, "the raw body is kept")
		assert.GreaterOrEqual(t, e.RetryAfter, 0*e.RetryAfter)
		checkShownText(t, "code", e.Code, maxErrorCode)
		checkShownText(t, "message", e.Message, maxErrorMessage)
		msg := e.Error()
		require.NotPanics(t, func() {
			for _, s := range sentinels {
				_ = errors.Is(e, s)
			}
		})
		assert.LessOrEqual(t, len(msg), 64+2*maxErrorCode+maxErrorMessage+200, "Error() is bounded")
	})
}

// checkShownText checks a text from the server that an error message shows.
func checkShownText(t *testing.T, what, s string, limit int) {
	t.Helper()
	assert.LessOrEqual(t, len(s), limit+len("..."), "%s is bounded: %q", what, s)
	assert.True(t, utf8.ValidString(s), "%s is valid UTF-8: %q", what, s)
	assert.Equal(t, -1, strings.IndexFunc(s, unicode.IsControl), "%s has no control character: %q", what, s)
	assert.Equal(t, strings.TrimSpace(s), s, "%s is trimmed: %q", what, s)
}

// splitAt cuts s into pieces: a cut after byte i when bit i%64 of cuts is set. Pieces may cut a
// UTF-8 sequence in two, as a server that splits bytes does.
func splitAt(s string, cuts uint64) []string {
	var pieces []string
	start := 0
	for i := range len(s) {
		if cuts>>(i%64)&1 == 1 {
			pieces = append(pieces, s[start:i+1])
			start = i + 1
		}
	}
	return append(pieces, s[start:])
}

// renderAnswer writes an answer as an event stream: its pieces as answer events, then an
// endpoint_response with the whole answer, then [DONE]. Encoded, every payload is percent-encoded
// as encodeURIComponent does (the upstream wire); plain, the payloads are sent as they are, a
// piece with line breaks as several data lines.
func renderAnswer(pieces []string, response []byte, encoded bool) string {
	var b strings.Builder
	for _, p := range pieces {
		b.WriteString("event: answer\n")
		if encoded {
			b.WriteString("data: " + encodeURIComponent(p) + "\n")
		} else {
			for _, line := range strings.Split(p, "\n") {
				b.WriteString("data: " + line + "\n")
			}
		}
		b.WriteString("\n")
	}
	data := string(response)
	if encoded {
		data = encodeURIComponent(data)
	}
	b.WriteString("event: endpoint_response\ndata: " + data + "\n\ndata: [DONE]\n\n")
	return b.String()
}

// FuzzStreamEncodedMatchesPlain: a percent-encoded and a plain rendering of the same answer,
// cut into the same pieces, decode alike: the same events with the same text, the same joined
// answer (the answer itself), the same response. The plain rendering cannot carry a CR (a line
// end in SSE), a piece that reads as percent-encoding, or a piece that is not valid UTF-8 (it
// becomes U+FFFD; see TestStreamInvalidUTF8); such inputs are left out.
func FuzzStreamEncodedMatchesPlain(f *testing.F) {
	f.Add("Hola, ¿cómo estás?", uint64(0b1001))
	f.Add("línea 1\nlínea 2\n\n", uint64(1<<7))
	f.Add("100% seguro: 50 %", uint64(0))
	f.Add("€ 😀", uint64(0b10))
	f.Add("", uint64(0))
	f.Fuzz(func(t *testing.T, answer string, cuts uint64) {
		pieces := splitAt(answer, cuts)
		for _, p := range pieces {
			if _, looksEncoded := percentEncoded(p); looksEncoded || strings.ContainsRune(p, '\r') || !utf8.ValidString(p) {
				return
			}
		}
		response, err := json.Marshal(map[string]string{"answer": answer, "messageId": "m1"})
		require.NoError(t, err)
		type seen struct {
			events   []evt
			answer   string
			response QueryResponse
		}
		read := func(in string, feed func(io.Reader) io.Reader) seen {
			st := readerStream(feed(strings.NewReader(in)), nil)
			defer st.Close()
			var s seen
			for st.Next() {
				ev := st.Current()
				if ev.Type == EventAnswer {
					assert.Equal(t, ev.Data, ev.Text)
				}
				s.events = append(s.events, evt{ev.Type, ev.Data})
			}
			require.NoError(t, st.Err(), "%q", in)
			require.NotNil(t, st.Response())
			s.answer, s.response = st.Answer(), *st.Response()
			s.response.Raw = nil
			return s
		}
		for _, feed := range feeds[:2] {
			plain := read(renderAnswer(pieces, response, false), feed.wrap)
			encoded := read(renderAnswer(pieces, response, true), feed.wrap)
			assert.Equal(t, plain, encoded, feed.name)
			assert.Equal(t, answer, plain.answer, "%s: the joined answer is the answer", feed.name)
			assert.Len(t, plain.events, len(pieces)+1)
		}
	})
}
