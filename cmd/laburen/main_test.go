package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/laburentest"
)

// bin is the laburen command, built once by TestMain; every test runs it as a real process.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "laburen-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "laburen")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build of the laburen command: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what a run of the command left.
type result struct {
	code           int
	stdout, stderr string
}

// command prepares a run of the laburen command with exactly the environment env (nothing is
// inherited, so no LABUREN_ variable of the machine leaks in) and a deadline.
func command(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bin, args...)
	// A -race binary otherwise sleeps a second at exit, waiting for late reports.
	cmd.Env = append([]string{"GORACE=atexit_sleep_ms=0"}, env...)
	return cmd
}

// runCLI runs the command to its end with stdin as its input.
func runCLI(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	cmd := command(t, env, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		require.NoError(t, err, "running laburen %q", args)
	}
	res := result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	assertNoCrash(t, res.stderr)
	return res
}

// assertNoCrash checks that the program reported its errors instead of crashing.
func assertNoCrash(t *testing.T, stderr string) {
	t.Helper()
	assert.NotContains(t, stderr, "panic")
	assert.NotContains(t, stderr, "goroutine ")
	assert.NotContains(t, stderr, "DATA RACE")
}

// apiEnv points the command at srv as at the real API.
func apiEnv(srv *laburentest.Server) []string {
	return []string{
		"LABUREN_API_KEY=" + laburentest.DefaultAPIKey,
		"LABUREN_BASE_URL=" + srv.URL,
		"LABUREN_AGENT_ID=" + laburentest.DefaultAgentID,
	}
}

// conversationOf returns the ID of the "conversation: ID" line on stderr.
func conversationOf(t *testing.T, stderr string) string {
	t.Helper()
	for line := range strings.SplitSeq(stderr, "\n") {
		if id, ok := strings.CutPrefix(line, "conversation: "); ok {
			return id
		}
	}
	require.Failf(t, "no conversation line on stderr", "%s", stderr)
	return ""
}

// requestBody decodes the body of a request the fake received.
func requestBody(t *testing.T, r laburentest.Request) map[string]any {
	t.Helper()
	var body map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &body))
	return body
}

func TestQuery(t *testing.T) {
	const answer = "Hello from laburentest! You said: Where is my order?"
	tests := []struct {
		name      string
		args      []string
		streaming bool
		check     func(t *testing.T, stdout string)
	}{
		{"streamed", []string{"query", "Where is my order?"}, true, func(t *testing.T, stdout string) {
			assert.Equal(t, answer+"\n", stdout)
		}},
		{"no-stream", []string{"query", "-no-stream", "Where is my order?"}, false, func(t *testing.T, stdout string) {
			assert.Equal(t, answer+"\n", stdout)
		}},
		{"json", []string{"query", "-json", "Where is my order?"}, false, func(t *testing.T, stdout string) {
			require.True(t, strings.HasSuffix(stdout, "}\n"), "one JSON object and a line break: %q", stdout)
			var res laburen.QueryResponse
			require.NoError(t, json.Unmarshal([]byte(stdout), &res))
			assert.Equal(t, answer, res.Answer)
			assert.Equal(t, laburen.StatusUnresolved, res.Status)
			assert.Positive(t, res.Usage.TotalTokens)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := laburentest.NewServer()
			defer srv.Close()
			res := runCLI(t, apiEnv(srv), "", tt.args...)
			require.Equal(t, 0, res.code, "stderr: %s", res.stderr)
			tt.check(t, res.stdout)

			id := conversationOf(t, res.stderr)
			conv, ok := srv.Conversation(id)
			require.True(t, ok, "the conversation on stderr is the server's")
			assert.Len(t, conv.Messages, 2)
			reqs := srv.Requests()
			require.Len(t, reqs, 1)
			assert.Equal(t, "/api/agents/"+laburentest.DefaultAgentID+"/query", reqs[0].Path)
			assert.Equal(t, "Bearer "+laburentest.DefaultAPIKey, reqs[0].Header.Get("Authorization"))
			assert.Contains(t, reqs[0].Header.Get("User-Agent"), "laburen-cli/")
			body := requestBody(t, reqs[0])
			assert.Equal(t, "Where is my order?", body["query"])
			assert.Equal(t, tt.streaming, body["streaming"] == true)
		})
	}
}

