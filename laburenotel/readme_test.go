package laburenotel_test

import (
	"testing"

	"github.com/laburen/laburen-go/internal/readmecheck"
)

// TestReadmeSnippets checks that the code of the README's "Tracing and metrics" section is the
// code of example_test.go, which the compiler checks. It lives in this module so that the core's
// tests need no OpenTelemetry.
func TestReadmeSnippets(t *testing.T) {
	readme := readmecheck.ReadFile(t, "../README.md")
	examples := readmecheck.ReadFile(t, "example_test.go")
	readmecheck.Match(t, readmecheck.Blocks(t, readme, "Tracing and metrics"), examples, "otel", "otel webhook")
}
