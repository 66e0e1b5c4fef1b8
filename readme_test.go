package laburen

import (
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/laburen/laburen-go/internal/readmecheck"
)

// TestReadmeCoreSnippets checks that the code of the README's quick start, configuration,
// errors and routing IDs sections is the code of the examples in readme_example_test.go, which
// the compiler checks.
func TestReadmeCoreSnippets(t *testing.T) {
	readme := readmecheck.ReadFile(t, "README.md")
	examples := readmecheck.ReadFile(t, "readme_example_test.go")

	quick := readmecheck.Blocks(t, readme, "Quick start")
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
	assert.Equal(t, readmecheck.Region(t, examples, "quick start"), readmecheck.Unindent(body, "\t"))

	for _, tt := range []struct{ heading, region string }{
		{"Configuration", "configuration"},
		{"Errors", "errors"},
		{"Routing IDs", "routing IDs"},
	} {
		readmecheck.Match(t, readmecheck.Blocks(t, readme, tt.heading), examples, tt.region)
	}
}

// TestReadmeStreamingSnippets checks that the code of the README's Streaming section is the code
// of stream_example_test.go, which the compiler checks and Example_streaming runs.
func TestReadmeStreamingSnippets(t *testing.T) {
	readme := readmecheck.ReadFile(t, "README.md")
	examples := readmecheck.ReadFile(t, "stream_example_test.go")
	readmecheck.Match(t, readmecheck.Blocks(t, readme, "Streaming"), examples,
		"streaming", "streaming text", "streaming final")
}

// TestReadmeWebhookSnippets checks that the code of the README's "Conversational mode and
// webhooks" section is the code of Example_conversationalMode, which the compiler checks, and
// of the stores' examples, which the compiler checks in their modules.
func TestReadmeWebhookSnippets(t *testing.T) {
	readme := readmecheck.ReadFile(t, "README.md")
	example := readmecheck.ReadFile(t, "webhook_example_test.go")
	require.Len(t, readmecheck.Regions(example), 2)
	blocks := readmecheck.Blocks(t, readme, "Conversational mode and webhooks")
	require.Len(t, blocks, 4)
	readmecheck.Match(t, blocks[:2], example, "QueryAsync", "receiving")
	readmecheck.Match(t, blocks[2:3], readmecheck.ReadFile(t, "laburenredis/example_test.go"), "redis store")
	readmecheck.Match(t, blocks[3:], readmecheck.ReadFile(t, "laburenpg/example_test.go"), "postgres store")
}