func TestQueryContinuesConversation(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	first := runCLI(t, apiEnv(srv), "", "query", "Hi")
	require.Equal(t, 0, first.code, first.stderr)
	id := conversationOf(t, first.stderr)

	second := runCLI(t, apiEnv(srv), "", "query", "-conversation", id, "-visitor", "visitor-7", "Thanks")
	require.Equal(t, 0, second.code, second.stderr)
	assert.Equal(t, id, conversationOf(t, second.stderr))
	conv, ok := srv.Conversation(id)
	require.True(t, ok)
	assert.Len(t, conv.Messages, 4)
	assert.Equal(t, "visitor-7", requestBody(t, srv.Requests()[1])["visitorId"])
}

// TestFlagsOverrideEnvironment: -agent and -base-url win over LABUREN_AGENT_ID and
// LABUREN_BASE_URL.
func TestFlagsOverrideEnvironment(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	srv.AddAgent("support-bot")
	env := []string{
		"LABUREN_API_KEY=" + laburentest.DefaultAPIKey,
		"LABUREN_BASE_URL=http://127.0.0.1:1/api", // nothing listens there
		"LABUREN_AGENT_ID=unknown-agent",
	}
	res := runCLI(t, env, "", "query", "-agent", "support-bot", "-base-url", srv.URL, "Hi")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "Hello from laburentest! You said: Hi\n", res.stdout)
	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "support-bot", reqs[0].AgentID)
}

