// Package laburenotel traces and measures the calls of a laburen.Client with OpenTelemetry,
// through the client's observation hook (laburen.WithObserver): it never touches the HTTP client.
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
//
// TraceWebhookURL and WebhookFunc carry the trace of a QueryAsync call across the webhook hop,
// inside the signed webhook URL: the delivery's span is linked to the query's.
//
// The metrics are the conventions' gen_ai.client.operation.duration, gen_ai.client.token.usage
// and gen_ai.client.operation.time_to_first_chunk (streams), and laburen.client.cost, the sum
// of the cost the API reports in usage.
package laburenotel

import (
	"context"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/semconv/v1.41.0/genaiconv"
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
	// inputMessageKey is the ID the API gave a QueryAsync call's message; its answer comes
	// later, by webhook, with its own ID.
	inputMessageKey = attribute.Key("laburen.input_message.id")
)

// Option configures New, TraceWebhookURL and WebhookFunc.
type Option func(*config)

type config struct {
	tp trace.TracerProvider
	mp metric.MeterProvider
}

// WithTracerProvider sets the provider of the spans (default: otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithMeterProvider sets the provider of the metrics (default: otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

func newConfig(opts []Option) config {
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	return c
}

// New returns the laburen.Option that traces and measures every call of the client, to pass
// to laburen.NewClient (before or after WithHTTPClient, which it leaves alone) or to one call.
func New(opts ...Option) laburen.Option {
	cfg := newConfig(opts)
	o := &observer{tracer: cfg.tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL))}
	meter := cfg.mp.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
	// An instrument that cannot be made is a no-op one; the error goes to the global handler.
	var err error
	o.duration, err = genaiconv.NewClientOperationDuration(meter, metric.WithExplicitBucketBoundaries(
		0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92))
	handle(err)
	o.tokens, err = genaiconv.NewClientTokenUsage(meter, metric.WithExplicitBucketBoundaries(
		1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864))
	handle(err)
	o.firstChunk, err = genaiconv.NewClientOperationTimeToFirstChunk(meter, metric.WithExplicitBucketBoundaries(
		0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92))
	handle(err)
	o.cost, err = meter.Float64Counter("laburen.client.cost",
		metric.WithDescription("Cost of the calls, as the API reports it in usage.cost."))
	handle(err)
	return laburen.WithObserver(laburen.Observer{Start: o.start, Attempt: o.attempt, End: o.end})
}

func handle(err error) {
	if err != nil {
		otel.Handle(err)
	}
}

type observer struct {
	tracer     trace.Tracer
	duration   genaiconv.ClientOperationDuration
	tokens     genaiconv.ClientTokenUsage
	firstChunk genaiconv.ClientOperationTimeToFirstChunk
	cost       metric.Float64Counter
}

// start opens the call's span.
func (o *observer) start(ctx context.Context, call laburen.Call) context.Context {
	attrs := append(serverAttributes(call.BaseURL),
		semconv.GenAIOperationNameInvokeAgent,
		semconv.GenAIProviderNameKey.String(providerName),
		semconv.GenAIAgentID(call.AgentID),
		semconv.GenAIRequestStream(call.Stream),
		endpointKey.String(call.Operation),
	)
	if call.Model != "" {
		attrs = append(attrs, semconv.GenAIRequestModel(string(call.Model)))
	}
	name := "invoke_agent " + call.AgentID
	if call.Async {
		attrs = append(attrs, asyncKey.Bool(true))
		if span, ok := takePending(ctx); ok { // started by TraceWebhookURL, named in the URL
			span.SetName(name)
			span.SetAttributes(attrs...)
			return trace.ContextWithSpan(ctx, span)
		}
	}
	ctx, _ = o.tracer.Start(ctx, name,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx
}

// serverAttributes are server.address and server.port of the API's base URL.
func serverAttributes(baseURL string) []attribute.KeyValue {
	var attrs []attribute.KeyValue
	if u, err := url.Parse(baseURL); err == nil && u.Hostname() != "" {
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
	if e.InputMessageID != "" {
		attrs = append(attrs, inputMessageKey.String(e.InputMessageID))
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
	o.measure(ctx, call, e)
}

// measure records the call's metrics.
func (o *observer) measure(ctx context.Context, call laburen.Call, e laburen.CallEnd) {
	op, provider := genaiconv.OperationNameInvokeAgent, genaiconv.ProviderNameAttr(providerName)
	attrs := append(serverAttributes(call.BaseURL), semconv.GenAIAgentID(call.AgentID))
	if call.Model != "" {
		attrs = append(attrs, semconv.GenAIRequestModel(string(call.Model)))
	}
	withError := attrs
	if e.ErrorType != "" && e.ErrorType != "closed" {
		withError = append(attrs[:len(attrs):len(attrs)], semconv.ErrorTypeKey.String(e.ErrorType))
	}
	o.duration.Record(ctx, e.Duration.Seconds(), op, provider, withError...)
	if e.Usage != (laburen.Usage{}) {
		o.tokens.Record(ctx, int64(e.Usage.PromptTokens), op, provider, genaiconv.TokenTypeInput, attrs...)
		o.tokens.Record(ctx, int64(e.Usage.CompletionTokens), op, provider, genaiconv.TokenTypeOutput, attrs...)
	}
	if call.Stream && e.TimeToFirstAnswer > 0 {
		o.firstChunk.Record(ctx, e.TimeToFirstAnswer.Seconds(), op, provider, attrs...)
	}
	if e.Usage.Cost > 0 {
		o.cost.Add(ctx, e.Usage.Cost, metric.WithAttributes(append(attrs,
			semconv.GenAIOperationNameInvokeAgent, semconv.GenAIProviderNameKey.String(providerName))...))
	}
}
