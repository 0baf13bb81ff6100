package spec

import (
	"errors"
	"strings"
	"testing"
)

func TestPlacementValidate(t *testing.T) {
	for _, p := range []*Placement{
		nil,
		{},
		{Constraints: []string{"node.labels.zone==a", "node.role != manager", "node.hostname==vm", "engine.labels.disk==ssd"}},
		{Spread: "node.labels.zone"},
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: %v, want it valid", p, err)
		}
	}
	many := make([]string, maxConstraints+1)
	for i := range many {
		many[i] = "node.role==worker"
	}
	for _, tt := range []struct {
		p     Placement
		field string
		says  string
	}{
		{Placement{Constraints: []string{"zone=a"}}, "placement.constraints[0]", "node.labels.zone==a"},
		{Placement{Constraints: []string{"node.role==worker", "node.labels.zone=~a"}}, "placement.constraints[1]", "is not a constraint"},
		{Placement{Constraints: []string{"node.cpu==4"}}, "placement.constraints[0]", "node.hostname"},
		{Placement{Constraints: []string{"node.labels.zone==a b"}}, "placement.constraints[0]", "is not a constraint"},
		{Placement{Constraints: many}, "placement.constraints", "at most 10"},
		{Placement{Spread: "zone"}, "placement.spread", "node.labels.<name>"},
		{Placement{Spread: "node.role"}, "placement.spread", "node.labels.<name>"},
	} {
		err := tt.p.Validate()
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field || !strings.Contains(ve.Reason, tt.says) {
			t.Errorf("%+v: %v, want an error on %s saying %q", tt.p, err, tt.field, tt.says)
		}
	}
}

func TestPlacementInTheTemplate(t *testing.T) {
	g := Group{Name: "web", Service: "catalog", Replicas: 2}
	plain := g.TemplateHash("img")
	g.Placement = &Placement{}
	if got := g.TemplateHash("img"); got != plain {
		t.Errorf("an empty placement changed the template: %s vs %s", got, plain)
	}
	g.Placement = &Placement{Constraints: []string{"node.labels.zone==a"}}
	zoneA := g.TemplateHash("img")
	if zoneA == plain {
		t.Error("a constraint left the template unchanged: its replicas would never move")
	}
	g.Placement = &Placement{Constraints: []string{"node.labels.zone == a"}}
	if got := g.TemplateHash("img"); got != zoneA {
		t.Errorf("spaces around the operator changed the template: %s vs %s", got, zoneA)
	}
	if err := (Group{Name: "web", Service: "catalog", Replicas: 1, Placement: &Placement{Spread: "zone"}}).Validate(DefaultMaxReplicas); err == nil {
		t.Error("a group with a bad placement passed validation")
	}
}