// TestWithoutKeyUsesFake: without LABUREN_API_KEY (nor a base URL) the commands talk to
// laburentest in their own process and say so in one line on stderr.
func TestWithoutKeyUsesFake(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stdin  string
		stdout string
	}{
		{"query", []string{"query", "Hi"}, "", "Hello from laburentest! You said: Hi\n"},
		{"query with an agent", []string{"query", "-agent", "my-agent", "Hi"}, "", "Hello from laburentest! You said: Hi\n"},
		{"chat", []string{"chat"}, "Hi\n", "Hello from laburentest! You said: Hi\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, []string{"LABUREN_AGENT_ID=" + laburentest.DefaultAgentID}, tt.stdin, tt.args...)
			require.Equal(t, 0, res.code, res.stderr)
			assert.Equal(t, tt.stdout, res.stdout)
			assert.Equal(t, 1, strings.Count(res.stderr, fakeNotice))
			assert.True(t, strings.HasPrefix(res.stderr, fakeNotice+"\n"), "%q", res.stderr)
		})
	}
	res := runCLI(t, nil, "", "agent-query", "It shipped")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Regexp(t, `^c[a-z0-9]{24}\n$`, res.stdout, "the recorded message's ID")
	assert.Contains(t, res.stderr, fakeNotice)
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(srv *laburentest.Server)
		env    func(srv *laburentest.Server) []string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{name: "unknown agent", args: []string{"query", "-agent", "nobody", "Hi"}, code: 1,
			stderr: []string{`laburen: stream query agent "nobody"`, "HTTP 404", "NOT_FOUND"}},
		{name: "wrong key", env: func(srv *laburentest.Server) []string {
			return []string{"LABUREN_API_KEY=wrong", "LABUREN_BASE_URL=" + srv.URL, "LABUREN_AGENT_ID=" + laburentest.DefaultAgentID}
		}, args: []string{"query", "-no-stream", "Hi"}, code: 1, stderr: []string{"HTTP 403", "UNAUTHORIZED"}},
		{name: "usage limit", setup: func(srv *laburentest.Server) { srv.UsageLimitNext(1) },
			args: []string{"query", "-json", "Hi"}, code: 1, stderr: []string{"HTTP 402", "USAGE_LIMIT"}},
		{name: "error inside the stream", setup: func(srv *laburentest.Server) { srv.StreamErrorNext(1, 2, "USAGE_LIMIT") },
			args: []string{"query", "Hi"}, code: 1, stdout: "Hello from\n", stderr: []string{"USAGE_LIMIT"}},
		{name: "stream cut off", setup: func(srv *laburentest.Server) { srv.CutStreamNext(1, 1) },
			args: []string{"query", "Hi"}, code: 1, stdout: "Hello\n", stderr: []string{"truncated"}},
		{name: "agent-query to an unknown agent", args: []string{"agent-query", "-agent", "nobody", "Hi"}, code: 1,
			stderr: []string{"HTTP 404"}},
		{name: "no server", env: func(*laburentest.Server) []string {
			return []string{"LABUREN_API_KEY=k", "LABUREN_BASE_URL=http://127.0.0.1:1/api", "LABUREN_AGENT_ID=a"}
		}, args: []string{"query", "Hi"}, code: 1, stderr: []string{"connection refused"}},

		{name: "no command", args: nil, code: 2, stderr: []string{"usage: laburen COMMAND"}},
		{name: "unknown command", args: []string{"ask", "Hi"}, code: 2, stderr: []string{`unknown command "ask"`, "usage: laburen COMMAND"}},
		{name: "no message", args: []string{"query"}, code: 2, stderr: []string{"laburen query: missing arguments", "usage: laburen query"}},
		{name: "flag after the message", args: []string{"query", "Hi", "-json"}, code: 2, stderr: []string{"want one argument, got 2"}},
		{name: "unknown flag", args: []string{"query", "-stream", "Hi"}, code: 2, stderr: []string{"flag provided but not defined: -stream", "usage: laburen query"}},
		{name: "empty message", args: []string{"query", ""}, code: 2, stderr: []string{"invalid query", `laburen query -h`}},
		{name: "no agent", env: func(srv *laburentest.Server) []string {
			return []string{"LABUREN_API_KEY=k", "LABUREN_BASE_URL=" + srv.URL}
		}, args: []string{"query", "Hi"}, code: 2, stderr: []string{"no agent: give -agent ID or set LABUREN_AGENT_ID"}},
		{name: "chat argument", args: []string{"chat", "Hi"}, code: 2, stderr: []string{"too many arguments", "usage: laburen chat"}},
		{name: "mock argument", args: []string{"mock", "x"}, code: 2, stderr: []string{"usage: laburen mock"}},
		{name: "mock negative delay", args: []string{"mock", "-event-delay", "-1s"}, code: 2, stderr: []string{"-event-delay must not be negative"}},
		{name: "webhook without subcommand", args: []string{"webhook"}, code: 2, stderr: []string{"usage: laburen webhook sign|send"}},
		{name: "webhook unknown subcommand", args: []string{"webhook", "listen"}, code: 2, stderr: []string{`unknown subcommand "listen"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := laburentest.NewServer()
			defer srv.Close()
			if tt.setup != nil {
				tt.setup(srv)
			}
			env := apiEnv(srv)
			if tt.env != nil {
				env = tt.env(srv)
			}
			res := runCLI(t, env, "", tt.args...)
			assert.Equal(t, tt.code, res.code, "stderr: %s", res.stderr)
			assert.Equal(t, tt.stdout, res.stdout)
			for _, s := range tt.stderr {
				assert.Contains(t, res.stderr, s)
			}
			if tt.code == 2 {
				for _, r := range srv.Requests() {
					assert.Failf(t, "a usage error sent a request", "%s %s", r.Method, r.Path)
				}
			}
		})
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args  []string
		usage string
		flags []string
	}{
		{[]string{"-h"}, "usage: laburen COMMAND", []string{"query", "agent-query", "chat", "mock", "webhook sign", "webhook send", "LABUREN_API_KEY"}},
		{[]string{"help"}, "usage: laburen COMMAND", nil},
		{[]string{"query", "-h"}, "usage: laburen query", []string{"-agent", "-base-url", "-conversation", "-visitor", "-json", "-no-stream"}},
		{[]string{"agent-query", "-h"}, "usage: laburen agent-query", []string{"-whatsapp-org", "-phone", "-chatwoot-account", "-chatwoot-customer"}},
		{[]string{"chat", "-h"}, "usage: laburen chat", []string{"-agent", "/new"}},
		{[]string{"mock", "-h"}, "usage: laburen mock", []string{"-addr", "-key", "-agent", "-conversational", "-plain", "-event-delay", "-sse-errors", "-redeliver"}},
		{[]string{"webhook", "-h"}, "usage: laburen webhook", []string{"sign", "send"}},
		{[]string{"webhook", "sign", "-h"}, "usage: laburen webhook sign", []string{"-secret"}},
		{[]string{"webhook", "send", "-h"}, "usage: laburen webhook send", []string{"-url", "-secret", "-conversation", "-text", "-times"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			res := runCLI(t, nil, "", tt.args...)
			assert.Equal(t, 0, res.code)
			assert.Empty(t, res.stderr)
			assert.Contains(t, res.stdout, tt.usage)
			for _, f := range tt.flags {
				assert.Contains(t, res.stdout, f)
			}
		})
	}
}

func TestAgentQueryRouting(t *testing.T) {
	org, agent := laburentest.DefaultOrganizationID, laburentest.DefaultAgentID
	whatsapp, err := laburen.WhatsAppChannelExternalID(org, agent, "+54 9 11 5555-0000")
	require.NoError(t, err)
	chatwoot, err := laburen.ChatwootConversationID("12", "345")
	require.NoError(t, err)

	tests := []struct {
		name    string
		args    []string
		channel laburen.Channel
		field   string
		want    string
	}{
		{"whatsapp", []string{"-whatsapp-org", org, "-phone", "+54 9 11 5555-0000"}, laburen.ChannelWhatsApp, "channelExternalId", whatsapp},
		{"chatwoot", []string{"-chatwoot-account", "12", "-chatwoot-customer", "345"}, laburen.ChannelCRMChatsAppAI, "conversationId", chatwoot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := laburentest.NewServer()
			defer srv.Close()
			res := runCLI(t, apiEnv(srv), "", append(append([]string{"agent-query"}, tt.args...), "Your order shipped")...)
			require.Equal(t, 0, res.code, res.stderr)
			reqs := srv.Requests()
			require.Len(t, reqs, 1)
			assert.Equal(t, "/api/agents/"+agent+"/query-agent", reqs[0].Path)
			body := requestBody(t, reqs[0])
			assert.Equal(t, tt.want, body[tt.field])
			assert.Equal(t, string(tt.channel), body["channel"])
			assert.Equal(t, "Your order shipped", body["query"])

			conv, ok := srv.Conversation(conversationOf(t, res.stderr))
			require.True(t, ok)
			require.Len(t, conv.Messages, 1)
			assert.Equal(t, conv.Messages[0].ID+"\n", res.stdout, "stdout is the recorded message's ID")
			if tt.field == "conversationId" {
				assert.Equal(t, tt.want, conv.ID)
			}
		})
	}
}

// TestAgentQueryRefusesBadRouting: what the SDK's helpers refuse is refused with exit status 2,
// and nothing is sent.
func TestAgentQueryRefusesBadRouting(t *testing.T) {
	_, phoneErr := laburen.WhatsAppChannelExternalID("org", "agent", "011 5555-0000")
	require.Error(t, phoneErr)
	_, orgErr := laburen.WhatsAppChannelExternalID("my_org", "agent", "+54 9 11 5555-0000")
	require.Error(t, orgErr)
	_, accountErr := laburen.ChatwootConversationID("1_2", "345")
	require.Error(t, accountErr)

	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"phone without +", []string{"-whatsapp-org", "org", "-phone", "011 5555-0000"}, "no leading +"},
		{"organization with an underscore", []string{"-whatsapp-org", "my_org", "-phone", "+54 9 11 5555-0000"}, `"my_org" contains "_"`},
		{"agent with an underscore", []string{"-agent", "my_agent", "-whatsapp-org", "org", "-phone", "+54 9 11 5555-0000"}, `"my_agent" contains "_"`},
		{"account with an underscore", []string{"-chatwoot-account", "1_2", "-chatwoot-customer", "345"}, `"1_2" is not a Chatwoot ID`},
		{"phone without organization", []string{"-phone", "+54 9 11 5555-0000"}, "needs both -whatsapp-org and -phone"},
		{"account without customer", []string{"-chatwoot-account", "12"}, "needs both -chatwoot-account and -chatwoot-customer"},
		{"both routings", []string{"-whatsapp-org", "org", "-phone", "+5491155550000", "-chatwoot-account", "1", "-chatwoot-customer", "2"}, "not both"},
		{"chatwoot and a conversation", []string{"-conversation", "c1", "-chatwoot-account", "1", "-chatwoot-customer", "2"}, "give one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := laburentest.NewServer()
			defer srv.Close()
			res := runCLI(t, apiEnv(srv), "", append(append([]string{"agent-query"}, tt.args...), "Hi")...)
			assert.Equal(t, 2, res.code)
			assert.Contains(t, res.stderr, tt.stderr)
			assert.Empty(t, res.stdout)
			assert.Empty(t, srv.Requests(), "nothing is sent")
		})
	}
}

func TestChat(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	res := runCLI(t, apiEnv(srv), "Hi\n\nHow are you?\n/new\nBye\n/quit\nnever sent\n", "chat")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "Hello from laburentest! You said: Hi\n"+
		"Hello from laburentest! You said: How are you?\n"+
		"Hello from laburentest! You said: Bye\n", res.stdout)
	assert.Contains(t, res.stderr, "(new conversation)")

	convs := srv.Conversations()
	require.Len(t, convs, 2)
	assert.Len(t, convs[0].Messages, 4, "the first two messages share a conversation")
	assert.Len(t, convs[1].Messages, 2)
	assert.Len(t, srv.Requests(), 3)
}

// TestChatReportsErrorsAndGoesOn: a failed answer is reported and the chat continues.
func TestChatReportsErrorsAndGoesOn(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	srv.UsageLimitNext(1)
	res := runCLI(t, apiEnv(srv), "Hi\nAgain\n", "chat")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Contains(t, res.stderr, "error: ")
	assert.Contains(t, res.stderr, "HTTP 402")
	assert.Equal(t, "Hello from laburentest! You said: Again\n", res.stdout)
}

// TestInterruptEndsStream: Ctrl-C in the middle of a stream ends it cleanly: what arrived is
// on stdout with its line ended, "interrupted" on stderr, exit status 1, and the server sees the
// client go.
func TestInterruptEndsStream(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	srv.StallStreamNext(1, 2)
	cmd := command(t, apiEnv(srv), "query", "Hi")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())

	var got []byte
	buf := make([]byte, 64)
	for !bytes.Contains(got, []byte("Hello from")) {
		n, err := stdout.Read(buf)
		got = append(got, buf[:n]...)
		require.NoError(t, err, "stdout so far: %q", got)
	}
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	rest, err := io.ReadAll(stdout)
	require.NoError(t, err)
	got = append(got, rest...)
	err = cmd.Wait()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr)
	assert.Equal(t, 1, exitErr.ExitCode())
	assert.Equal(t, "Hello from\n", string(got))
	assert.Contains(t, stderr.String(), "laburen: interrupted\n")
	assertNoCrash(t, stderr.String())
}

// mockProcess is a running "laburen mock".
type mockProcess struct {
	cmd    *exec.Cmd
	url    string
	lines  []string // the lines after the URL
	stderr string   // the file that receives its stderr, readable at any time
}

// log returns what the mock wrote to stderr so far.
func (m *mockProcess) log(t *testing.T) string {
	b, err := os.ReadFile(m.stderr)
	require.NoError(t, err)
	return string(b)
}

// startMock starts "laburen mock" with args and reads its first line (the base URL) and the
// next `lines` lines of stdout.
func startMock(t *testing.T, lines int, args ...string) *mockProcess {
	t.Helper()
	cmd := command(t, nil, append([]string{"mock", "-addr", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	m := &mockProcess{cmd: cmd, stderr: filepath.Join(t.TempDir(), "stderr")}
	stderr, err := os.Create(m.stderr)
	require.NoError(t, err)
	defer stderr.Close() // the process has its own copy
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	r := bufio.NewReader(stdout)
	first, err := r.ReadString('\n')
	require.NoError(t, err, "stderr: %s", m.log(t))
	m.url = strings.TrimSuffix(first, "\n")
	for range lines {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		m.lines = append(m.lines, strings.TrimSuffix(line, "\n"))
	}
	return m
}

// stop interrupts the mock as Ctrl-C does and returns its exit status.
func (m *mockProcess) stop(t *testing.T) int {
	t.Helper()
	require.NoError(t, m.cmd.Process.Signal(os.Interrupt))
	err := m.cmd.Wait()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		require.NoError(t, err)
	}
	return m.cmd.ProcessState.ExitCode()
}

// post sends a request to the mock with plain net/http, as a test in another language would.
func post(t *testing.T, url, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

func TestMock(t *testing.T) {
	m := startMock(t, 4, "-key", "test-key", "-agent", "support-bot", "-conversational", "async-bot", "-plain")
	assert.Regexp(t, `^http://127\.0\.0\.1:[0-9]+/api$`, m.url)
	assert.Equal(t, []string{
		"key test-key",
		"agent " + laburentest.DefaultAgentID,
		"agent support-bot",
		"agent async-bot conversational",
	}, m.lines)

	status, body := post(t, m.url+"/agents/support-bot/query", "test-key", `{"query":"Where is my order?"}`)
	require.Equal(t, http.StatusOK, status, body)
	var res struct {
		Answer         string `json:"answer"`
		ConversationID string `json:"conversationId"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	assert.Equal(t, "Hello from laburentest! You said: Where is my order?", res.Answer)
	assert.NotEmpty(t, res.ConversationID)

	// -plain: stream payloads as plain text (percent-encoded, " from" would be "%20from").
	status, body = post(t, m.url+"/agents/"+laburentest.DefaultAgentID+"/query", "test-key", `{"query":"Hi","streaming":true}`)
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, "event: answer\ndata:  from\n\n")
	assert.True(t, strings.HasSuffix(body, "data: [DONE]\n\n"), "%q", body)

	// -key replaces the default key; -conversational needs a webhookUrl.
	status, _ = post(t, m.url+"/agents/support-bot/query", laburentest.DefaultAPIKey, `{"query":"Hi"}`)
	assert.Equal(t, http.StatusForbidden, status)
	status, _ = post(t, m.url+"/agents/async-bot/query", "test-key", `{"query":"Hi"}`)
	assert.Equal(t, http.StatusBadRequest, status)

	assert.Equal(t, 0, m.stop(t), "stderr: %s", m.log(t))
	log := m.log(t)
	assertNoCrash(t, log)
	for _, want := range []string{
		"POST /api/agents/support-bot/query 200 ",
		"POST /api/agents/" + laburentest.DefaultAgentID + "/query 200 ",
		"POST /api/agents/support-bot/query 403 ",
		"POST /api/agents/async-bot/query 400 ",
	} {
		assert.Contains(t, log, want)
	}
	assert.Equal(t, 4, strings.Count(log, "\n"), "one line per request: %s", log)
	assert.NotContains(t, log, "test-key", "the key is not logged")
}

// TestMockServesTheSDK: the SDK itself works against the mock, with its default settings and
// the key the mock printed; -event-delay spaces out the events of a stream.
func TestMockServesTheSDK(t *testing.T) {
	const delay = 20 * time.Millisecond
	m := startMock(t, 2, "-event-delay", delay.String())
	require.Equal(t, "key "+laburentest.DefaultAPIKey, m.lines[0])
	c, err := laburen.NewClient(laburen.WithBaseURL(m.url), laburen.WithAPIKey(strings.TrimPrefix(m.lines[0], "key ")))
	require.NoError(t, err)

	start := time.Now()
	st, err := c.QueryStream(context.Background(), laburentest.DefaultAgentID, laburen.QueryRequest{Query: "Hi"})
	require.NoError(t, err)
	res, err := st.Final()
	require.NoError(t, err)
	st.Close()
	assert.Equal(t, "Hello from laburentest! You said: Hi", res.Answer)
	// Six answer chunks, the endpoint_response and [DONE], each after the delay.
	assert.GreaterOrEqual(t, time.Since(start), 8*delay)
	assert.Equal(t, 0, m.stop(t), "stderr: %s", m.log(t))
}

// TestMockStopEndsStreams: an interrupt ends the streams still open (here one waiting an hour
// for its first event) and the mock exits 0, having logged them.
func TestMockStopEndsStreams(t *testing.T) {
	m := startMock(t, 2, "-event-delay", "1h")
	req, err := http.NewRequest(http.MethodPost, m.url+"/agents/"+laburentest.DefaultAgentID+"/query",
		strings.NewReader(`{"query":"Hi","streaming":true}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+laburentest.DefaultAPIKey)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	assert.Equal(t, 0, m.stop(t), "stderr: %s", m.log(t))
	body, _ := io.ReadAll(res.Body) // ends: the server went away
	assert.NotContains(t, string(body), "[DONE]")
	assert.Contains(t, m.log(t), "POST /api/agents/"+laburentest.DefaultAgentID+"/query 200 ",
		"the stream's handler returned before the mock exited")
}

// TestMockFaults: -sse-errors sends a failed stream's error as an event, and -redeliver
// delivers a webhook again after a failed delivery.
func TestMockFaults(t *testing.T) {
	var attempts []int
	var mu sync.Mutex
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, len(attempts)+1)
		if len(attempts) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer hook.Close()
	m := startMock(t, 3, "-sse-errors", "-redeliver", "1ms, 1ms", "-conversational", "async-bot")

	status, body := post(t, m.url+"/agents/nobody/query", laburentest.DefaultAPIKey, `{"query":"Hi","streaming":true}`)
	assert.Equal(t, http.StatusNotFound, status)
	assert.True(t, strings.HasPrefix(body, "data: [ERROR]"), "%q", body)

	status, body = post(t, m.url+"/agents/async-bot/query", laburentest.DefaultAPIKey, `{"query":"Hi","webhookUrl":"`+hook.URL+`/hook"}`)
	require.Equal(t, http.StatusOK, status, body)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(attempts) == 2 }, 10*time.Second, time.Millisecond,
		"the failed delivery is delivered again")
	assert.Equal(t, 0, m.stop(t), "stderr: %s", m.log(t))

	for _, args := range [][]string{{"-redeliver", "soon"}, {"-redeliver", "1s,-1s"}} {
		res := runCLI(t, nil, "", append([]string{"mock"}, args...)...)
		assert.Equal(t, 2, res.code)
		assert.Contains(t, res.stderr, "-redeliver: ")
	}
}

