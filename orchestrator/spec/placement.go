package spec

import (
	"fmt"
	"regexp"
	"strings"
)

// Placement says which nodes of a runtime of several nodes (the swarm
// runtime) a group's replicas may run on, and how they spread over them,
// in Swarm's own terms.
type Placement struct {
	// Constraints each say "<attribute>==<value>" or "<attribute>!=<value>"
	// of a node, for example "node.labels.zone==a" or "node.role!=manager";
	// a replica runs only on a node meeting them all.
	Constraints []string `json:"constraints,omitempty" yaml:"constraints,omitempty"`
	// Spread spreads replicas evenly over the values of a node label, for
	// example "node.labels.zone".
	Spread string `json:"spread,omitempty" yaml:"spread,omitempty"`
}

// maxConstraints bounds a group's placement constraints.
const maxConstraints = 10

var (
	// The node attributes Swarm matches a constraint against.
	constraintPattern = regexp.MustCompile(`^(node\.(id|hostname|role|platform\.os|platform\.arch)|(node|engine)\.labels\.[A-Za-z0-9][A-Za-z0-9_.-]{0,62})\s*(==|!=)\s*([A-Za-z0-9][A-Za-z0-9_.:-]{0,127})$`)
	spreadPattern     = regexp.MustCompile(`^(node|engine)\.labels\.[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
)

// Validate checks p, naming the field at fault.
func (p *Placement) Validate() error {
	if p == nil {
		return nil
	}
	if len(p.Constraints) > maxConstraints {
		return invalid("placement.constraints", "has %d constraints: at most %d", len(p.Constraints), maxConstraints)
	}
	for i, c := range p.Constraints {
		if !constraintPattern.MatchString(c) {
			return invalid(fmt.Sprintf("placement.constraints[%d]", i),
				"%q is not a constraint: write <attribute>==<value> or <attribute>!=<value>, with an attribute of node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<name> or engine.labels.<name> (for example node.labels.zone==a)", c)
		}
	}
	if p.Spread != "" && !spreadPattern.MatchString(p.Spread) {
		return invalid("placement.spread", "%q is not a node label to spread over: write node.labels.<name>, for example node.labels.zone", p.Spread)
	}
	return nil
}

// Empty reports whether p places nothing.
func (p *Placement) Empty() bool {
	return p == nil || (len(p.Constraints) == 0 && p.Spread == "")
}

// normalised is p with the spaces around each operator taken out, so that
// "node.role == worker" and "node.role==worker" are one template.
func (p *Placement) normalised() *Placement {
	if p.Empty() {
		return nil
	}
	out := &Placement{Spread: p.Spread}
	for _, c := range p.Constraints {
		m := constraintPattern.FindStringSubmatch(c)
		if m == nil {
			out.Constraints = append(out.Constraints, c)
			continue
		}
		out.Constraints = append(out.Constraints, strings.TrimSpace(m[1])+m[4]+m[5])
	}
	return out
}
