package laburentest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImportFromAnotherModule proves that a module outside this repository can import
// laburentest and test a query, a stream, a webhook round trip and a fault with it: it copies
// testdata/usermodule into a module made by userModule and runs go test there.
func TestImportFromAnotherModule(t *testing.T) {
	dir, run := userModule(t)
	src, err := os.ReadFile(filepath.Join("testdata", "usermodule", "user_test.go"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "user_test.go"), src, 0o644))

	args := []string{"test", "-count=1"}
	if raceEnabled {
		args = append(args, "-race")
	}
	out := run(append(args, "./...")...)
	require.True(t, strings.HasPrefix(out, "ok"), "%s", out)
}

// TestExamplesCopyIntoAnotherModule proves that each program under examples/ is one a user can
// copy: its main.go, alone in a directory of a module outside this repository (set up as in
// TestImportFromAnotherModule), builds, and runs there as here, against the fake server.
func TestExamplesCopyIntoAnotherModule(t *testing.T) {
	dir, run := userModule(t)
	examples, err := filepath.Glob(filepath.Join("..", "examples", "*", "main.go"))
	require.NoError(t, err)
	require.NotEmpty(t, examples)
	var names []string
	for _, path := range examples {
		name := filepath.Base(filepath.Dir(path))
		names = append(names, name)
		src, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, os.Mkdir(filepath.Join(dir, name), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name, "main.go"), src, 0o644))
	}
	bin := filepath.Join(dir, "bin")
	run("build", "-o", bin+string(filepath.Separator), "./...")

	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LABUREN_") {
			env = append(env, kv)
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), filepath.Join(bin, name))
			cmd.Env = env
			cmd.Stdin = strings.NewReader("Hi\n") // the chat's one message
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			require.NoError(t, cmd.Run(), "stderr:\n%s", stderr.String())
			assert.True(t, strings.HasPrefix(stderr.String(), "LABUREN_API_KEY or LABUREN_AGENT_ID is not set: using laburentest"), stderr.String())
			assert.NotEmpty(t, stdout.String())
		})
	}
}

// userModule makes a temporary module outside this repository that requires laburen-go,
// replaced by this working tree, and returns its directory and a function that runs the go
// command there. The go.mod is this repository's, renamed, with laburen-go added, and its
// go.sum is this repository's: a complete go 1.24 module graph, so that go loads nothing beyond
// what this package's own test already needed (the graph of an old dependency such as
// go-querystring, whose go.mod says go 1.13, is never walked). So it runs with GOPROXY=off, on
// a fresh clone with an empty module cache as well as on a warm one.
func userModule(t *testing.T) (string, func(args ...string) string) {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	require.Contains(t, string(gomod), "module github.com/laburen/laburen-go\n")

	dir := t.TempDir()
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), gomod, 0o644))

	env := append(os.Environ(), "GOFLAGS=-mod=readonly", "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %s in the user's module:\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	run("mod", "edit", "-module=example.com/usermodule",
		"-require=github.com/laburen/laburen-go@v0.0.0", "-replace=github.com/laburen/laburen-go="+root)
	return dir, run
}
