package httpurl

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in, wantErr string
	}{
		{"https://h.test/api", ""},
		{"http://h.test:8080/hook?t=1", ""},
		{"HTTPS://h.test", ""},
		{"/hook", `"/hook" is not an absolute http or https URL`},
		{"ftp://h.test/x", `"ftp://h.test/x" is not an absolute http or https URL`},
		{"https:///hook", `"https:///hook" is not an absolute http or https URL`},
		{"http://:8080/hook", `"http://:8080/hook" is not an absolute http or https URL`},
		{"h.test/hook", `"h.test/hook" is not an absolute http or https URL`},
		{"https://exa mple.com", "does not parse"},
		{"https://h.test/%zz", `does not parse: invalid URL escape "%zz"`},
		{"https://h.test/hook?notify=ops@s3cret.test", ""},
		{"https://h.test/hook#ops@s3cret.test", ""},
		// User info, and passwords the parser would misread, are refused without a word of them.
		{"ftp://me:s3cret@h.test/x", "must not carry user info"},
		{"https://me:s3cret@h.test/%zz", "must not carry user info"},
		{"https://me@h.test/x", "must not carry user info"},
		{"https://h.test/img/logo@2x.png", ""},
		{"https://h.test/@team/hook", ""},
		{"https://me:s3c/ret@h.test/x", "does not parse: must not carry user info"}, // invalid port ":s3c"
		{"https://me:s3c#ret@h.test/x", "must not carry user info"},
		{"https://me:1234?s3cret@h.test/x", "must not carry user info"}, // host me, port 1234, a query
		{"https://me:1234#s3cret@h.test/x", "must not carry user info"}, // host me, port 1234, a fragment
		{"https://h.test?s3cret@x", "must not carry user info"},
		{"https:/me:s3cret@h.test/x", "must not carry user info"}, // no host here; user info to a browser         // no path: read as above
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := Parse(tt.in)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.NotEmpty(t, u.Hostname())
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.NotContains(t, err.Error(), "s3c")
			assert.NotContains(t, err.Error(), "me:")
		})
	}
}
