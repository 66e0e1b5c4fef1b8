package laburentest

import (
	"context"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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
// piece is a run of white space followed by a word, as a model's tokens usually are, and the
// line breaks that follow the word, so that no piece but the first starts with a line break
// (see WithPlainStreamData). The pieces joined in order are exactly the answer. White space
// at the end goes with the last piece. An empty answer has no pieces.
func Chunks(answer string) []string {
	var out []string
	start := 0 // of the current piece
	for i := 0; i < len(answer); {
		word := skip(answer, i, true)
		end := skip(answer, word, false)
		if end == word {
			break // only white space is left
		}
		next := skip(answer, end, true)
		cut := end
		if nl := strings.LastIndexAny(answer[end:next], "\r\n"); nl >= 0 {
			cut = end + nl + 1
		}
		if next == len(answer) {
			cut = next
		}
		out = append(out, answer[start:cut])
		start, i = cut, next
	}
	if start < len(answer) {
		out = append(out, answer[start:]) // an answer of white space alone
	}
	return out
}

// skip returns the index of the first rune of s from i that is not white space (space true),
// or that is (space false); len(s) when there is none.
func skip(s string, i int, space bool) int {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) != space {
			return i
		}
		i += n
	}
	return i
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
			send("data: [ERROR]" + oneLine(f.body) + "\n\n")
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

// oneLine puts an [ERROR] text on one line, as the API writes it: a line break would end the
// frame early.
func oneLine(text string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(text)
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
