package laburentest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/internal/httpurl"
)

// maxBody caps the request bodies the server reads.
const maxBody = 4 << 20

// recorder records the status of a response in the request's record.
type recorder struct {
	http.ResponseWriter
	s         *Server
	rec       *Request
	wrote     bool
	sseErrors bool // errors are written as "data: [ERROR]..." (WithSSEErrorBodies)
}

func (w *recorder) WriteHeader(status int) {
	if !w.wrote {
		w.wrote = true
		w.s.mu.Lock()
		w.rec.StatusCode = status
		w.s.mu.Unlock()
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recorder) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the underlying writer, to flush it.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serveHTTP records the request, plays a queued fault, then routes it.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// The request's context also ends when the server closes, so that a responder waiting on
	// it cannot hold Close up.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.bgCtx, cancel)()
	r = r.WithContext(ctx)
	body, readErr := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	agentID, endpoint, routed := route(r.URL)
	rec := &Request{
		Method:     r.Method,
		Path:       r.URL.Path,
		RequestURI: r.RequestURI,
		AgentID:    agentID,
		Header:     r.Header.Clone(),
		Body:       body,
	}
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.mu.Unlock()
	sseErrors := s.sseErrors && asksToStream(body) // s.sseErrors is set before the server starts
	w = &recorder{ResponseWriter: w, s: s, rec: rec, sseErrors: sseErrors}

	if f := s.takeFault(faultStatus); f != nil {
		for k, v := range f.header {
			w.Header()[k] = slices.Clone(v)
		}
		var jsonErr struct{ Error string }
		if sseErrors && json.Unmarshal([]byte(f.body), &jsonErr) == nil && jsonErr.Error != "" {
			writeError(w, f.status, jsonErr.Error)
			return
		}
		if strings.HasPrefix(strings.TrimSpace(f.body), "{") {
			w.Header().Set("Content-Type", "application/json")
		} else {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		w.WriteHeader(f.status)
		_, _ = io.WriteString(w, f.body)
		return
	}
	switch {
	case !routed:
		writeError(w, http.StatusNotFound, "NOT_FOUND")
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
		return
	case readErr != nil:
		writeError(w, http.StatusBadRequest, "cannot read the request body: "+readErr.Error())
		return
	case len(body) > maxBody:
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body exceeds %d bytes", maxBody))
		return
	}

	s.mu.Lock()
	agent := s.agents[agentID]
	key, hasKey := bearer(r.Header)
	validKey := hasKey && slices.Contains(s.keys, key)
	s.mu.Unlock()
	switch {
	case agent == nil:
		writeError(w, http.StatusNotFound, "NOT_FOUND")
		return
	case !agent.public && !hasKey:
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED")
		return
	case !agent.public && !validKey:
		writeError(w, http.StatusForbidden, "UNAUTHORIZED")
		return
	}
	if endpoint == "query" {
		s.query(w, r, agentID, *agent, body)
	} else {
		s.agentQuery(w, r, agentID, body, validKey)
	}
}

// asksToStream reports whether a request body has "streaming": true.
func asksToStream(body []byte) bool {
	var fields map[string]json.RawMessage
	return json.Unmarshal(body, &fields) == nil && string(fields["streaming"]) == "true"
}

// route splits "/api/agents/{id}/{query,query-agent}".
func route(u *url.URL) (agentID, endpoint string, ok bool) {
	rest, found := strings.CutPrefix(u.EscapedPath(), "/api/agents/")
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 2 || parts[0] == "" {
		return "", "", false
	}
	id, err := url.PathUnescape(parts[0])
	if err != nil {
		return "", "", false
	}
	if parts[1] != "query" && parts[1] != "query-agent" {
		return id, "", false
	}
	return id, parts[1], true
}

// bearer reads the API key of an "Authorization: Bearer <key>" header.
func bearer(h http.Header) (string, bool) {
	scheme, key, _ := strings.Cut(strings.TrimSpace(h.Get("Authorization")), " ")
	key = strings.TrimSpace(key)
	if !strings.EqualFold(scheme, "Bearer") || key == "" {
		return "", false
	}
	return key, true
}

// query serves POST /agents/{id}/query.
func (s *Server) query(w http.ResponseWriter, r *http.Request, agentID string, agent agentConfig, body []byte) {
	var req laburen.QueryRequest
	streaming, err := decodeRequest(body, &req)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if msg := checkCommon(req.Query, req.Channel); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	if req.WebhookURL != "" {
		if _, err := httpurl.Parse(req.WebhookURL); err != nil {
			writeError(w, http.StatusBadRequest, "webhookUrl must be an absolute http or https URL")
			return
		}
	} else if agent.conversational && (req.Channel == "" || req.Channel == laburen.ChannelAPI) {
		writeError(w, http.StatusBadRequest, "webhookUrl is required: conversational mode is on for this agent")
		return
	}

	s.mu.Lock()
	conv, visitorID := s.conversationFor(target{
		agentID:        agentID,
		conversationID: req.ConversationID,
		visitorID:      req.VisitorID,
		channel:        req.Channel,
		contact:        req.Contact,
	})
	inputID := appendMessage(conv, Message{Role: RoleUser, Text: req.Query})
	req.ConversationID, req.VisitorID = conv.ID, visitorID
	s.mu.Unlock()

	if agent.conversational && req.WebhookURL != "" {
		writeJSON(w, http.StatusOK, queuedResponse{
			Status:         "queued",
			ConversationID: req.ConversationID,
			VisitorID:      req.VisitorID,
			InputMessageID: inputID,
			Message:        queuedMessage,
			WebhookURL:     req.WebhookURL,
		})
		s.goDeliver(agentID, req)
		return
	}

	rep, err := s.currentResponder()(r.Context(), agentID, req)
	if err != nil {
		writeResponderError(w, err)
		return
	}
	var events []event
	for i, e := range rep.Events {
		if strings.ContainsAny(e.Name, "\r\n") {
			writeError(w, http.StatusInternalServerError, fmt.Sprintf("laburentest: Reply.Events[%d].Name contains a line break", i))
			return
		}
		events = append(events, event{name: e.Name, data: e.Data})
	}
	var f *fault
	if streaming {
		f = s.takeFault(faultStreamError, faultCut, faultStall)
	}
	keep := f == nil || f.kind != faultStreamError
	res, payload, err := s.answer(agentID, req, rep, keep)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR")
		return
	}
	if !streaming {
		writeRaw(w, http.StatusOK, payload)
		return
	}
	for _, c := range chunks(res.Answer) {
		events = append(events, event{name: "answer", data: c})
	}
	events = append(events, event{name: "endpoint_response", data: string(payload)})
	s.stream(w, r, events, f)
}

