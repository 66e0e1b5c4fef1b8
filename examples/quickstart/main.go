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
	// The real API when LABUREN_API_KEY and LABUREN_AGENT_ID are set, otherwise a fake server in
	// this process. In your program: c, err := laburen.NewClient() reads LABUREN_API_KEY.
	// A short pause before each event of the fake shows the answer arriving piece by piece.
	c, agentID, fake, err := connect(getenv, stderr, laburentest.WithEventDelay(20*time.Millisecond))
	if err != nil {
		return err
	}
	if fake != nil {
		defer fake.Close()
	}

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

// connect returns a client of the real API when LABUREN_API_KEY and LABUREN_AGENT_ID are set
// (and LABUREN_BASE_URL, when set, as its base URL), and the agent's ID. Otherwise it starts
// laburentest, a fake Laburen server in this process, with the options fakeOpts, says so on
// stderr, and returns a client of the fake, its agent and the fake, which the caller closes.
func connect(getenv func(string) string, stderr io.Writer, fakeOpts ...laburentest.Option) (*laburen.Client, string, *laburentest.Server, error) {
	key, agentID := getenv("LABUREN_API_KEY"), getenv("LABUREN_AGENT_ID")
	if key == "" || agentID == "" {
		fake := laburentest.NewServer(fakeOpts...)
		fmt.Fprintln(stderr, "LABUREN_API_KEY or LABUREN_AGENT_ID is not set: using laburentest, a fake Laburen server in this process")
		return fake.Client(), laburentest.DefaultAgentID, fake, nil
	}
	opts := []laburen.Option{laburen.WithAPIKey(key)}
	if base := getenv("LABUREN_BASE_URL"); base != "" {
		opts = append(opts, laburen.WithBaseURL(base))
	}
	c, err := laburen.NewClient(opts...)
	if err != nil {
		return nil, "", nil, fmt.Errorf("check LABUREN_API_KEY and LABUREN_BASE_URL: %w", err)
	}
	return c, agentID, nil, nil
}
