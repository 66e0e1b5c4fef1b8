package laburentest

// The wire helpers, for the tests of the wire format.
var (
	Chunks             = chunks
	EncodeURIComponent = encodeURIComponent
)
