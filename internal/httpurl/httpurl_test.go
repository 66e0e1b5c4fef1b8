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
		{"ftp://me:s3cret@h.test/x", `"ftp://me:xxxxx@h.test/x" is not an absolute http or https URL`},
		{"https://me:s3cret@h.test/%zz", `does not parse: invalid URL escape "%zz"`},
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
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
}
