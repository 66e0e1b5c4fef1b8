//go:build race

package laburentest_test

// raceEnabled tells TestImportFromAnotherModule to build with -race too, so that it reuses
// what the enclosing go test -race already compiled.
const raceEnabled = true
