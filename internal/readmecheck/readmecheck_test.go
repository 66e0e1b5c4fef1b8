package readmecheck

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
)

const readme = "# title\n\n## One\n\ntext\n\n```go\nf()\n```\n\n```sh\nls\n```\n\n```go\n\nif ok {\n\tg()\n}\n\n```\n\n## Two\n\n```go\nh()\n```\n"

const src = `package p

// README top
func f() {
	g()
}

// README end

func g() {
	// README inside
	if ok {
		g()
	}
	// README end
	// README unterminated
}
`

func TestBlocks(t *testing.T) {
	assert.Equal(t, []string{"f()", "if ok {\n\tg()\n}"}, Blocks(t, readme, "One"))
	assert.Equal(t, []string{"h()"}, Blocks(t, readme, "Two"))
}

func TestRegion(t *testing.T) {
	assert.Equal(t, "func f() {\n\tg()\n}", Region(t, src, "top"), "at the top level: as it is")
	assert.Equal(t, "if ok {\n\tg()\n}", Region(t, src, "inside"), "in a function: one tab less")
	assert.Equal(t, []string{"top", "inside", "unterminated"}, Regions(src))
}

func TestMatch(t *testing.T) {
	Match(t, Blocks(t, "\n## S\n```go\nif ok {\n\tg()\n}\n```\n```go\nfunc f() {\n\tg()\n}\n```\n", "S"), src, "inside", "top")
}

func TestFailures(t *testing.T) {
	for name, check := range map[string]func(t testing.TB){
		"no section":             func(t testing.TB) { Blocks(t, readme, "Three") },
		"no region":              func(t testing.TB) { Region(t, src, "missing") },
		"a prefix is not a name": func(t testing.TB) { Region(t, src, "in") },
		"no end":                 func(t testing.TB) { Region(t, src, "unterminated") },
		"a block too many":       func(t testing.TB) { Match(t, Blocks(t, readme, "One"), src, "inside") },
		"a changed line":         func(t testing.TB) { Match(t, Blocks(t, readme, "Two"), src, "top") },
	} {
		t.Run(name, func(t *testing.T) {
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() { // require stops the test with runtime.Goexit
				defer close(done)
				check(r)
			}()
			<-done
			assert.True(t, r.failed, "the check fails")
		})
	}
}

// recorder is a testing.TB that records failures instead of failing its test.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()                           {}
func (r *recorder) Errorf(format string, args ...any) { r.failed = true }
func (r *recorder) FailNow()                          { r.failed = true; runtime.Goexit() }
