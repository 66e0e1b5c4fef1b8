package laburen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors, matched with errors.Is by an *APIError's status or code (also in a stream).
var (
	ErrUnauthorized    = errors.New("laburen: unauthorized")        // 401, 403, UNAUTHORIZED
	ErrUsageLimit      = errors.New("laburen: usage limit reached") // 402, USAGE_LIMIT
	ErrNotFound        = errors.New("laburen: not found")           // 404, NOT_FOUND
	ErrRateLimited     = errors.New("laburen: rate limited")        // 429, RATE_LIMIT
	ErrInvalidRequest  = errors.New("laburen: invalid request")     // 400, 422, INVALID_REQUEST
	ErrServer          = errors.New("laburen: server error")        // 5xx, INTERNAL_SERVER_ERROR
	ErrStreamTruncated = errors.New("laburen: stream truncated")    // no [DONE] or [ERROR]; wraps io.ErrUnexpectedEOF too
)

// Caps on an error response: how much of it is read and kept in APIError.Body, and how much of
// the code and message found in it is shown.
const (
	maxErrorBody    = 64 << 10
	maxErrorCode    = 128
	maxErrorMessage = 1024
)

// APIError is a non-2xx response, or an [ERROR] event in a stream. Its text says where it came
// from: "POST /api/agents/x/query: HTTP 404 Not Found: NOT_FOUND".
type APIError struct {
	StatusCode   int
	Code         string        // the server's error code, such as "USAGE_LIMIT"; may be empty
	Message      string        // the server's error text, or an HTML or plain error page's
	Body         string        // the start of the body (at most 64 KiB), or the [ERROR] event's data
	RetryAfter   time.Duration // from a Retry-After header; zero without one
	Method, Path string        // the request's: "POST", "/api/agents/x/query"
	Attempts     int           // requests sent, retries included; 0 for an [ERROR] event
	RequestID    string        // from X-Request-Id, Request-Id, X-Amzn-Requestid, X-Vercel-Id or Cf-Ray
	Header       http.Header   // the response's (for an [ERROR] event, the stream's)
	inStream     bool          // an [ERROR] event inside a stream, not an HTTP error status
	hint         string        // advice added by the SDK, such as "no API key was configured"
}

// requestIDHeaders are the headers read into APIError.RequestID, in order.
var requestIDHeaders = []string{"X-Request-Id", "Request-Id", "X-Amzn-Requestid", "X-Vercel-Id", "Cf-Ray"}

func requestID(h http.Header) string {
	for _, k := range requestIDHeaders {
		if v := h.Get(k); v != "" {
			return oneLine(v, maxErrorCode)
		}
	}
	return ""
}

// Error describes the request, the status, the code and the message.
func (e *APIError) Error() string {
	var b strings.Builder
	add := func(s string) {
		if s == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(s)
	}
	if e.Path != "" {
		add(strings.TrimSpace(e.Method + " " + e.Path))
	}
	switch {
	case e.inStream:
		add("stream error")
	case e.StatusCode != 0:
		status := fmt.Sprintf("HTTP %d", e.StatusCode)
		if t := http.StatusText(e.StatusCode); t != "" {
			status += " " + t
		}
		add(status)
	}
	add(e.Code)
	add(e.Message)
	var notes []string
	if e.RequestID != "" {
		notes = append(notes, "request ID "+e.RequestID)
	}
	if e.Attempts > 1 {
		notes = append(notes, fmt.Sprintf("after %d attempts", e.Attempts))
	}
	if e.hint != "" {
		notes = append(notes, e.hint)
	}
	if len(notes) > 0 {
		b.WriteString(" (" + strings.Join(notes, "; ") + ")")
	}
	return b.String()
}

