package laburenotel

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/laburen/laburen-go"
)

// TraceParentParam is the webhook URL's query parameter that carries the trace context of a
// QueryAsync call, in the W3C traceparent format.
const TraceParentParam = "traceparent"

// webhookEventKey names the webhook's event on the delivery's span.
const webhookEventKey = attribute.Key("laburen.webhook.event")

// TraceWebhookURL prepares the trace of a QueryAsync call whose answer comes by webhook. It
// starts the call's span now and returns the context to make the call with, and base with a
// TraceParentParam parameter that names that span. Sign the URL with laburen.SignWebhookURL,
// which protects the parameter like the others, and receive the answer with WebhookFunc: the
// delivery's span is linked to the query's. Give it the options given to New. The span ends
// with the QueryAsync call made with the returned context; if no such call is sent (none
// follows, or a *laburen.ValidationError refuses it), it is never ended, nor exported.
func TraceWebhookURL(ctx context.Context, base string, opts ...Option) (context.Context, string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return ctx, "", errors.New("laburenotel: trace webhook URL: base is not a URL")
	}
	if u.Query().Has(TraceParentParam) {
		return ctx, "", fmt.Errorf("laburenotel: trace webhook URL: base already has a %s parameter", TraceParentParam)
	}
	cfg := newConfig(opts)
	_, span := cfg.tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)).Start(ctx, "invoke_agent",
		trace.WithSpanKind(trace.SpanKindClient))
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpan(ctx, span), carrier)
	tp := carrier.Get(TraceParentParam)
	if tp == "" { // spans are not recorded: nothing to carry
		return ctx, base, nil
	}
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += TraceParentParam + "=" + url.QueryEscape(tp)
	return context.WithValue(ctx, pendingKey{}, &pending{span: span}), u.String(), nil
}

// pending is a span started by TraceWebhookURL, which the QueryAsync call takes as its own.
type pending struct {
	span  trace.Span
	taken atomic.Bool
}

type pendingKey struct{}

// takePending returns the span TraceWebhookURL started for the async call made with ctx, once.
func takePending(ctx context.Context) (trace.Span, bool) {
	p, ok := ctx.Value(pendingKey{}).(*pending)
	if !ok || !p.taken.CompareAndSwap(false, true) {
		return nil, false
	}
	return p.span, true
}

// WebhookFunc wraps fn, the function given to laburen.NewWebhookHandler, so that each delivery
// runs in a consumer span, "webhook <event>", linked to the span of the QueryAsync call that
// TraceWebhookURL named in the URL. The trace context is read from WebhookEvent.Params, which
// the handler has checked against the URL's signature: configure WithWebhookSecret, since
// without it Params is nil and nothing links the spans. When ctx has no span, the delivery's
// span is also a child of the query's, so that both are in one trace.
func WebhookFunc(fn func(context.Context, *laburen.WebhookEvent) error, opts ...Option) func(context.Context, *laburen.WebhookEvent) error {
	cfg := newConfig(opts)
	tracer := cfg.tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL))
	return func(ctx context.Context, ev *laburen.WebhookEvent) (err error) {
		attrs := []attribute.KeyValue{semconv.GenAIProviderNameKey.String(providerName), webhookEventKey.String(ev.Name)}
		if ev.ConversationID != "" {
			attrs = append(attrs, semconv.GenAIConversationID(ev.ConversationID))
		}
		if r := ev.AgentResponse; r != nil {
			if r.MessageID != "" {
				attrs = append(attrs, semconv.GenAIResponseID(r.MessageID))
			}
			if r.Usage != (laburen.Usage{}) {
				attrs = append(attrs, semconv.GenAIUsageInputTokens(r.Usage.PromptTokens),
					semconv.GenAIUsageOutputTokens(r.Usage.CompletionTokens))
			}
		}
		startOpts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...)}
		parent := ctx
		if query := queryContext(ev.Params); query.IsValid() {
			startOpts = append(startOpts, trace.WithLinks(trace.Link{SpanContext: query}))
			if !trace.SpanContextFromContext(ctx).IsValid() {
				parent = trace.ContextWithRemoteSpanContext(ctx, query)
			}
		}
		name := "webhook"
		if ev.Name != "" {
			name += " " + ev.Name
		}
		ctx, span := tracer.Start(parent, name, startOpts...)
		defer func() {
			if p := recover(); p != nil {
				span.SetAttributes(semconv.ErrorTypeKey.String("panic"))
				span.SetStatus(codes.Error, "panic")
				span.End()
				panic(p)
			}
			if err != nil {
				// The error's text is the user's own and may quote the answer: only its class.
				span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
				span.SetStatus(codes.Error, "webhook function failed")
			}
			span.End()
		}()
		return fn(ctx, ev)
	}
}

// queryContext is the span context of the query that a webhook URL's verified parameters name;
// invalid when they name none.
func queryContext(params url.Values) trace.SpanContext {
	tp := params.Get(TraceParentParam)
	if tp == "" {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{TraceParentParam: tp})
	return trace.SpanContextFromContext(ctx)
}

// errorType classifies the error of a webhook function.
func errorType(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	}
	return "_OTHER"
}