// answer stores a reply as the conversation's AI message (unless keep is false) and returns
// the response object and its JSON.
func (s *Server) answer(agentID string, req laburen.QueryRequest, rep Reply, keep bool) (queryResponse, []byte, error) {
	s.mu.Lock()
	conv := s.conversations[req.ConversationID]
	status := conv.Status
	switch {
	case rep.Status != "":
		status = rep.Status
	case rep.RequestHuman:
		status = laburen.StatusHumanRequested
	}
	messageID := newID()
	if keep {
		appendMessage(conv, Message{ID: messageID, Role: RoleAI, Text: rep.Answer})
		conv.Status = status
	}
	s.mu.Unlock()
	res := buildResponse(rep, req.Query, messageID, req.ConversationID, req.VisitorID, status)
	payload, err := marshal(res)
	return res, payload, err
}

// agentQuery serves POST /agents/{id}/query-agent.
func (s *Server) agentQuery(w http.ResponseWriter, r *http.Request, agentID string, body []byte, validKey bool) {
	var req laburen.AgentQueryRequest
	streaming, err := decodeRequest(body, &req)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if msg := checkCommon(req.Query, req.Channel); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	if req.IsDraft && !validKey {
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED")
		return
	}
	s.mu.Lock()
	conv, visitorID := s.conversationFor(target{
		agentID:           agentID,
		conversationID:    req.ConversationID,
		visitorID:         req.VisitorID,
		channel:           req.Channel,
		channelExternalID: req.ChannelExternalID,
		contactID:         req.ContactID,
		contact:           req.Contact,
	})
	messageID := appendMessage(conv, Message{Role: RoleAgent, Text: req.Query, Draft: req.IsDraft, Metadata: req.Metadata})
	res := agentQueryResponse{MessageID: messageID, ConversationID: conv.ID, VisitorID: visitorID, Status: conv.Status}
	s.mu.Unlock()

	if !streaming {
		writeJSON(w, http.StatusOK, res)
		return
	}
	f := s.takeFault(faultStreamError, faultCut, faultStall)
	payload, err := marshal(agentQueryStreamResponse{res.MessageID, req.Query, res.ConversationID, res.VisitorID, res.Status})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR")
		return
	}
	var events []event
	for _, c := range chunks(req.Query) {
		events = append(events, event{name: "answer", data: c})
	}
	events = append(events, event{name: "endpoint_response", data: string(payload)})
	s.stream(w, r, events, f)
}

