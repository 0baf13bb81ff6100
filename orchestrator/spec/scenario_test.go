package spec_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/sample-services/scenarios"
)

func TestShippedScenariosLoad(t *testing.T) {
	all, err := spec.LoadScenarios(scenarios.Files(), spec.DefaultMaxReplicas)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sc := range all {
		names = append(names, sc.Name)
		if len(sc.Try) == 0 {
			t.Errorf("scenario %s has nothing to try", sc.Name)
		}
	}
	if got := strings.Join(names, " "); got != "monolith scaled-no-lb scaled-lb microservices vms-vs-containers clusters event-driven serverless rollouts" {
		t.Fatalf("scenarios in stage order = %s", got)
	}
}

func TestBadScenariosNameLineAndField(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown field", "name: x\ntitle: t\nexplanation: e\ncolour: red\ngroups: []\n", `line 4: unknown field "colour" in a scenario`},
		{"unknown group field", "name: x\ntitle: t\nexplanation: e\ngroups:\n  - name: web\n    service: monolith\n    replicas: 1\n    image: nginx\n", `line 8: unknown field "image" in a group`},
		{"arbitrary image", "name: x\ntitle: t\nexplanation: e\ngroups:\n  - name: web\n    service: nginx\n    replicas: 1\n", `line 6: group "web": service: "nginx" is not a catalogued service`},
		{"wrong type", "name: x\ntitle: t\nexplanation: e\ngroups:\n  - name: web\n    service: cart\n    replicas: many\n", `line 7: replicas must be a whole number, not a string "many"`},
		{"bad policy", "name: x\ntitle: t\nexplanation: e\ngroups:\n  - name: web\n    service: cart\n    replicas: 1\n    balancer:\n      policy: random\n", `line 9: group "web": balancer.policy`},
		{"no title", "name: x\nexplanation: e\ngroups:\n  - {name: web, service: cart, replicas: 1}\n", "title is required"},
		{"no groups", "name: x\ntitle: t\nexplanation: e\n", "at least one group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := spec.ParseScenario("s.yaml", []byte(tt.yaml), 50)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "s.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
}

func TestScenarioFileNameMustMatch(t *testing.T) {
	fsys := fstest.MapFS{"other.yaml": {Data: []byte("name: x\ntitle: t\nexplanation: e\ngroups:\n  - {name: web, service: cart, replicas: 1}\n")}}
	if _, err := spec.LoadScenarios(fsys, 50); err == nil || !strings.Contains(err.Error(), "x.yaml") {
		t.Fatalf("LoadScenarios = %v, want a hint to rename the file", err)
	}
}
