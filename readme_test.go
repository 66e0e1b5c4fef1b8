package laburen

import (
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmeSection returns the Go code blocks of the README section with the given heading.
func readmeSection(t *testing.T, readme, heading string) []string {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## "+heading+"\n")
	require.True(t, ok, "the README has the section %q", heading)
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []string
	for rest := section; ; {
		var block string
		var found bool
		if _, rest, found = strings.Cut(rest, "```go\n"); !found {
			return blocks
		}
		block, rest, _ = strings.Cut(rest, "```")
		blocks = append(blocks, block)
	}
}

// markedRegion returns the code between "// README <name>" and "// README end", one tab less
// indented.
func markedRegion(t *testing.T, src, name string) string {
	t.Helper()
	_, rest, ok := strings.Cut(src, "// README "+name+"\n")
	require.True(t, ok, "region %q", name)
	region, _, ok := strings.Cut(rest, "// README end")
	require.True(t, ok, "end of region %q", name)
	return dedent(region)
}

func dedent(s string) string {
	var out []string
	for line := range strings.Lines(s) {
		out = append(out, strings.TrimPrefix(strings.TrimRight(line, "\n"), "\t"))
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// TestReadmeCoreSnippets checks that the code of the README's quick start, configuration,
// errors and routing IDs sections is the code of the examples in readme_example_test.go, which
// the compiler checks.
func TestReadmeCoreSnippets(t *testing.T) {
	data, err := os.ReadFile("README.md")
	require.NoError(t, err)
	readme := string(data)
	data, err = os.ReadFile("readme_example_test.go")
	require.NoError(t, err)
	examples := string(data)

	quick := readmeSection(t, readme, "Quick start")
	require.Len(t, quick, 1)
	// The quick start is a whole program: it parses, its imports are those the example file
	// compiles with, and the body of main is the example's.
	fset := token.NewFileSet()
	prog, err := parser.ParseFile(fset, "quickstart.go", quick[0], parser.ImportsOnly)
	require.NoError(t, err)
	assert.Equal(t, "main", prog.Name.Name)
	exampleFile, err := parser.ParseFile(fset, "readme_example_test.go", examples, parser.ImportsOnly)
	require.NoError(t, err)
	var have []string
	for _, imp := range exampleFile.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		have = append(have, path)
	}
	for _, imp := range prog.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		assert.True(t, slices.Contains(have, path), "the quick start imports %s", path)
	}
	_, body, ok := strings.Cut(quick[0], "func main() {\n")
	require.True(t, ok)
	body = strings.TrimSuffix(strings.TrimSpace(body), "}")
	assert.Equal(t, markedRegion(t, examples, "quick start"), dedent(body))

	for _, tt := range []struct{ heading, region string }{
		{"Configuration", "configuration"},
		{"Errors", "errors"},
		{"Routing IDs", "routing IDs"},
	} {
		blocks := readmeSection(t, readme, tt.heading)
		require.Len(t, blocks, 1, tt.heading)
		assert.Equal(t, markedRegion(t, examples, tt.region), strings.TrimSpace(blocks[0]), tt.heading)
	}
}
