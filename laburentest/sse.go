package laburentest

import (
	"context"
	"net/http"
	"strings"
	"time"
	"unicode"
)

// EncodeURIComponent percent-encodes s exactly as JavaScript's encodeURIComponent does, which
// is how the upstream server writes every stream payload: every byte of s's UTF-8 encoding is
// written as %XX (uppercase hex) except the letters, the digits and - _ . ! ~ * ' ( ). Unlike
// JavaScript it does not fail on invalid UTF-8: such bytes are encoded one by one.
func EncodeURIComponent(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_.!~*'()", c) >= 0
}

// Chunks cuts an answer into the word-sized pieces a stream sends as answer events: each
// piece is a run of white space followed by a word, as a model's tokens usually are, so that
// the pieces joined in order are exactly the answer. White space at the end goes with the
// last piece. An empty answer has no pieces.
func Chunks(answer string) []string {
	var out []string
	start := 0
	inWord := false
	for i, r := range answer {
		space := unicode.IsSpace(r)
		if space && inWord && i > start {
			// a word just ended; the space starts the next piece
			out = append(out, answer[start:i])
			start = i
		}
		inWord = !space
	}
	if start < len(answer) {
		rest := answer[start:]
		if len(out) > 0 && strings.TrimSpace(rest) == "" {
			out[len(out)-1] += rest
		} else {
			out = append(out, rest)
		}
	}
	return out
}

// event is one stream event before encoding.
type event struct {
	name string // the event line's value
	data string // the payload, unencoded
}

// encode renders an event in the server's stream format.
func (e event) encode(plain bool) string {
	if !plain {
		return "event: " + e.name + "\ndata: " + EncodeURIComponent(e.data) + "\n\n"
	}
	var b strings.Builder
	b.WriteString("event: " + e.name + "\n")
	data := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(e.data)
	for line := range strings.SplitSeq(data, "\n") {
		b.WriteString("data: " + line + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

// stream writes events as text/event-stream, flushing each, then [DONE] unless a fault (one
// of the stream kinds, or nil) ends the stream otherwise.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, events []event, f *fault) {
	s.mu.Lock()
	plain, delay := s.plain, s.eventDelay
	s.mu.Unlock()

	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()

	send := func(frame string) bool {
		if !s.wait(r.Context(), delay) {
			return false
		}
		if _, err := w.Write([]byte(frame)); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for i, ev := range events {
		if f != nil && i == f.afterEvents {
			break
		}
		if !send(ev.encode(plain)) {
			return // the client went away: stop generating, as the API does
		}
	}
	if f != nil {
		switch f.kind {
		case faultStreamError:
			// One line, as the API writes it: a line break would end the frame early.
			send("data: [ERROR]" + strings.NewReplacer("\r", " ", "\n", " ").Replace(f.body) + "\n\n")
		case faultCut:
			panic(http.ErrAbortHandler) // closes the connection without ending the response
		case faultStall:
			select {
			case <-r.Context().Done():
			case <-s.bgCtx.Done():
			}
		}
		return
	}
	if plain {
		send("data: [DONE]\n\n")
	} else {
		send("event: \ndata: [DONE]\n\n")
	}
}

// wait waits d, and reports false when the request or the server ended first.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.bgCtx.Done():
		return false
	}
}
