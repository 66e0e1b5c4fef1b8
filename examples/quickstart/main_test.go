package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	require.NoError(t, run(context.Background(), []string{"Where", "is", "my", "order?"}, exampleenv.Vars{}.Getenv, &stdout, &stderr))
	assert.Equal(t, "Hello from laburentest! You said: Where is my order?\n", stdout.String())
	assert.Equal(t, "LABUREN_API_KEY or LABUREN_AGENT_ID is not set: using laburentest, a fake Laburen server in this process\n", stderr.String())
}

func TestRunWithEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		key     string
		fault   func(*laburentest.Server)
		args    []string
		stdout  string
		wantErr error
	}{
		{name: "default question", key: laburentest.DefaultAPIKey,
			stdout: "Hello from laburentest! You said: Hi! What can you do for me?\n"},
		{name: "question from the arguments", key: laburentest.DefaultAPIKey, args: []string{"Hola"},
			stdout: "Hello from laburentest! You said: Hola\n"},
		{name: "wrong key", key: "wrong", wantErr: laburen.ErrUnauthorized},
		{name: "usage limit in the stream", key: laburentest.DefaultAPIKey,
			fault:  func(s *laburentest.Server) { s.StreamErrorNext(1, 2, "USAGE_LIMIT") },
			stdout: "Hello from", wantErr: laburen.ErrUsageLimit},
		{name: "stream cut", key: laburentest.DefaultAPIKey,
			fault: func(s *laburentest.Server) { s.CutStreamNext(1, 1) }, stdout: "Hello", wantErr: laburen.ErrStreamTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := laburentest.NewServer()
			defer srv.Close()
			if tt.fault != nil {
				tt.fault(srv)
			}
			env := exampleenv.VarsFor(srv)
			env["LABUREN_API_KEY"] = tt.key
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, env.Getenv, &stdout, &stderr)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.stdout, stdout.String())
			assert.Empty(t, stderr.String(), "the program used the server it was given")

			reqs := srv.Requests()
			require.NotEmpty(t, reqs)
			var body map[string]any
			require.NoError(t, json.Unmarshal(reqs[0].Body, &body))
			assert.Equal(t, true, body["streaming"])
		})
	}
}

// TestBadConfiguration: main prints a clear error naming what is wrong and exits 1, without a
// panic.
func TestBadConfiguration(t *testing.T) {
	exampletest.CheckBadConfigs(t, "quickstart")
}