// Is reports whether e belongs to target's class, one of the sentinel errors.
func (e *APIError) Is(target error) bool {
	code := func(codes ...string) bool {
		for _, c := range codes {
			if strings.EqualFold(e.Code, c) {
				return true
			}
		}
		return false
	}
	switch target {
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden ||
			code("UNAUTHORIZED", "FORBIDDEN")
	case ErrUsageLimit:
		return e.StatusCode == http.StatusPaymentRequired || code("USAGE_LIMIT")
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound || code("NOT_FOUND")
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests || code("RATE_LIMIT", "RATE_LIMITED")
	case ErrInvalidRequest:
		return e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusUnprocessableEntity ||
			code("INVALID_REQUEST", "BAD_REQUEST")
	case ErrServer:
		return e.StatusCode >= 500 || code("INTERNAL_SERVER_ERROR")
	}
	return false
}

// ValidationError reports input refused before anything was sent.
type ValidationError struct {
	Field  string // the JSON name ("attachments[1].url") or argument ("agentID", "phone")
	Reason string
}

// Error returns "invalid <Field>: <Reason>".
func (e *ValidationError) Error() string {
	return "invalid " + e.Field + ": " + e.Reason
}

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// newAPIError builds the APIError for a non-2xx response whose body (as read) is body. Every
// text from the server, its headers included, goes through redact (config.redact) before it
// is cut, so that no cut leaves part of an API key in view.
func newAPIError(status int, header http.Header, body []byte, redact func(string, int) string) *APIError {
	header = redactHeader(header, redact)
	kept := redact(string(body), -1)
	if len(kept) > maxErrorBody {
		kept = redact(kept[:maxErrorBody], -1) // drops a start of the key the cut left at the end
	}
	e := &APIError{StatusCode: status, Body: kept, Header: header, RequestID: requestID(header)}
	code, message := errorText(header.Get("Content-Type"), body, redact)
	e.Code, e.Message = oneLine(redact(code, -1), maxErrorCode), oneLine(redact(message, -1), maxErrorMessage)
	if ra, ok := parseRetryAfter(header.Get("Retry-After"), time.Now()); ok {
		e.RetryAfter = ra
	}
	return e
}

// splitText files an error text as a code when it looks like one, else as a message.
func splitText(s string) (code, message string) {
	if isErrorCode(s) {
		return s, ""
	}
	return "", s
}

// isErrorCode reports whether s looks like a machine code: "USAGE_LIMIT", "NOT_FOUND".
func isErrorCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// errorText extracts the error code and message from an error body in any of the forms the API
// and the proxies in front of it use: JSON {"error": ...}, an SSE "data: [ERROR]..." frame, HTML,
// or plain text. A text it cuts goes through redact first.
func errorText(contentType string, body []byte, redact func(string, int) string) (code, message string) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return "", ""
	}
	if body[0] == '{' {
		if code, message, ok := jsonErrorText(body, redact); ok {
			return code, message
		}
	}
	if s, ok := sseErrorText(body); ok {
		return splitText(s)
	}
	if strings.Contains(contentType, "html") || bytes.HasPrefix(body, []byte("<")) {
		return "", htmlText(body, redact)
	}
	return "", redact(string(body), 300)
}

// jsonErrorText reads {"error": "X"}, {"error": {"code": .., "message": ..}} and
// {"code": .., "message": ..}, with keys matched exactly (see exactObject). A JSON object in
// none of these forms is shown as it came.
func jsonErrorText(body []byte, redact func(string, int) string) (code, message string, ok bool) {
	v, ok := exactMembers(body, "error", "message", "code")
	if !ok {
		return "", "", false
	}
	errV, messageV, codeV := v[0], v[1], v[2]
	var s string
	if len(errV) > 0 && json.Unmarshal(errV, &s) == nil && s != "" {
		code, message = splitText(s)
		if m := jsonString(messageV); m != "" && m != s {
			message = firstNonEmpty(message, m)
		}
		return code, message, true
	}
	if obj, ok := exactMembers(errV, "code", "type", "message"); ok {
		code = firstNonEmpty(jsonString(obj[0]), jsonString(obj[1]))
		message = jsonString(obj[2])
		if code != "" || message != "" {
			return code, message, true
		}
	}
	code, message = jsonString(codeV), jsonString(messageV)
	if code != "" || message != "" {
		return code, message, true
	}
	return "", redact(string(body), 300), true
}

