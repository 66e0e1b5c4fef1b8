// Package exampletest runs an example's main the way a user does, for the examples' tests:
// in a process of its own, with the environment and arguments the test gives.
package exampletest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/laburen/laburen-go/internal/exampleenv"
)

// mainVar, set to "1" in a test binary's environment, makes TestMain run the example's main.
const mainVar = "LABUREN_EXAMPLE_RUN_MAIN"

// TestMain is an example's TestMain: it runs the tests, or, in a process started by RunMain,
// the example's main.
func TestMain(m *testing.M, main func()) {
	if os.Getenv(mainVar) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// RunMain runs the example's main, as a user would from the command line, in a new process of
// the test binary with the arguments args and the environment vars (no LABUREN_ variable of
// the test's own environment), and returns what it wrote to stderr and its exit code.
func RunMain(t *testing.T, vars exampleenv.Vars, args ...string) (stderr string, code int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LABUREN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, mainVar+"=1")
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var errBuf bytes.Buffer
	cmd.Stdin = strings.NewReader("")
	cmd.Stderr = &errBuf
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("run the example's main: %v", err)
	}
	return errBuf.String(), cmd.ProcessState.ExitCode()
}

// BadConfig is a configuration an example must refuse.
type BadConfig struct {
	Name string
	Vars exampleenv.Vars
	Args []string
	Err  string // what main must print to stderr, after "<program>: "
}

// CheckBadConfigs runs main with each configuration, and with a LABUREN_BASE_URL that is not
// a URL, and checks that it printed the error and exited with status 1, without a panic.
func CheckBadConfigs(t *testing.T, program string, configs ...BadConfig) {
	configs = append([]BadConfig{{Name: "bad base URL",
		Vars: exampleenv.Vars{"LABUREN_API_KEY": "k", "LABUREN_AGENT_ID": "a", "LABUREN_BASE_URL": "dashboard.laburen.com"},
		Err:  "check LABUREN_API_KEY and LABUREN_BASE_URL: laburen: new client: WithBaseURL: "}}, configs...)
	for _, c := range configs {
		t.Run(c.Name, func(t *testing.T) {
			stderr, code := RunMain(t, c.Vars, c.Args...)
			assert.Equal(t, 1, code, stderr)
			assert.Contains(t, stderr, program+": "+c.Err)
			assert.NotContains(t, stderr, "panic")
		})
	}
}
