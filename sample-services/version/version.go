// Package version names the releases of the sample shop, so that a learner
// can watch a rollout go right or wrong. Every replica runs one version,
// given by env Env: v1 (the default), v2 (a good release a learner can see:
// deals of its own) or v3 (a bad release, whose flaw, env FlawEnv, says how
// it goes wrong). Each reply names its version in header Header.
//
// The package holds only names and checks, with no dependencies, so that the
// controller and the shop share them.
package version

import (
	"fmt"
	"slices"
	"strings"
)

const (
	// Env is the environment variable that sets a replica's version.
	Env = "FLOTILLA_VERSION"
	// FlawEnv sets how a bad release (v3) goes wrong; ignored by the others.
	FlawEnv = "FLOTILLA_FLAW"
	// Header names the version of the replica that made a reply, on every
	// reply.
	Header = "X-Flotilla-Version"

	// Default is the version of a replica given none.
	Default = "v1"
	// DefaultFlaw is the flaw of a bad release given none.
	DefaultFlaw = "errors"

	// Bad is the version that is a bad release.
	Bad = "v3"
)

// Flaws of a bad release.
const (
	// FlawErrors fails ErrorPercent of the shop's requests with a 500.
	FlawErrors = "errors"
	// FlawUnready never passes its readiness probe; it serves otherwise.
	FlawUnready = "unready"
	// FlawCrash panics and ends the process a few seconds after it starts.
	FlawCrash = "crash"
)

// ErrorPercent is the share of requests, in percent, that a bad release with
// FlawErrors fails.
const ErrorPercent = 30

var (
	// Versions are the known versions, oldest first.
	Versions = []string{"v1", "v2", Bad}
	// Flaws are the known flaws of a bad release.
	Flaws = []string{FlawErrors, FlawUnready, FlawCrash}
)

// Check returns an error naming the valid values if v or flaw is not known.
// Empty means the default of each. A flaw is checked whatever the version,
// so that a typo is caught before it matters.
func Check(v, flaw string) error {
	if v != "" && !slices.Contains(Versions, v) {
		return fmt.Errorf("unknown %s %q: want one of %s", Env, v, strings.Join(Versions, ", "))
	}
	if flaw != "" && !slices.Contains(Flaws, flaw) {
		return fmt.Errorf("unknown %s %q: want one of %s", FlawEnv, flaw, strings.Join(Flaws, ", "))
	}
	return nil
}

// Resolve returns v and flaw with their defaults: the flaw is empty unless v
// is the bad release. It does not check them; see Check.
func Resolve(v, flaw string) (string, string) {
	if v == "" {
		v = Default
	}
	if v != Bad {
		return v, ""
	}
	if flaw == "" {
		flaw = DefaultFlaw
	}
	return v, flaw
}

// Describe says in one line, for people, what a replica of version v with
// flaw does, e.g. "v3, a bad release: 30% of requests fail".
func Describe(v, flaw string) string {
	v, flaw = Resolve(v, flaw)
	switch v {
	case "v1":
		return "v1, the first release"
	case "v2":
		return "v2, a good release: deals of its own"
	case Bad:
		switch flaw {
		case FlawErrors:
			return fmt.Sprintf("%s, a bad release: %d%% of requests fail", v, ErrorPercent)
		case FlawUnready:
			return v + ", a bad release: it never becomes ready"
		case FlawCrash:
			return v + ", a bad release: it crashes soon after it starts"
		}
		return fmt.Sprintf("%s, a bad release with unknown flaw %q", v, flaw)
	}
	return fmt.Sprintf("unknown version %q", v)
}
