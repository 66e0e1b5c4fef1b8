// Package readmecheck lets the tests keep README.md's Go code true: each Go block of the README
// is, line for line, a region of a Go file that the compiler checks (and often a test runs).
//
// A region is the code between a line "// README <name>" and the next line "// README end":
//
//	func Example_streaming() {
//		// README streaming
//		st, err := c.QueryStream(ctx, agentID, req)
//		...
//		// README end
//	}
//
// A test reads both files, takes the blocks of a README section with [Blocks] and compares
// them with the regions with [Match]; a README edited without its code, or the reverse, fails
// it. The package is for tests only.
package readmecheck

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ReadFile returns the text of the file at path, or stops the test if it cannot be read.
func ReadFile(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}

// Blocks returns the Go code blocks (fenced as ```go) of the README section under the heading
// "## <heading>", in order, each without the blank space around it. It stops the test if the
// README has no such section.
func Blocks(t testing.TB, readme, heading string) []string {
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
		blocks = append(blocks, strings.TrimSpace(block))
	}
}

// Region returns the code of src between the line "// README <name>" and the next line
// "// README end", each line without the indentation of the marker (so that code inside a
// function reads as the README shows it) and the whole without the blank space around it. It
// stops the test if src has no such region.
func Region(t testing.TB, src, name string) string {
	t.Helper()
	var region []string
	indent, in := "", false
	for line := range strings.Lines(src) {
		line = strings.TrimSuffix(line, "\n")
		switch marker := strings.TrimSpace(line); {
		case !in && marker == "// README "+name:
			indent, in = line[:len(line)-len(strings.TrimLeft(line, " \t"))], true
		case in && marker == "// README end":
			return Unindent(strings.Join(region, "\n"), indent)
		case in:
			region = append(region, line)
		}
	}
	require.True(t, in, "region %q", name)
	require.Failf(t, "unterminated region", "end of region %q", name)
	return ""
}

// Regions returns the names of the regions of src, in order.
func Regions(src string) []string {
	var names []string
	for line := range strings.Lines(src) {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "// README ")
		if ok && name != "end" {
			names = append(names, name)
		}
	}
	return names
}

// Unindent removes indent from the start of each line of s that has it, and the blank space
// around the result.
func Unindent(s, indent string) string {
	var lines []string
	for line := range strings.Lines(s) {
		lines = append(lines, strings.TrimPrefix(strings.TrimSuffix(line, "\n"), indent))
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// Match checks that blocks are, one by one, the regions of src with the given names: it stops
// the test unless there are as many blocks as names, and reports each block that differs from
// its region under the region's name.
func Match(t testing.TB, blocks []string, src string, names ...string) {
	t.Helper()
	require.Len(t, blocks, len(names), "the README's blocks for the regions %q", names)
	for i, name := range names {
		assert.Equal(t, Region(t, src, name), blocks[i], "the README's block for the region %q", name)
	}
}