// TestMockAddressInUse: a listener that cannot be opened is an error with exit status 1.
func TestMockAddressInUse(t *testing.T) {
	busy := httptest.NewServer(http.NotFoundHandler())
	defer busy.Close()
	res := runCLI(t, nil, "", "mock", "-addr", strings.TrimPrefix(busy.URL, "http://"))
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, "laburen mock: listen tcp")
	assert.Empty(t, res.stdout)
}

// receiver is a webhook receiver built with laburen.NewWebhookHandler.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	events []*laburen.WebhookEvent
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{}
	h := laburen.NewWebhookHandler(func(_ context.Context, ev *laburen.WebhookEvent) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.events = append(r.events, ev)
		return nil
	}, laburen.WithWebhookSecret([]byte(secret)), laburen.WithWebhookLogger(nil))
	mux := http.NewServeMux()
	mux.Handle("/hooks/laburen", h)
	r.Server = httptest.NewServer(mux)
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) received() []*laburen.WebhookEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*laburen.WebhookEvent(nil), r.events...)
}

func TestWebhookSend(t *testing.T) {
	const secret = "a-webhook-secret-of-32-bytes-ok!"
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderr   string
		received int
	}{
		{"signed", []string{"-secret", secret, "-conversation", "conv-1", "-text", "Your order shipped.", "-text", "Anything else?"},
			0, "delivery 1: 200 OK\n", "", 1},
		{"three times", []string{"-secret", secret, "-times", "3"},
			0, "delivery 1: 200 OK\ndelivery 2: 200 OK\ndelivery 3: 200 OK\n", "", 3},
		{"wrong secret", []string{"-secret", "another-secret-of-enough-bytes"},
			1, "delivery 1: 401 Unauthorized\n", "1 of 1 deliveries were not answered 200 OK", 0},
		{"unsigned", nil,
			1, "delivery 1: 401 Unauthorized\n", "signature does not match", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, secret)
			res := runCLI(t, nil, "", append([]string{"webhook", "send", "-url", rcv.URL + "/hooks/laburen"}, tt.args...)...)
			assert.Equal(t, tt.code, res.code, "stderr: %s", res.stderr)
			assert.Equal(t, tt.stdout, res.stdout)
			assert.Contains(t, res.stderr, tt.stderr)
			assert.NotContains(t, res.stderr, laburen.WebhookSignatureParam, "the signed URL is not printed")
			assert.Len(t, rcv.received(), tt.received)
		})
	}

	t.Run("delivery", func(t *testing.T) {
		rcv := newReceiver(t, secret)
		res := runCLI(t, nil, "", "webhook", "send", "-url", rcv.URL+"/hooks/laburen", "-secret", secret,
			"-conversation", "conv-1", "-text", "Your order shipped.", "-text", "Anything else?", "-times", "2")
		require.Equal(t, 0, res.code, res.stderr)
		evs := rcv.received()
		require.Len(t, evs, 2)
		ev := evs[0]
		assert.Equal(t, laburen.WebhookEventAgentResponse, ev.Name)
		assert.Equal(t, laburen.WebhookEventAgentResponse, ev.Header.Get(laburen.WebhookEventHeader))
		assert.Equal(t, "conv-1", ev.ConversationID)
		require.Len(t, ev.Messages, 2)
		assert.Equal(t, "Your order shipped.", ev.Messages[0].Text)
		assert.Equal(t, "Anything else?", ev.Messages[1].Text)
		require.NotNil(t, ev.AgentResponse)
		assert.Equal(t, "Your order shipped.\n\nAnything else?", ev.AgentResponse.Answer)
		assert.Equal(t, "conv-1", ev.AgentResponse.ConversationID)
		assert.Regexp(t, `^c[a-z0-9]{24}$`, ev.AgentResponse.MessageID)
		assert.Equal(t, ev.DeliveryKey(), evs[1].DeliveryKey(), "a second delivery is a redelivery of the same answer")
	})
}

func TestWebhookSendUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no url", nil, "-url is required"},
		{"relative url", []string{"-url", "/hook"}, `-url "/hook" is not an absolute http or https URL`},
		{"short secret", []string{"-url", "http://127.0.0.1:1/hook", "-secret", "short"}, "invalid secret"},
		{"no deliveries", []string{"-url", "http://127.0.0.1:1/hook", "-times", "0"}, "-times must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, nil, "", append([]string{"webhook", "send"}, tt.args...)...)
			assert.Equal(t, 2, res.code)
			assert.Contains(t, res.stderr, tt.stderr)
			assert.Contains(t, res.stderr, "usage: laburen webhook send")
			assert.Empty(t, res.stdout)
		})
	}
	res := runCLI(t, nil, "", "webhook", "send", "-url", "http://127.0.0.1:1/hook?token=x", "-secret", "a-webhook-secret-of-32-bytes-ok!")
	assert.Equal(t, 1, res.code, "a receiver that cannot be reached")
	assert.Contains(t, res.stderr, "laburen webhook send: POST http://127.0.0.1:1/hook: ")
	assert.NotContains(t, res.stderr, laburen.WebhookSignatureParam)
}

func TestWebhookSign(t *testing.T) {
	const secret = "a-webhook-secret-of-32-bytes-ok!"
	res := runCLI(t, nil, "", "webhook", "sign", "-secret", secret, "https://example.com/hooks/laburen?tenant=acme", "order=42", "tag=a", "tag=b")
	require.Equal(t, 0, res.code, res.stderr)
	signed := strings.TrimSuffix(res.stdout, "\n")
	require.NotContains(t, signed, "\n")

	tests := []struct {
		name   string
		secret string
		ok     bool
	}{
		{"right secret", secret, true},
		{"other secret", "another-secret-of-enough-bytes", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, signed, strings.NewReader(`{"conversationId":"c1","messages":[{"text":"hi"}]}`))
			ev, err := laburen.ParseWebhook(r, laburen.WithWebhookSecret([]byte(tt.secret)))
			if !tt.ok {
				assert.ErrorIs(t, err, laburen.ErrWebhookBadSignature)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "acme", ev.Params.Get("tenant"))
			assert.Equal(t, "42", ev.Params.Get("order"))
			assert.Equal(t, []string{"a", "b"}, ev.Params["tag"])
		})
	}

	for _, args := range [][]string{
		{"https://example.com/hook"},                                     // no secret
		{"-secret", "short", "https://example.com/hook"},                 // secret too short
		{"-secret", secret, "example.com/hook"},                          // not absolute
		{"-secret", secret, "https://example.com/hook", "noequals"},      // not KEY=VALUE
		{"-secret", secret, "https://example.com/hook", "laburen_sig=x"}, // the signature's name
		{"-secret", secret},                                              // no URL
	} {
		res := runCLI(t, nil, "", append([]string{"webhook", "sign"}, args...)...)
		assert.Equal(t, 2, res.code, "%q: %s", args, res.stderr)
		assert.Contains(t, res.stderr, "usage: laburen webhook sign")
		assert.Empty(t, res.stdout)
	}
}

