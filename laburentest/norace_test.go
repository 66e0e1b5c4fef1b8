//go:build !race

package laburentest_test

const raceEnabled = false