// decodeRequest decodes a request body into v (a *laburen.QueryRequest or
// *laburen.AgentQueryRequest), collecting the fields v does not model in its Extra, and
// returns the "streaming" flag.
func decodeRequest(body []byte, v any) (streaming bool, err error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return false, errors.New("the request body is not a JSON object")
	}
	if raw, ok := fields["streaming"]; ok {
		if err := json.Unmarshal(raw, &streaming); err != nil {
			return false, errors.New("streaming must be a boolean")
		}
	}
	// A JavaScript server matches keys exactly, where encoding/json ignores case: decode only
	// the keys that name a field exactly, and keep the others (such as "Query") as extra.
	known := map[string]bool{"streaming": true}
	t := reflect.TypeOf(v).Elem()
	for _, f := range reflect.VisibleFields(t) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		known[name] = true
	}
	modeled := map[string]json.RawMessage{}
	extra := map[string]any{}
	for k, raw := range fields {
		var x any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		_ = d.Decode(&x)
		if !known[k] {
			extra[k] = x
			continue
		}
		// JSON has one number type: 100.0 or 1e3 is a whole number for an integer field.
		if b, err := json.Marshal(wholeNumbers(x)); err == nil {
			raw = b
		}
		modeled[k] = raw
	}
	exact, err := json.Marshal(modeled)
	if err != nil {
		return false, fmt.Errorf("invalid request body: %v", err)
	}
	if err := json.Unmarshal(exact, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return false, fmt.Errorf("%s must be a %s", typeErr.Field, jsonKind(typeErr.Type))
		}
		return false, fmt.Errorf("invalid request body: %v", err)
	}
	if len(extra) > 0 {
		reflect.ValueOf(v).Elem().FieldByName("Extra").Set(reflect.ValueOf(extra))
	}
	return streaming, nil
}

// wholeNumbers rewrites, inside a value decoded with UseNumber, every number that is whole but
// written as a fraction or with an exponent (100.0, 1e3) as an integer.
func wholeNumbers(x any) any {
	switch x := x.(type) {
	case json.Number:
		if _, err := x.Int64(); err != nil {
			if f, err := x.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				return json.Number(strconv.FormatInt(int64(f), 10))
			}
		}
	case []any:
		for i := range x {
			x[i] = wholeNumbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = wholeNumbers(x[k])
		}
	}
	return x
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	default:
		return "number"
	}
}

// checkCommon validates the fields both endpoints share, returning the error message.
func checkCommon(query string, ch laburen.Channel) string {
	switch {
	case strings.TrimSpace(query) == "":
		return "query is required"
	case ch != "" && !ch.Valid():
		return fmt.Sprintf("channel %q is not a valid channel", string(ch))
	}
	return ""
}

// writeResponderError answers with a Responder's error.
func writeResponderError(w http.ResponseWriter, err error) {
	var apiErr *laburen.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode >= 400 && apiErr.StatusCode <= 599 {
		text := apiErr.Code
		if text == "" {
			text = apiErr.Message
		}
		if apiErr.RetryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(int(apiErr.RetryAfter.Seconds()+0.999)))
		}
		writeError(w, apiErr.StatusCode, text)
		return
	}
	writeError(w, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR")
}

// writeError answers {"error": text}, or "data: [ERROR]text" with WithSSEErrorBodies.
func writeError(w http.ResponseWriter, status int, text string) {
	if rec, ok := w.(*recorder); ok && rec.sseErrors {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "data: [ERROR]"+oneLine(text)+"\n\n")
		return
	}
	writeJSON(w, status, map[string]string{"error": text})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"INTERNAL_SERVER_ERROR"}`)
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
