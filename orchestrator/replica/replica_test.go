package replica

import (
	"slices"
	"testing"
)

func TestSort(t *testing.T) {
	rs := []Replica{{Group: "b", Index: 1}, {Group: "a", Index: 10}, {Group: "a", Index: 2}, {Group: "a", Index: 2, ID: "x"}}
	Sort(rs)
	var got []string
	for _, r := range rs {
		got = append(got, Name(r.Group, r.Index)+r.ID)
	}
	if want := []string{"a-2", "a-2x", "a-10", "b-1"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

func TestCPUPercent(t *testing.T) {
	prev := Usage{CPUNanos: 1_000, SystemNano: 10_000, OnlineCPUs: 2}
	tests := []struct {
		name string
		cur  Usage
		want float64
	}{
		{"half of the host's time on two cores is one core", Usage{CPUNanos: 3_000, SystemNano: 14_000, OnlineCPUs: 2}, 100},
		{"no host time passed", Usage{CPUNanos: 3_000, SystemNano: 10_000, OnlineCPUs: 2}, 0},
		{"counter went back (restart)", Usage{CPUNanos: 500, SystemNano: 14_000, OnlineCPUs: 2}, 0},
		{"unknown core count counts as one", Usage{CPUNanos: 2_000, SystemNano: 14_000}, 25},
	}
	for _, tt := range tests {
		if got := CPUPercent(prev, tt.cur); got != tt.want {
			t.Errorf("%s: CPUPercent = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSpecName(t *testing.T) {
	if got := (Spec{Group: "cart", Index: 12}).Name(); got != "cart-12" {
		t.Errorf("Name = %q, want cart-12", got)
	}
}
