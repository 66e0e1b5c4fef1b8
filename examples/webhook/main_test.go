package main

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/internal/exampleenv"
	"github.com/laburen/laburen-go/laburentest"
)

func TestRunWithoutEnvironment(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(context.Background(), nil, exampleenv.Vars{}.Getenv, &stdout, &stderr))
	assert.Equal(t, "Hola! I found your order.\nIt shipped yesterday and arrives tomorrow.\n", stdout.String())
	assert.True(t, strings.HasPrefix(stderr.String(), "LABUREN_API_KEY or LABUREN_AGENT_ID is not set: using laburentest"), stderr.String())
	assert.Contains(t, stderr.String(), "queued in conversation c")
}

func TestWebhook(t *testing.T) {
	tests := []struct {
		name           string
		conversational bool
		secret         string
		stdout         string
		stderr         string
	}{
		{name: "queued, answered by webhook", conversational: true, secret: "0123456789abcdef0123456789abcdef",
			stdout: "Part one.\nPart two.\n", stderr: "queued in conversation "},
		{name: "random secret", conversational: true, stdout: "Part one.\nPart two.\n", stderr: "queued in conversation "},
		{name: "answered at once", stdout: "Part one.\n\nPart two.\n", stderr: "the agent answered at once: its conversational mode is off\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := laburentest.NewServer(laburentest.WithResponder(laburentest.Answer("Part one.\n\nPart two.")))
			defer srv.Close()
			if tt.conversational {
				srv.AddAgent(laburentest.DefaultAgentID, laburentest.Conversational())
			}
			env := exampleenv.VarsFor(srv)
			env["LABUREN_WEBHOOK_SECRET"] = tt.secret
			var stdout, stderr bytes.Buffer
			require.NoError(t, run(context.Background(), []string{"Hi"}, env.Getenv, &stdout, &stderr))
			assert.Equal(t, tt.stdout, stdout.String())
			assert.True(t, strings.HasPrefix(stderr.String(), tt.stderr), stderr.String())

			if !tt.conversational {
				assert.Empty(t, srv.Webhooks())
				return
			}
			ws, err := srv.WaitWebhooks(context.Background(), 1)
			require.NoError(t, err)
			require.Len(t, ws, 1)
			assert.NoError(t, ws[0].Err)
			u, err := url.Parse(ws[0].URL)
			require.NoError(t, err)
			assert.Equal(t, "/webhook/laburen", u.Path)
			assert.NotEmpty(t, u.Query().Get(laburen.WebhookSignatureParam), "the URL was signed")
			assert.NotEmpty(t, u.Query().Get("ref"))
		})
	}
}
