package docker

import (
	"strings"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

func TestParseReplicaLabels(t *testing.T) {
	tests := []struct {
		name    string
		labels  map[string]string
		want    replicaIdentity
		wantErr string
	}{
		{
			name:   "complete",
			labels: map[string]string{LabelGroup: "web", LabelReplica: "3", LabelService: "monolith", LabelTemplateHash: "abc"},
			want:   replicaIdentity{Group: "web", Index: 3, Service: "monolith", TemplateHash: "abc"},
		},
		{name: "no group", labels: map[string]string{LabelReplica: "1"}, wantErr: "io.flotilla.group is missing"},
		{name: "no index", labels: map[string]string{LabelGroup: "web"}, wantErr: "io.flotilla.replica is missing"},
		{name: "index not a number", labels: map[string]string{LabelGroup: "web", LabelReplica: "x"}, wantErr: "not a replica number"},
		{name: "index zero", labels: map[string]string{LabelGroup: "web", LabelReplica: "0"}, wantErr: "not a replica number"},
		{name: "index negative", labels: map[string]string{LabelGroup: "web", LabelReplica: "-2"}, wantErr: "not a replica number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseReplicaLabels(tt.labels)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReplicaLabelsRoundTrip(t *testing.T) {
	const inst = "0b5f6a5e-8d0e-4a8e-9a55-1c1f3b7a2a11"
	s := replica.Spec{Group: "cart", Index: 12, Service: "cart", TemplateHash: "deadbeef"}
	l := replicaLabels(inst, s)
	if !ownedBy(l, inst) {
		t.Fatalf("replica labels %v are not owned by %s", l, inst)
	}
	r := replicaFromLabels("id", l)
	want := replica.Replica{ID: "id", Name: "cart-12", Group: "cart", Index: 12, Service: "cart", TemplateHash: "deadbeef"}
	if r != want {
		t.Errorf("got %+v, want %+v", r, want)
	}
}

func TestOwnedBy(t *testing.T) {
	const inst = "0b5f6a5e-8d0e-4a8e-9a55-1c1f3b7a2a11"
	tests := []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{LabelManaged: "true", LabelInstance: inst}, true},
		{map[string]string{LabelManaged: "true", LabelInstance: "other"}, false},
		{map[string]string{LabelInstance: inst}, false},
		{map[string]string{LabelManaged: "false", LabelInstance: inst}, false},
		{map[string]string{LabelManaged: "true"}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := ownedBy(tt.labels, inst); got != tt.want {
			t.Errorf("ownedBy(%v) = %v, want %v", tt.labels, got, tt.want)
		}
	}
	if ownedBy(map[string]string{LabelManaged: "true", LabelInstance: ""}, "") {
		t.Error("an empty instance must own nothing")
	}
}

func TestDamagedLabelsStillListed(t *testing.T) {
	r := replicaFromLabels("id", map[string]string{LabelGroup: "web", LabelReplica: "zero"})
	if r.Index != 0 || r.Name != "" || r.Group != "web" {
		t.Errorf("damaged replica = %+v, want Index 0 and no name", r)
	}
}
