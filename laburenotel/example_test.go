package laburenotel_test

// The code of the README's "Tracing and metrics" section, kept here so that the compiler checks
// it. TestReadmeSnippets (readme_test.go) checks that each region between "// README <name>"
// and "// README end" is, line for line, the README's code.

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"slices"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburenotel"
	"github.com/laburen/laburen-go/laburentest"
)

// Example_turnOn is the README's three lines. It calls the real API, so it is compiled and not
// run.
func Example_turnOn() {
	tp, mp := sdktrace.NewTracerProvider(), sdkmetric.NewMeterProvider() // with your exporters
	// README otel
	otelOpts := []laburenotel.Option{laburenotel.WithTracerProvider(tp), laburenotel.WithMeterProvider(mp)}
	c, err := laburen.NewClient(laburenotel.New(otelOpts...)) // laburenotel.New(): the global providers
	// README end
	fmt.Println(c, err)
}

// Example_webhook is the README's webhook hop: compiled, not run.
func Example_webhook() {
	c, err := laburen.NewClient(laburenotel.New())
	if err != nil {
		log.Fatal(err)
	}
	ctx, agentID, secret := context.Background(), os.Getenv("LABUREN_AGENT_ID"), []byte(os.Getenv("WEBHOOK_SECRET"))
	var otelOpts []laburenotel.Option
	handle := func(ctx context.Context, ev *laburen.WebhookEvent) error { return nil }
	// README otel webhook
	ctx, base, err := laburenotel.TraceWebhookURL(ctx, "https://bridge.example.com/hook", otelOpts...)
	if err != nil {
		log.Fatal(err)
	}
	hookURL, err := laburen.SignWebhookURL(base, nil, secret) // the traceparent is signed too
	if err != nil {
		log.Fatal(err)
	}
	q, err := c.QueryAsync(ctx, agentID, laburen.QueryRequest{Query: "Where is my order?", WebhookURL: hookURL})

	// The receiver: each delivery's span is linked to the QueryAsync span named in its URL.
	http.Handle("/hook", laburen.NewWebhookHandler(laburenotel.WebhookFunc(handle, otelOpts...),
		laburen.WithWebhookSecret(secret)))
	// README end
	fmt.Println(q, err)
}

// Example_span shows what the span of a streamed query holds, against the fake server.
func Example_span() {
	srv := laburentest.NewServer()
	defer srv.Close()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	c := srv.Client(laburenotel.New(laburenotel.WithTracerProvider(tp)))

	st, err := c.QueryStream(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Hi"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := st.Final(); err != nil {
		log.Fatal(err)
	}
	span := rec.Ended()[0]
	fmt.Println(span.Name(), span.SpanKind())
	var keys []string
	for _, kv := range span.Attributes() {
		keys = append(keys, string(kv.Key))
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Println(" ", k)
	}
	// Output:
	// invoke_agent cfakeagent000000000000001 client
	//   gen_ai.agent.id
	//   gen_ai.conversation.id
	//   gen_ai.operation.name
	//   gen_ai.provider.name
	//   gen_ai.request.stream
	//   gen_ai.response.id
	//   gen_ai.response.time_to_first_chunk
	//   gen_ai.usage.input_tokens
	//   gen_ai.usage.output_tokens
	//   laburen.endpoint
	//   server.address
	//   server.port
}
