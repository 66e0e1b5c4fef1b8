package laburentest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/laburen/laburen-go"
)

// WebhookDelivery is one attempt to deliver a conversational-mode answer by webhook, as
// Webhooks and WaitWebhooks report it.
type WebhookDelivery struct {
	// URL is the webhookUrl it was POSTed to.
	URL string
	// ConversationID is the conversation it answers.
	ConversationID string
	// Header holds the headers sent, among them "X-Laburen-Event: agent.response".
	Header http.Header
	// Body is the JSON body sent: {"conversationId", "messages": [{"text"}...],
	// "agentResponse": {...}}. It is empty when the Responder failed.
	Body []byte
	// StatusCode is the receiver's answer, 0 when none came.
	StatusCode int
	// Err is why the delivery failed: the Responder's error, a transport error, or a
	// non-2xx status from the receiver. It is nil for a delivery the receiver accepted.
	Err error
	// Attempt counts the attempts to deliver this answer: 1 for the first, 2 for the first
	// redelivery (WithWebhookRedelivery), and so on. A copy sent by DuplicateWebhooksNext
	// counts its own attempts.
	Attempt int
}

func (d WebhookDelivery) clone() WebhookDelivery {
	d.Header = d.Header.Clone()
	d.Body = slices.Clone(d.Body)
	return d
}

// Webhooks returns the webhook delivery attempts completed so far, in order of completion.
func (s *Server) Webhooks() []WebhookDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhooksLocked()
}

func (s *Server) webhooksLocked() []WebhookDelivery {
	out := make([]WebhookDelivery, len(s.deliveries))
	for i, d := range s.deliveries {
		out[i] = d.clone()
	}
	return out
}

// WaitWebhooks waits until at least n webhook delivery attempts have completed since the
// server started (successful or not: check their Err and Attempt), and returns all those
// completed. When ctx
// ends or the server closes first, it returns those completed so far and an error.
func (s *Server) WaitWebhooks(ctx context.Context, n int) ([]WebhookDelivery, error) {
	for {
		s.mu.Lock()
		done, changed := s.webhooksLocked(), s.delivered
		s.mu.Unlock()
		if len(done) >= n {
			return done, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return done, fmt.Errorf("laburentest: %d of %d webhook deliveries completed: %w", len(done), n, ctx.Err())
		case <-s.bgCtx.Done():
			return done, fmt.Errorf("laburentest: server closed after %d of %d webhook deliveries", len(done), n)
		}
	}
}

// goDeliver answers a queued query in the background and delivers the answer to its webhook.
func (s *Server) goDeliver(agentID string, req laburen.QueryRequest) {
	s.mu.Lock()
	if s.bgCtx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.bg.Add(1)
	times := 1
	if s.duplicates > 0 {
		s.duplicates--
		times = 2
	}
	delays := s.redelivery
	s.mu.Unlock()
	go func() {
		defer s.bg.Done()
		ctx := s.bgCtx
		rep, err := s.currentResponder()(ctx, agentID, req)
		if err != nil {
			s.record(WebhookDelivery{URL: req.WebhookURL, ConversationID: req.ConversationID,
				Err: fmt.Errorf("laburentest: responder: %w", err), Attempt: 1})
			return
		}
		_, payload, err := s.answer(agentID, req, rep, true)
		if err == nil {
			payload, err = marshal(webhookBody{
				ConversationID: req.ConversationID,
				Messages:       webhookMessages(rep),
				AgentResponse:  payload,
			})
		}
		if err != nil {
			s.record(WebhookDelivery{URL: req.WebhookURL, ConversationID: req.ConversationID,
				Err: fmt.Errorf("laburentest: encode webhook body: %w", err), Attempt: 1})
			return
		}
		for range times {
			for attempt := 1; ; attempt++ {
				d := s.post(ctx, req.WebhookURL, req.ConversationID, payload)
				d.Attempt = attempt
				s.record(d)
				if d.Err == nil || attempt > len(delays) || !s.wait(ctx, delays[attempt-1]) {
					break
				}
			}
		}
	}()
}

// post sends one webhook delivery.
func (s *Server) post(ctx context.Context, target, conversationID string, payload []byte) WebhookDelivery {
	d := WebhookDelivery{URL: target, ConversationID: conversationID, Body: payload, Header: http.Header{}}
	d.Header.Set("Content-Type", "application/json")
	d.Header.Set(laburen.WebhookEventHeader, laburen.WebhookEventAgentResponse)
	d.Header.Set("User-Agent", "laburentest")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(payload))
	if err != nil {
		d.Err = fmt.Errorf("laburentest: webhook: %w", err)
		return d
	}
	req.Header = d.Header.Clone()
	res, err := s.webhookClient.Do(req)
	if err != nil {
		d.Err = fmt.Errorf("laburentest: webhook: %w", err)
		return d
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	d.StatusCode = res.StatusCode
	if res.StatusCode < 200 || res.StatusCode > 299 {
		d.Err = fmt.Errorf("laburentest: webhook: the receiver answered HTTP %d", res.StatusCode)
	}
	return d
}

// record adds a completed delivery and wakes WaitWebhooks.
func (s *Server) record(d WebhookDelivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries = append(s.deliveries, d)
	close(s.delivered)
	s.delivered = make(chan struct{})
}
