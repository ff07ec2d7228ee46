package scim

import (
	"errors"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/ratelimit"
	"github.com/idbroker/idbroker/store"
)

// Refused bearer tokens are counted per directory and client address, not
// per address alone: Okta and Entra ID send every tenant's SCIM from the
// same few egress addresses, so one directory looping on a rotated token
// must not get every other directory behind that address refused. Ids that
// name no directory (made up, malformed, deleted) share one budget per
// address, so that a caller cannot open a budget, and a limiter key, per id
// it invents.

// unknownDirectory is the budget of every id that names no directory.
const unknownDirectory = "-"

// failureBucket is the echo context key under which authenticate leaves the
// budget a refusal is counted in, for FailureKey.
const failureBucket = "scim.failure_bucket"

// maxKnownDirs bounds the directory ids a node remembers to exist; past it
// the set is cleared and learnt again, one lookup each.
const maxKnownDirs = 100_000

// FailureKey is the key of a ratelimit.Rule for Config.AuthFailures: the
// directory the request names, or the one budget of unknown ids, and the
// client address (ratelimit.AddressKey). Requests authenticate has not
// seen are not counted.
func FailureKey(c echo.Context) (string, bool) {
	b, _ := c.Get(failureBucket).(string)
	ip, ok := ratelimit.ByIP(c)
	if b == "" || !ok {
		return "", false
	}
	return b + "|" + ip, true
}

// knownDirectories is the set of directory ids this node has seen a lookup
// find (a token accepted, or refused as not the directory's own). Only
// their budgets are checked before a lookup; any other id is looked up,
// and a refusal counted in the budget of unknown ids.
type knownDirectories struct {
	mu sync.Mutex
	m  map[string]struct{}
}

func (k *knownDirectories) add(dir string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil || len(k.m) >= maxKnownDirs {
		k.m = make(map[string]struct{})
	}
	k.m[dir] = struct{}{}
}

func (k *knownDirectories) has(dir string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.m[dir]
	return ok
}

// checkFailures answers 429 when the budget the request's directory id
// falls in is spent, before its token costs a lookup.
func (s *Server) checkFailures(c echo.Context, dir string) error {
	if s.failures == nil {
		return nil
	}
	if !s.knownDirs.has(dir) {
		// Not checked before its lookup: a real directory this node has
		// not seen yet (a fresh node) must not wait on a budget that
		// anyone's made-up ids spend from the same shared IdP egress
		// address, or a flood would hold its provisioning, deprovisioning
		// included, off that node. Its refusals still count, and the one
		// past the budget is a 429.
		c.Set(failureBucket, unknownDirectory)
		return nil
	}
	c.Set(failureBucket, dir)
	return tooManyRefused(s.failures.Check(c))
}

// refused answers a token that was refused: 401, or 429 once the refusal
// used up its budget. err is the lookup's: a wrong token of an existing
// directory is counted in that directory's budget, anything else in the
// budget of unknown ids. A token refused with no lookup (nil err: too long,
// or a malformed id) is counted where checkFailures checked it.
func (s *Server) refused(c echo.Context, dir string, err error) error {
	if s.failures != nil {
		if err != nil {
			b := unknownDirectory
			if errors.Is(err, store.ErrWrongDirectoryToken) {
				b = dir
			}
			c.Set(failureBucket, b)
		}
		if err := tooManyRefused(s.failures.Failed(c)); err != nil {
			return err
		}
	}
	return deny(c, "the bearer token is not valid for this directory")
}

// tooManyRefused renders the failure budget's 429 (its Retry-After is set)
// with a detail a directory's admin can act on.
func tooManyRefused(err error) error {
	if err == nil {
		return nil
	}
	return &Error{
		Status: http.StatusTooManyRequests,
		Detail: "too many refused bearer tokens for this directory from your address: check the token configured in your identity provider, then retry after Retry-After",
		Err:    err,
	}
}
