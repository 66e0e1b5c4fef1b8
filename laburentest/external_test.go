package laburentest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestImportFromAnotherModule proves that a module outside this repository can import
// laburentest and test a query, a stream, a webhook round trip and a fault with it: it copies
// testdata/usermodule into a temporary module that requires laburen-go (replaced by this
// working tree) and runs go test there. The temporary go.mod is this repository's, renamed, with
// laburen-go added, and its go.sum is this repository's: a complete go 1.24 module graph, so that
// go loads nothing beyond what this package's own test already needed (the graph of an old
// dependency such as go-querystring, whose go.mod says go 1.13, is never walked). So it runs with
// GOPROXY=off, on a fresh clone with an empty module cache as well as on a warm one.
func TestImportFromAnotherModule(t *testing.T) {
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	require.Contains(t, string(gomod), "module github.com/laburen/laburen-go\n")

	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", "usermodule", "user_test.go"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "user_test.go"), src, 0o644))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), gomod, 0o644))

	env := append(os.Environ(), "GOFLAGS=-mod=readonly", "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
	run := func(args ...string) string {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %s in the user's module:\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	run("mod", "edit", "-module=example.com/usermodule",
		"-require=github.com/laburen/laburen-go@v0.0.0", "-replace=github.com/laburen/laburen-go="+root)

	args := []string{"test", "-count=1"}
	if raceEnabled {
		args = append(args, "-race")
	}
	out := run(append(args, "./...")...)
	require.True(t, strings.HasPrefix(out, "ok"), "%s", out)
}
