// Package httpurl checks the absolute http and https URLs that laburen and laburentest are given.
package httpurl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrUserInfo is Parse's error for a URL that carries, or may carry, user info (user:password@).
// It repeats none of the URL.
var ErrUserInfo = errors.New("must not carry user info (user:password@)")

// Parse parses s and checks that it is an absolute http or https URL with a host name. It
// refuses a URL with user info, and one that may hold a password the parser would misread: an
// '@' in the authority, or anywhere in a URL without a path ("https://u:1234?x@h.test/" is
// host u, port 1234). An '@' in a path ("/logo@2x.png") is a path's. Its errors never repeat
// user info.
func Parse(s string) (*url.URL, error) {
	if mayHoldUserInfo(s) {
		return nil, ErrUserInfo
	}
	u, err := url.Parse(s)
	if err != nil {
		var uerr *url.Error
		switch {
		case strings.Contains(s, "@"): // the parser's words may quote a misread password
			err = ErrUserInfo
		case errors.As(err, &uerr):
			err = uerr.Err // url.Error repeats the whole URL
		}
		return nil, fmt.Errorf("does not parse: %w", err)
	}
	switch {
	case (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != "":
	case strings.Contains(s, "@"): // "https:/u:pw@h.test" has no host here, and user info elsewhere
		return nil, fmt.Errorf("is not an absolute http or https URL, and it %w", ErrUserInfo)
	default:
		return nil, fmt.Errorf("%q is not an absolute http or https URL", u.String())
	}
	return u, nil
}

// mayHoldUserInfo reports whether s has an '@' in its authority, or anywhere when no path
// follows its authority.
func mayHoldUserInfo(s string) bool {
	_, rest, ok := strings.Cut(s, "//")
	if !ok {
		rest = s
	}
	end := strings.IndexAny(rest, "/?#")
	if end >= 0 && rest[end] == '/' {
		rest = rest[:end]
	}
	return strings.Contains(rest, "@")
}
