package laburentest

import (
	"net/http"
	"slices"
	"strconv"
	"time"
)

// faultKind says where a fault strikes.
type faultKind int

const (
	// faultStatus answers a request with an error status before anything else happens.
	faultStatus faultKind = iota
	// faultStreamError ends a stream with a data: [ERROR] event.
	faultStreamError
	// faultCut drops the connection in the middle of a stream.
	faultCut
	// faultStall stops a stream without closing it.
	faultStall
)

type fault struct {
	kind        faultKind
	left        int // requests it still applies to
	status      int
	header      http.Header
	body        string
	afterEvents int
}

func (s *Server) addFault(f *fault) {
	if f.left <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// takeFault consumes one use of the oldest queued fault of one of the kinds, or returns nil.
// s.mu must not be held.
func (s *Server) takeFault(kinds ...faultKind) *fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if !slices.Contains(kinds, f.kind) {
			continue
		}
		f.left--
		if f.left == 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return f
	}
	return nil
}

// FailNext answers the next n requests, whatever they are, with status and body and nothing
// else (nothing is stored). The body is sent as application/json when it starts with "{",
// text/plain otherwise, so it can play a proxy's error page too.
func (s *Server) FailNext(n, status int, body string) {
	s.addFault(&fault{kind: faultStatus, left: n, status: status, body: body})
}

// RateLimitNext answers the next n requests with 429 {"error":"RATE_LIMIT"} and a Retry-After
// header of retryAfter: whole seconds as the API writes them, or a decimal number of seconds
// when retryAfter is not whole (which package laburen reads, so that retry tests stay fast). A
// negative retryAfter sends no Retry-After header.
func (s *Server) RateLimitNext(n int, retryAfter time.Duration) {
	h := http.Header{}
	if retryAfter >= 0 {
		h.Set("Retry-After", strconv.FormatFloat(retryAfter.Seconds(), 'f', -1, 64))
	}
	s.addFault(&fault{kind: faultStatus, left: n, status: http.StatusTooManyRequests, header: h,
		body: `{"error":"RATE_LIMIT"}`})
}

// UsageLimitNext answers the next n requests with 402 {"error":"USAGE_LIMIT"}, before any
// stream starts. StreamErrorNext(n, 0, "USAGE_LIMIT") plays the other form of the same limit,
// inside an HTTP 200 stream.
func (s *Server) UsageLimitNext(n int) {
	s.addFault(&fault{kind: faultStatus, left: n, status: http.StatusPaymentRequired,
		body: `{"error":"USAGE_LIMIT"}`})
}

// StreamErrorNext makes the next n streams send afterEvents events, then the in-band error
// event "data: [ERROR]" + text (text is a code such as "USAGE_LIMIT" or a message), and end.
// The user's message is stored; the answer is not. Requests that do not stream leave the fault
// for later ones.
func (s *Server) StreamErrorNext(n, afterEvents int, text string) {
	s.addFault(&fault{kind: faultStreamError, left: n, afterEvents: max(afterEvents, 0), body: text})
}

// CutStreamNext makes the next n streams send afterEvents events and then drop the
// connection, without [DONE], as a crashed server or a proxy would. The conversation is
// stored as if the answer had been sent. Requests that do not stream leave the fault for later
// ones.
func (s *Server) CutStreamNext(n, afterEvents int) {
	s.addFault(&fault{kind: faultCut, left: n, afterEvents: max(afterEvents, 0)})
}

// StallStreamNext makes the next n streams send their headers and afterEvents events, then
// nothing more while keeping the connection open, until the client goes away or the server
// closes. Use it to test idle timeouts and cancellation. Requests that do not stream leave the
// fault for later ones.
func (s *Server) StallStreamNext(n, afterEvents int) {
	s.addFault(&fault{kind: faultStall, left: n, afterEvents: max(afterEvents, 0)})
}

// DuplicateWebhooksNext makes the next n webhook deliveries arrive twice, one after the other,
// as a receiver must be ready for.
func (s *Server) DuplicateWebhooksNext(n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.duplicates += n
}

// ClearFaults drops every fault still queued by the ...Next methods.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
	s.duplicates = 0
}
