package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/laburen/laburen-go/laburentest"
)

// mock runs laburentest as a standalone server until interrupted.
func (cl *cli) mock(ctx context.Context, args []string) error {
	fs := newFlags("mock", "[-addr HOST:PORT] [-key KEY]... [-agent ID]... [-conversational ID]... [-plain] [-event-delay D] [-sse-errors] [-redeliver D,D...]",
		"Runs laburentest, the SDK's fake Laburen server, until interrupted (Ctrl-C), for the tests\n"+
			"of programs in any language. The first line of stdout is the base URL alone, such as\n"+
			"http://127.0.0.1:8080/api; then come \"key KEY\" and \"agent ID\" lines (\"agent ID\n"+
			"conversational\" for conversational ones). Each request is logged on stderr.\n"+
			"The agent "+laburentest.DefaultAgentID+" is always known.")
	addr := fs.String("addr", "127.0.0.1:8080", "listen on `HOST:PORT`; port 0 picks a free one")
	var keys, agents, conversational stringList
	fs.Var(&keys, "key", "accept the API `KEY` (repeatable; default "+laburentest.DefaultAPIKey+")")
	fs.Var(&agents, "agent", "also know the agent `ID` (repeatable)")
	fs.Var(&conversational, "conversational", "know the agent `ID` with conversational mode on: its answers go to the query's webhookUrl (repeatable)")
	plain := fs.Bool("plain", false, "send stream payloads as plain text, as the API's documentation shows them, instead of percent-encoded")
	delay := fs.Duration("event-delay", 0, "wait `D` (such as 20ms) before each stream event")
	sseErrors := fs.Bool("sse-errors", false, "answer a streaming request that fails before its stream starts with \"data: [ERROR]CODE\" as text/plain, as the API may, instead of JSON")
	redeliver := fs.String("redeliver", "", "deliver a webhook again after a failed delivery, waiting each of the comma-separated `DELAYS` (such as 1s,5s) in turn")
	if err := fs.parse(args, 0, 0); err != nil {
		return err
	}
	if *delay < 0 {
		return fs.fail("-event-delay must not be negative")
	}
	var delays []time.Duration
	if *redeliver != "" {
		for _, f := range strings.Split(*redeliver, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(f))
			if err != nil || d < 0 {
				return fs.fail("-redeliver: %q is not a duration such as 1s", f)
			}
			delays = append(delays, d)
		}
	}
	var opts []laburentest.Option
	if len(keys) > 0 {
		for _, k := range keys {
			if k == "" {
				return fs.fail("-key must not be empty")
			}
		}
		opts = append(opts, laburentest.WithAPIKeys(keys...))
	} else {
		keys = stringList{laburentest.DefaultAPIKey}
	}
	if *plain {
		opts = append(opts, laburentest.WithPlainStreamData())
	}
	if *sseErrors {
		opts = append(opts, laburentest.WithSSEErrorBodies())
	}
	opts = append(opts, laburentest.WithEventDelay(*delay), laburentest.WithWebhookRedelivery(delays...))

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("laburen mock: %w", err)
	}
	srv := laburentest.NewServer(opts...)
	defer srv.Close()
	known := []string{laburentest.DefaultAgentID}
	for _, id := range agents {
		srv.AddAgent(id)
		known = append(known, id)
	}
	for _, id := range conversational {
		srv.AddAgent(id, laburentest.Conversational())
	}

	hs := &http.Server{Handler: logRequests(srv.Handler(), cl.stderr), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()

	fmt.Fprintln(cl.stdout, baseURL(l.Addr()))
	for _, k := range keys {
		fmt.Fprintln(cl.stdout, "key", k)
	}
	for _, id := range known {
		if !slices.Contains(conversational, id) {
			fmt.Fprintln(cl.stdout, "agent", id)
		}
	}
	for _, id := range conversational {
		fmt.Fprintln(cl.stdout, "agent", id, "conversational")
	}

	select {
	case err = <-served:
		return fmt.Errorf("laburen mock: %w", err)
	case <-ctx.Done():
	}
	srv.Close() // ends delayed streams and webhook deliveries, so that Shutdown does not wait on them
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("laburen mock: %w", err)
	}
	return nil
}

// baseURL is the API's base URL on the listener's address; an unspecified host (":8080") is
// written as localhost.
func baseURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/api"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/api"
}

// logRequests logs each request on w once it is answered: time, method, path, status and
// duration. Headers and bodies are not logged.
func logRequests(h http.Handler, w io.Writer) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: rw}
		defer func() { // also when the handler aborts the connection with a panic
			status := "aborted"
			if sw.status != 0 {
				status = fmt.Sprint(sw.status)
			}
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(w, "%s %s %s %s %s\n", start.Format("15:04:05.000"), r.Method, r.URL.EscapedPath(), status,
				time.Since(start).Round(time.Microsecond))
		}()
		h.ServeHTTP(sw, r)
	})
}

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the underlying writer, to flush streams.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