// TestReadmeCommandLines checks the laburen command lines of the README's shell blocks against
// the command: each names a command that exists and only flags that its usage lists.
func TestReadmeCommandLines(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	var lines [][]string
	for _, heading := range []string{"Command line", "Testing your code"} {
		_, section, ok := strings.Cut(string(readme), "\n## "+heading+"\n")
		require.True(t, ok, "the README has the section %q", heading)
		section, _, _ = strings.Cut(section, "\n## ")
		for _, block := range strings.Split(section, "```sh\n")[1:] {
			block, _, _ = strings.Cut(block, "```")
			for line := range strings.Lines(block) {
				line, _, _ = strings.Cut(line, "#")
				fields := strings.Fields(line)
				if len(fields) > 0 && fields[0] == "laburen" {
					lines = append(lines, fields)
				}
			}
		}
	}
	require.GreaterOrEqual(t, len(lines), 8)
	for _, fields := range lines {
		name := fields[1:2]
		if fields[1] == "webhook" {
			name = fields[1:3]
		}
		res := runCLI(t, nil, "", append(slices.Clone(name), "-h")...)
		require.Equal(t, 0, res.code, "%q: %s", fields, res.stderr)
		for _, f := range fields[len(name)+1:] {
			if strings.HasPrefix(f, "-") {
				assert.Regexp(t, `\n  `+f+`[ \n]`, res.stdout, "%q: flag %s", fields, f)
			}
		}
	}
}
