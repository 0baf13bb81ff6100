package lb

import (
	"testing"
)

// A split sends its share of requests to the listed upstreams, on both
// data paths; sticky shoppers stay on their side; no split, or one side
// empty, is the whole rotation.
func TestSplitSendsItsShare(t *testing.T) {
	eachDataPath(t, func(t *testing.T, path string) {
		a, b2, c := newBackend(t, "old-1", nil), newBackend(t, "old-2", nil), newBackend(t, "new-1", nil)
		b := startLB(t, Config{DataPath: path}, a.up(), b2.up(), c.up())
		b.SetSplit([]string{c.up().ID}, 20)
		if b.Split() != 20 {
			t.Fatalf("split %d, want 20", b.Split())
		}
		got := spread(t, b, 1000, nil)
		if n := got["new-1"]; n < 140 || n > 260 {
			t.Fatalf("the canary got %d of 1000 requests at 20%%: %v", n, got)
		}
		if got["old-1"] < 300 || got["old-2"] < 300 {
			t.Fatalf("the stable side is not shared by its policy: %v", got)
		}
		b.SetUpstreams(ups(a, b2)) // the canary left rotation: no split
		if got := spread(t, b, 20, nil); got["new-1"] != 0 || b.Split() != 0 {
			t.Fatalf("a split without its canary: %v, split %d", got, b.Split())
		}
		b.SetUpstreams(ups(a, b2, c))
		b.SetSplit(nil, 0)
		if got := spread(t, b, 300, nil); got["new-1"] < 70 {
			t.Fatalf("without a split round-robin shares evenly: %v", got)
		}
	})
}

func TestSplitKeepsShoppersOnTheirSide(t *testing.T) {
	a, c := newBackend(t, "old-1", nil), newBackend(t, "new-1", nil)
	b := startLB(t, Config{Policy: PolicySticky}, a.up(), c.up())
	b.SetSplit([]string{c.up().ID}, 50)
	sides := map[string]int{}
	for i := range 40 {
		shopper := map[string]string{ShopperHeader: "shopper-" + string(rune('a'+i%26)) + string(rune('a'+i/26))}
		first := ""
		for range 5 {
			r := do(t, b, "GET", shopper, "")
			if first == "" {
				first = r.replica
			} else if r.replica != first {
				t.Fatalf("shopper %v moved from %s to %s", shopper, first, r.replica)
			}
		}
		sides[first]++
	}
	if sides["old-1"] == 0 || sides["new-1"] == 0 {
		t.Fatalf("a 50%% split put every shopper on one side: %v", sides)
	}
}
