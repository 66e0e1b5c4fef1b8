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
// working tree) and runs go test there. It runs offline: the modules come from the module
// cache that "go mod download" filled, with the checksums of this repository's go.sum.
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
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/usermodule\n\ngo 1.24\n\n"+
		"require github.com/laburen/laburen-go v0.0.0\n\n"+
		"replace github.com/laburen/laburen-go => "+root+"\n"), 0o644))

	args := []string{"test", "-count=1"}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./...")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go test in the user's module:\n%s", out)
	require.True(t, strings.HasPrefix(string(out), "ok"), "%s", out)
}
