package docker

import "testing"

func TestPrunable(t *testing.T) {
	req := PruneRequest{Prefix: "flotilla-shop:", Keep: "flotilla-shop:new"}
	for _, tc := range []struct {
		tags []string
		want bool
	}{
		{[]string{"flotilla-shop:old"}, true},
		{[]string{"flotilla-shop:new"}, false},                      // the current one
		{[]string{"flotilla-shop:old", "flotilla-shop:new"}, false}, // also the current one
		{[]string{"flotilla-test-1-shop:old"}, false},               // another repository
		{[]string{"flotilla-shop:old", "mine:latest"}, false},       // someone tagged it
		{nil, false},                               // dangling: not ours to judge
		{[]string{"flotilla-shop:"}, false},        // no hash
		{[]string{"flotilla-shopping:old"}, false}, // another image name
	} {
		if got := prunable(tc.tags, req); got != tc.want {
			t.Errorf("prunable(%q) = %v, want %v", tc.tags, got, tc.want)
		}
	}
}