// exactMembers returns the raw values of the keys names of the JSON object b, matched exactly
// (see exactObject); ok is false when b is not a JSON object.
func exactMembers(b []byte, names ...string) (values []json.RawMessage, ok bool) {
	values = make([]json.RawMessage, len(names))
	err := exactObject(b, func(key, value []byte) error {
		if i := slices.Index(names, string(key)); i >= 0 {
			values[i] = value
		}
		return nil
	})
	return values, err == nil
}

// jsonString returns a JSON string or number as text, "" for anything else.
func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// sseErrorText finds the "[ERROR]X" payload of an SSE frame sent as an error body.
func sseErrorText(body []byte) (string, bool) {
	for line := range strings.Lines(string(body)) {
		line = strings.TrimRight(line, "\r\n")
		data, ok := strings.CutPrefix(line, "data:")
		if !ok {
			continue
		}
		if msg, ok := strings.CutPrefix(strings.TrimPrefix(data, " "), "[ERROR]"); ok {
			return strings.TrimSpace(msg), true
		}
	}
	return "", false
}

// htmlText returns the <title> of an HTML error page, or its start when it has none.
func htmlText(body []byte, redact func(string, int) string) string {
	// Lower ASCII only: bytes.ToLower turns invalid UTF-8 into U+FFFD and would change the
	// length, and with it the positions found.
	lower := asciiLower(body)
	if i := bytes.Index(lower, []byte("<title>")); i >= 0 {
		rest := body[i+len("<title>"):]
		if j := bytes.Index(lower[i+len("<title>"):], []byte("</title>")); j >= 0 {
			if t := strings.Join(strings.Fields(string(rest[:j])), " "); t != "" {
				return "HTML error page: " + t
			}
		}
	}
	text := strings.Join(strings.Fields(stripTags(string(body))), " ")
	if text == "" {
		text = strings.Join(strings.Fields(string(body)), " ")
	}
	return "HTML error page: " + redact(text, 200)
}

// asciiLower returns a copy of b with the ASCII letters in lower case, byte for byte.
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// stripTags drops the markup of an HTML page, keeping its text.
func stripTags(s string) string {
	var b strings.Builder
	inTag := false
	for _, r := range s {
		switch {
		case r == '<':
			inTag = true
			b.WriteByte(' ')
		case r == '>' && inTag:
			inTag = false
		case !inTag:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// oneLine makes a text the server sent fit to be shown in an error message, which ends up in
// logs: invalid UTF-8 becomes U+FFFD, control characters and runs of white space become single
// spaces (a server cannot forge a log line or send terminal escapes), and it is cut to n bytes.
func oneLine(s string, n int) string {
	if len(s) > 4*n {
		s = s[:4*n] + "..." // bound the work; a rune cut in two becomes U+FFFD below
	}
	clean := utf8.ValidString(s) && !strings.Contains(s, "  ") &&
		strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) && r != ' ' }) < 0
	if !clean {
		s = strings.ToValidUTF8(s, "\uFFFD")
		s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	}
	return shorten(strings.TrimSpace(s), n)
}

// shorten cuts s to at most n bytes on a rune boundary, marking the cut with "...".
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// streamError is an error with its own message that matches the errors it lists.
type streamError struct {
	msg  string
	errs []error
}

func (e *streamError) Error() string   { return e.msg }
func (e *streamError) Unwrap() []error { return e.errs }

// tooLargeError reports an event or an answer past the limit that option sets.
type tooLargeError struct {
	what, option string // "an event", "WithMaxEventSize"
	max          int
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("%s is larger than %d bytes (raise the limit with %s)", e.what, e.max, e.option)
}
