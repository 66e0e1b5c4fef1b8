// Package laburenotel traces the calls of a laburen.Client with OpenTelemetry, through the
// client's observation hook (laburen.WithObserver): it never touches the HTTP client.
//
//	c, err := laburen.NewClient(laburenotel.New())
//
// Each call is one client span, "invoke_agent <agentID>", with the attributes of the
// OpenTelemetry semantic conventions for generative AI agents, v1.41.0 (gen_ai.operation.name,
// gen_ai.provider.name "laburen", gen_ai.agent.id, gen_ai.conversation.id, gen_ai.response.id,
// gen_ai.usage.input_tokens and output_tokens, server.address, error.type). The span of a
// stream ends when the stream ends; an [ERROR] event, a truncation or an idle timeout make it
// an error. Retried attempts are events of the span. The API key, the messages and the answers
// never appear in a span.
package laburenotel

import (
	"context"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/laburen/laburen-go"
)

// ScopeName is the instrumentation scope of the spans and metrics.
const ScopeName = "github.com/laburen/laburen-go/laburenotel"

// providerName is the value of gen_ai.provider.name.
const providerName = "laburen"

// Attributes of the package's own, beside the semantic conventions.
const (
	// endpointKey is the API endpoint of the call: "query" or "query-agent".
	endpointKey = attribute.Key("laburen.endpoint")
	// asyncKey marks a query whose answer comes by webhook (QueryAsync).
	asyncKey = attribute.Key("laburen.async")
	// closedEarlyKey marks a stream that Close ended before its final event; the caller chose
	// to stop, so the span is not an error.
	closedEarlyKey = attribute.Key("laburen.stream.closed_early")
	// attemptKey and retryWaitKey describe a retried attempt, in the event "retry".
	attemptKey   = attribute.Key("laburen.attempt")
	retryWaitKey = attribute.Key("laburen.retry.wait")
)

// Option configures New.
type Option func(*config)

type config struct {
	tp trace.TracerProvider
}

// WithTracerProvider sets the provider of the spans (default: otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

func newConfig(opts []Option) config {
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	return c
}

// New returns the laburen.Option that traces every call of the client, to pass to
// laburen.NewClient (before or after WithHTTPClient, which it leaves alone) or to one call.
func New(opts ...Option) laburen.Option {
	cfg := newConfig(opts)
	o := &observer{tracer: cfg.tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL))}
	return laburen.WithObserver(laburen.Observer{Start: o.start, Attempt: o.attempt, End: o.end})
}

type observer struct {
	tracer trace.Tracer
}

// start opens the call's span.
func (o *observer) start(ctx context.Context, call laburen.Call) context.Context {
	attrs := append(callAttributes(call),
		semconv.GenAIAgentID(call.AgentID),
		semconv.GenAIRequestStream(call.Stream),
		endpointKey.String(call.Operation),
	)
	if call.Async {
		attrs = append(attrs, asyncKey.Bool(true))
	}
	ctx, _ = o.tracer.Start(ctx, "invoke_agent "+call.AgentID,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx
}

// callAttributes are the attributes that spans and metrics share.
func callAttributes(call laburen.Call) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		semconv.GenAIOperationNameInvokeAgent,
		semconv.GenAIProviderNameKey.String(providerName),
	}
	if u, err := url.Parse(call.BaseURL); err == nil && u.Hostname() != "" {
		attrs = append(attrs, semconv.ServerAddress(u.Hostname()))
		port, err := strconv.Atoi(u.Port())
		if err != nil {
			port = map[string]int{"http": 80, "https": 443}[u.Scheme]
		}
		attrs = append(attrs, semconv.ServerPort(port))
	}
	return attrs
}

// attempt adds an event for an attempt that is retried.
func (o *observer) attempt(ctx context.Context, _ laburen.Call, a laburen.Attempt) {
	if a.RetryWait < 0 {
		return
	}
	attrs := []attribute.KeyValue{attemptKey.Int(a.N), semconv.ErrorTypeKey.String(a.ErrorType),
		retryWaitKey.Float64(a.RetryWait.Seconds())}
	if a.StatusCode != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(a.StatusCode))
	}
	trace.SpanFromContext(ctx).AddEvent("retry", trace.WithAttributes(attrs...))
}

// end records the result and ends the span.
func (o *observer) end(ctx context.Context, call laburen.Call, e laburen.CallEnd) {
	span := trace.SpanFromContext(ctx)
	var attrs []attribute.KeyValue
	if e.ConversationID != "" {
		attrs = append(attrs, semconv.GenAIConversationID(e.ConversationID))
	}
	if e.MessageID != "" {
		attrs = append(attrs, semconv.GenAIResponseID(e.MessageID))
	}
	if e.Usage != (laburen.Usage{}) {
		attrs = append(attrs, semconv.GenAIUsageInputTokens(e.Usage.PromptTokens),
			semconv.GenAIUsageOutputTokens(e.Usage.CompletionTokens))
	}
	if call.Stream && e.TimeToFirstAnswer > 0 {
		attrs = append(attrs, semconv.GenAIResponseTimeToFirstChunk(e.TimeToFirstAnswer.Seconds()))
	}
	switch {
	case e.ErrorType == "closed":
		attrs = append(attrs, closedEarlyKey.Bool(true))
	case e.ErrorType != "":
		// The status says what kind of failure, never the error's text: a server's message may
		// quote the query.
		attrs = append(attrs, semconv.ErrorTypeKey.String(e.ErrorType))
		span.SetStatus(codes.Error, e.ErrorType)
	}
	span.SetAttributes(attrs...)
	span.End()
}
