package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/laburen/laburen-go/internal/exampleenv"
	"github.com/laburen/laburen-go/internal/exampletest"
	"github.com/laburen/laburen-go/laburentest"
)

func TestMain(m *testing.M) { exampletest.TestMain(m, main) }

func TestRunWithoutEnvironment(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(context.Background(), exampleenv.Vars{}.Getenv, strings.NewReader("Hi\n"), &stdout, &stderr))
	assert.Equal(t, "Hello from laburentest! You said: Hi\n", stdout.String())
	assert.True(t, strings.HasPrefix(stderr.String(), "LABUREN_API_KEY or LABUREN_AGENT_ID is not set: using laburentest"), stderr.String())
}

func TestChat(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		fault  func(*laburentest.Server)
		stdout string
		stderr string
		convs  [][]string // the texts of each conversation's messages
	}{
		{
			name:   "keeps the conversation",
			input:  "Hi\n\n  Where is my order?  \n",
			stdout: "Hello from laburentest! You said: Hi\nHello from laburentest! You said: Where is my order?\n",
			stderr: "> > > > \n",
			convs: [][]string{{"Hi", "Hello from laburentest! You said: Hi",
				"Where is my order?", "Hello from laburentest! You said: Where is my order?"}},
		},
		{
			name:   "/new and /quit",
			input:  "One\n/new\nTwo\n/quit\nnever sent\n",
			stdout: "Hello from laburentest! You said: One\nHello from laburentest! You said: Two\n",
			stderr: "> > (new conversation)\n> > ",
			convs:  [][]string{{"One", "Hello from laburentest! You said: One"}, {"Two", "Hello from laburentest! You said: Two"}},
		},
		{
			name:   "an error does not end the chat",
			input:  "One\nTwo\n",
			fault:  func(s *laburentest.Server) { s.UsageLimitNext(1) },
			stdout: "Hello from laburentest! You said: Two\n",
			stderr: "> error: laburen: stream query agent \"" + laburentest.DefaultAgentID + "\": POST /api/agents/" + laburentest.DefaultAgentID + "/query: HTTP 402 Payment Required: USAGE_LIMIT\n> > \n",
			convs:  [][]string{{"Two", "Hello from laburentest! You said: Two"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := laburentest.NewServer()
			defer srv.Close()
			if tt.fault != nil {
				tt.fault(srv)
			}
			env := exampleenv.VarsFor(srv).Getenv
			var stdout, stderr bytes.Buffer
			require.NoError(t, run(context.Background(), env, strings.NewReader(tt.input), &stdout, &stderr))
			assert.Equal(t, tt.stdout, stdout.String())
			assert.Equal(t, tt.stderr, stderr.String())

			var got [][]string
			for _, conv := range srv.Conversations() {
				var texts []string
				for _, m := range conv.Messages {
					texts = append(texts, m.Text)
				}
				got = append(got, texts)
			}
			assert.Equal(t, tt.convs, got)
		})
	}
}

func TestChatEndsWithTheContext(t *testing.T) {
	srv := laburentest.NewServer()
	defer srv.Close()
	srv.StallStreamNext(1, 1)
	ctx, cancel := context.WithCancel(context.Background())
	env := exampleenv.VarsFor(srv).Getenv
	var stdout bytes.Buffer
	stalled := &cancelOnWrite{w: &stdout, cancel: cancel}
	err := run(ctx, env, strings.NewReader("Hi\nnever sent\n"), stalled, &bytes.Buffer{})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, "Hello\n", stdout.String())
	assert.Len(t, srv.Requests(), 1)
}

// cancelOnWrite cancels a context at the first write, after passing it on.
type cancelOnWrite struct {
	w      *bytes.Buffer
	cancel context.CancelFunc
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	defer c.cancel()
	return c.w.Write(p)
}

// TestBadConfiguration: main prints a clear error naming what is wrong and exits 1, without a
// panic.
func TestBadConfiguration(t *testing.T) {
	exampletest.CheckBadConfigs(t, "chat")
}
