package main

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/internal/exampleenv"
	"github.com/laburen/laburen-go/internal/exampletest"
	"github.com/laburen/laburen-go/laburentest"
)

func TestMain(m *testing.M) { exampletest.TestMain(m, main) }

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

// TestFailedDelivery: a delivery that failed ends the program with an error at once, instead of
// after its two-minute wait.
func TestFailedDelivery(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String() // a free port for the receiver, on which the fake sees nothing
	require.NoError(t, ln.Close())
	srv := laburentest.NewServer()
	defer srv.Close()
	srv.AddAgent(laburentest.DefaultAgentID, laburentest.Conversational())
	real := exampleenv.VarsFor(srv)

	tests := []struct {
		name string
		vars exampleenv.Vars
		err  string
	}{
		{name: "the fake cannot reach the URL",
			vars: exampleenv.Vars{"LABUREN_WEBHOOK_URL": "http://" + addr + "/webhook/laburen"},
			err:  "the answer could not be delivered: laburentest: webhook: Post "},
		{name: "the receiver refuses a delivery to another path",
			vars: exampleenv.Vars{"LABUREN_API_KEY": real["LABUREN_API_KEY"], "LABUREN_AGENT_ID": real["LABUREN_AGENT_ID"],
				"LABUREN_BASE_URL": real["LABUREN_BASE_URL"], "LABUREN_WEBHOOK_ADDR": addr, "LABUREN_WEBHOOK_URL": "http://" + addr + "/elsewhere"},
			err: "the receiver refused a delivery to /elsewhere with HTTP 404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{"Hi"}, tt.vars.Getenv, &stdout, &stderr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
			assert.Empty(t, stdout.String())
		})
	}
}

// TestBadConfiguration: main prints a clear error naming what is wrong and exits 1, without a
// panic.
func TestBadConfiguration(t *testing.T) {
	exampletest.CheckBadConfigs(t, "webhook",
		exampletest.BadConfig{Name: "short secret", Vars: exampleenv.Vars{"LABUREN_WEBHOOK_SECRET": "short"},
			Err: "LABUREN_WEBHOOK_SECRET has 5 bytes: it needs at least 16 (32 random bytes are best)\n"},
		exampletest.BadConfig{Name: "bad address", Vars: exampleenv.Vars{"LABUREN_WEBHOOK_ADDR": "nowhere"},
			Err: "LABUREN_WEBHOOK_ADDR: listen tcp: address nowhere: missing port in address\n"},
		exampletest.BadConfig{Name: "bad URL", Vars: exampleenv.Vars{"LABUREN_WEBHOOK_URL": "ftp://h.example.com/hook"},
			Err: "LABUREN_WEBHOOK_URL: laburen: sign webhook URL: invalid base: "},
	)
}
