package version_test

import (
	"strings"
	"testing"

	"github.com/flotilla/flotilla/sample-services/version"
)

func TestCheck(t *testing.T) {
	for _, v := range append([]string{""}, version.Versions...) {
		for _, f := range append([]string{""}, version.Flaws...) {
			if err := version.Check(v, f); err != nil {
				t.Errorf("Check(%q, %q) = %v", v, f, err)
			}
		}
	}
	for _, tc := range []struct{ v, flaw, want string }{
		{"v4", "", `unknown FLOTILLA_VERSION "v4": want one of v1, v2, v3`},
		{"V1", "", `unknown FLOTILLA_VERSION "V1"`},
		{"v3", "slow", `unknown FLOTILLA_FLAW "slow": want one of errors, unready, crash`},
		{"v1", "oops", `unknown FLOTILLA_FLAW "oops"`},
	} {
		if err := version.Check(tc.v, tc.flaw); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%q, %q) = %v, want %q", tc.v, tc.flaw, err, tc.want)
		}
	}
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct{ v, flaw, wantV, wantFlaw string }{
		{"", "", "v1", ""},
		{"v2", "crash", "v2", ""},
		{"v3", "", "v3", "errors"},
		{"v3", "unready", "v3", "unready"},
	} {
		if v, f := version.Resolve(tc.v, tc.flaw); v != tc.wantV || f != tc.wantFlaw {
			t.Errorf("Resolve(%q, %q) = %q, %q; want %q, %q", tc.v, tc.flaw, v, f, tc.wantV, tc.wantFlaw)
		}
	}
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct{ v, flaw, want string }{
		{"", "", "v1, the first release"},
		{"v2", "", "v2, a good release: deals of its own"},
		{"v3", "", "v3, a bad release: 30% of requests fail"},
		{"v3", "unready", "v3, a bad release: it never becomes ready"},
		{"v3", "crash", "v3, a bad release: it crashes soon after it starts"},
	} {
		if got := version.Describe(tc.v, tc.flaw); got != tc.want {
			t.Errorf("Describe(%q, %q) = %q, want %q", tc.v, tc.flaw, got, tc.want)
		}
	}
}
