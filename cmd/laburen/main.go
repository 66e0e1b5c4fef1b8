// Command laburen is the command line of the Laburen agent API: it asks an agent from the
// terminal, runs laburentest (the SDK's fake server) for the tests of programs in any language,
// and sends signed test deliveries to a webhook receiver.
//
//	go install github.com/laburen/laburen-go/cmd/laburen@latest
//	laburen query "Where is my order?"
//	laburen mock -addr 127.0.0.1:8080
//	laburen webhook send -url http://localhost:8080/hook -secret "$S" -text "hola"
//
// Run "laburen -h" for the commands and "laburen COMMAND -h" for their flags. The exit status
// is 0 on success, 1 for an API or network error and 2 for a usage error.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

func main() {
	// Ctrl-C cancels ctx, which ends a stream or the mock server cleanly; after that the
	// default handling comes back, so a second Ctrl-C stops the program at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], &cli{getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr})
	stop()
	os.Exit(code)
}

// cli is the program's environment.
type cli struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// commands are the top-level commands; "webhook" dispatches to its own subcommands.
var commands = map[string]func(*cli, context.Context, []string) error{
	"query":       (*cli).query,
	"agent-query": (*cli).agentQuery,
	"chat":        (*cli).chat,
	"mock":        (*cli).mock,
	"webhook":     (*cli).webhook,
}

const usageText = `laburen is the command line of the Laburen agent API.

usage: laburen COMMAND [flags] [arguments]

commands:
  query         ask an agent and stream its answer
  agent-query   record an agent-side message in a conversation
  chat          chat with an agent in the terminal
  mock          run laburentest, the fake Laburen server, for tests in any language
  webhook sign  print a signed webhook URL
  webhook send  POST a test agent.response delivery to a webhook receiver

environment:
  LABUREN_API_KEY   the API key; without it (and without a base URL), query, agent-query
                    and chat talk to laburentest in this process
  LABUREN_BASE_URL  the API's base URL (default ` + laburen.DefaultBaseURL + `); -base-url overrides
  LABUREN_AGENT_ID  the agent to talk to; -agent overrides

Run "laburen COMMAND -h" for a command's flags.
Exit status: 0 success, 1 API or network error, 2 usage error.
`

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, cl *cli) int {
	if len(args) == 0 {
		fmt.Fprint(cl.stderr, usageText)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(cl.stdout, usageText)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(cl.stderr, "laburen: unknown command %q\n\n%s", args[0], usageText)
		return 2
	}
	err := cmd(cl, ctx, args[1:])
	var help *helpRequest
	var usage *usageError
	var invalid *laburen.ValidationError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &help):
		help.fs.usage(cl.stdout)
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(cl.stderr, "%s: %s\n\n", usage.fs.Name(), usage.msg)
		usage.fs.usage(cl.stderr)
		return 2
	case errors.As(err, &invalid): // refused by the SDK before anything was sent
		fmt.Fprintf(cl.stderr, "%v\n(run \"laburen %s -h\" for usage)\n", err, args[0])
		return 2
	case ctx.Err() != nil:
		fmt.Fprintln(cl.stderr, "laburen: interrupted")
		return 1
	}
	fmt.Fprintln(cl.stderr, err) // the SDK's errors start with "laburen: " and name the operation
	return 1
}

// flagSet is a command's flags with its usage text. It prints nothing itself: run prints the
// usage on stdout for -h and on stderr for a usage error.
type flagSet struct {
	*flag.FlagSet
	synopsis string
	about    string
}

func newFlags(name, synopsis, about string) *flagSet {
	fs := flag.NewFlagSet("laburen "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, synopsis: synopsis, about: about}
}

// usage writes the command's usage to w.
func (fs *flagSet) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s %s\n\n%s\n", fs.Name(), fs.synopsis, fs.about)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// parse parses the flags in args and checks that between min and max positional arguments
// follow them (max < 0: no limit).
func (fs *flagSet) parse(args []string, min, max int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &helpRequest{fs}
		}
		return fs.fail("%v", err)
	}
	n := fs.NArg()
	switch {
	case n < min:
		return fs.fail("missing arguments")
	case max >= 0 && n > max && max == 1:
		return fs.fail("want one argument, got %d: flags go before it, and a message of several words is quoted", n)
	case max >= 0 && n > max:
		return fs.fail("too many arguments")
	}
	return nil
}

// fail returns a usage error of the command.
func (fs *flagSet) fail(format string, args ...any) error {
	return &usageError{fs: fs, msg: fmt.Sprintf(format, args...)}
}

// usageError is a wrong command line: exit status 2, with the command's usage.
type usageError struct {
	fs  *flagSet
	msg string
}

func (e *usageError) Error() string { return e.fs.Name() + ": " + e.msg }

// helpRequest is -h: the usage on stdout and exit status 0.
type helpRequest struct{ fs *flagSet }

func (e *helpRequest) Error() string { return "help requested" }

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// fakeNotice is the line written to stderr when a command talks to the in-process fake.
const fakeNotice = "laburen: LABUREN_API_KEY is not set: using laburentest, a fake Laburen server in this process"

// target is where query, agent-query and chat send their requests.
type target struct {
	agent   string
	baseURL string
}

// apiFlags adds the flags that choose the agent and the server.
func apiFlags(fs *flagSet) *target {
	t := &target{}
	fs.StringVar(&t.agent, "agent", "", "the agent `ID` (default $LABUREN_AGENT_ID)")
	fs.StringVar(&t.baseURL, "base-url", "", "the API's base `URL` (default $LABUREN_BASE_URL, else the real API)")
	return t
}

// connect returns a client and the agent to ask, and a function to call when done. Without an
// API key and without a base URL it starts laburentest in this process, knowing the agent
// asked for, and says so on stderr.
func (cl *cli) connect(fs *flagSet, t *target) (*laburen.Client, string, func(), error) {
	agent := cmp.Or(t.agent, cl.getenv("LABUREN_AGENT_ID"))
	base := cmp.Or(t.baseURL, cl.getenv("LABUREN_BASE_URL"))
	key := cl.getenv("LABUREN_API_KEY")
	if key == "" && base == "" {
		srv := laburentest.NewServer()
		if agent == "" {
			agent = laburentest.DefaultAgentID
		} else {
			srv.AddAgent(agent)
		}
		fmt.Fprintln(cl.stderr, fakeNotice)
		return srv.Client(), agent, srv.Close, nil
	}
	if agent == "" {
		return nil, "", nil, fs.fail("no agent: give -agent ID or set LABUREN_AGENT_ID")
	}
	opts := []laburen.Option{laburen.WithAPIKey(key), laburen.WithUserAgent("laburen-cli/" + laburen.Version)}
	if base != "" {
		opts = append(opts, laburen.WithBaseURL(base))
	}
	c, err := laburen.NewClient(opts...)
	if err != nil {
		return nil, "", nil, fs.fail("%v", err)
	}
	return c, agent, func() {}, nil
}
