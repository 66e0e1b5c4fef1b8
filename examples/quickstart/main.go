// Command quickstart streams one answer from a Laburen agent and prints it as it arrives.
//
//	LABUREN_API_KEY=... LABUREN_AGENT_ID=... go run ./examples/quickstart "Where is my order?"
//
// Without LABUREN_API_KEY and LABUREN_AGENT_ID it starts laburentest, the SDK's fake server,
// in-process and says so on stderr, so that it runs anywhere without an account.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run asks the agent the question in args (or a default one) and prints the streamed answer.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, agentID, closeFn, err := connect(getenv, stderr)
	if err != nil {
		return err
	}
	defer closeFn()

	question := strings.Join(args, " ")
	if question == "" {
		question = "Hi! What can you do for me?"
	}
	st, err := c.QueryStream(ctx, agentID, laburen.QueryRequest{Query: question})
	if err != nil {
		return err
	}
	for text, err := range st.Text() { // closes the stream when the loop ends
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, text)
	}
	fmt.Fprintln(stdout)
	return nil
}

// connect returns a client and the agent to talk to: the real API when LABUREN_API_KEY and
// LABUREN_AGENT_ID are set (and LABUREN_BASE_URL, when set, as its base URL), otherwise a
// laburentest server started in this process. closeFn releases what connect started.
func connect(getenv func(string) string, stderr io.Writer) (c *laburen.Client, agentID string, closeFn func(), err error) {
	key, agentID := getenv("LABUREN_API_KEY"), getenv("LABUREN_AGENT_ID")
	if key == "" || agentID == "" {
		// A short pause before each event shows the answer arriving piece by piece.
		srv := laburentest.NewServer(laburentest.WithEventDelay(20 * time.Millisecond))
		fmt.Fprintln(stderr, "LABUREN_API_KEY or LABUREN_AGENT_ID is not set: using laburentest, a fake Laburen server in this process")
		return srv.Client(), laburentest.DefaultAgentID, srv.Close, nil
	}
	opts := []laburen.Option{laburen.WithAPIKey(key)}
	if base := getenv("LABUREN_BASE_URL"); base != "" {
		opts = append(opts, laburen.WithBaseURL(base))
	}
	c, err = laburen.NewClient(opts...)
	return c, agentID, func() {}, err
}
