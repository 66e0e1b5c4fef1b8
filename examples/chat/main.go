// Command chat is a terminal chat with a Laburen agent: it reads your messages line by line,
// streams each answer as it is generated, and keeps the conversation going.
//
//	LABUREN_API_KEY=... LABUREN_AGENT_ID=... go run ./examples/chat
//
// Type a message and press Enter. "/new" starts a new conversation; "/quit" or the end of the
// input (Ctrl-D) leaves. The prompt goes to stderr and the answers to stdout, so that
// "go run ./examples/chat < questions.txt > answers.txt" keeps a clean transcript.
//
// Without LABUREN_API_KEY and LABUREN_AGENT_ID it starts laburentest, the SDK's fake server,
// in-process and says so on stderr.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// run chats with the agent until stdin ends or says /quit. A failed answer is reported on
// stderr and the chat goes on; only a context that ends stops it with an error.
func run(ctx context.Context, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	// The real API when LABUREN_API_KEY and LABUREN_AGENT_ID are set, otherwise a fake server in
	// this process. In your program: c, err := laburen.NewClient() reads LABUREN_API_KEY.
	c, agentID, fake, err := connect(getenv, stderr)
	if err != nil {
		return err
	}
	if fake != nil {
		defer fake.Close()
	}

	conversationID := "" // empty: the server starts a conversation and returns its ID
	in := bufio.NewScanner(stdin)
	for {
		fmt.Fprint(stderr, "> ")
		if !in.Scan() {
			break
		}
		switch line := strings.TrimSpace(in.Text()); line {
		case "":
		case "/quit":
			return nil
		case "/new":
			conversationID = ""
			fmt.Fprintln(stderr, "(new conversation)")
		default:
			id, err := ask(ctx, c, agentID, conversationID, line, stdout)
			switch {
			case ctx.Err() != nil:
				return err
			case err != nil:
				fmt.Fprintln(stderr, "error:", err)
			default:
				conversationID = id
			}
		}
	}
	fmt.Fprintln(stderr)
	return in.Err()
}

// ask sends one message, prints the answer as it streams in, and returns the conversation ID.
func ask(ctx context.Context, c *laburen.Client, agentID, conversationID, message string, stdout io.Writer) (string, error) {
	st, err := c.QueryStream(ctx, agentID, laburen.QueryRequest{Query: message, ConversationID: conversationID})
	if err != nil {
		return "", err
	}
	defer fmt.Fprintln(stdout)
	for text, err := range st.Text() {
		if err != nil {
			return "", err
		}
		fmt.Fprint(stdout, text)
	}
	res := st.Response()
	if res == nil || res.ConversationID == "" {
		return "", errors.New("the stream ended without the conversation's ID")
	}
	return res.ConversationID, nil
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
