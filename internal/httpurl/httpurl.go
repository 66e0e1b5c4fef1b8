// Package httpurl checks the absolute http and https URLs that laburen and laburentest are given.
package httpurl

import (
	"errors"
	"fmt"
	"net/url"
)

// Parse parses s and checks that it is an absolute http or https URL with a host name. Its error
// never repeats a password that s may carry.
func Parse(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the whole URL
		}
		return nil, fmt.Errorf("does not parse: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("%q is not an absolute http or https URL", u.Redacted())
	}
	return u, nil
}
