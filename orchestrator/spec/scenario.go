package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Scenario is one stage of the story as a file a learner can read and copy:
// a title, a paragraph of explanation, steps to try, and its groups.
type Scenario struct {
	Name        string   `json:"name" yaml:"name"`
	Stage       int      `json:"stage" yaml:"stage"`
	Title       string   `json:"title" yaml:"title"`
	Explanation string   `json:"explanation" yaml:"explanation"`
	Try         []string `json:"try" yaml:"try"`
	Groups      []Group  `json:"groups" yaml:"groups"`
}

type scenarioFile Scenario

// ParseScenario decodes and checks a scenario file strictly; errors name
// the file, the line and the field.
func ParseScenario(file string, data []byte, maxReplicas int) (Scenario, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Scenario{}, fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(root.Content) == 0 {
		return Scenario{}, fmt.Errorf("%s is empty; a scenario has a name, a title, an explanation, steps to try and groups", file)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f scenarioFile
	if err := dec.Decode(&f); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return Scenario{}, fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			msgs[i] = file + ": " + explainYAML(m, &root)
		}
		return Scenario{}, errors.New(strings.Join(msgs, "\n"))
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return Scenario{}, fmt.Errorf("%s holds more than one YAML document; a scenario is one", file)
	}
	top := root.Content[0]
	line := func(field string) int {
		if k := findKey(top, field); k != nil {
			return k.Line
		}
		return top.Line
	}
	var msgs []string
	if err := ValidName(f.Name); err != nil {
		msgs = append(msgs, fmt.Sprintf("%s: line %d: scenario name: %v", file, line("name"), err))
	}
	if strings.TrimSpace(f.Title) == "" {
		msgs = append(msgs, fmt.Sprintf("%s: line %d: title is required", file, line("title")))
	}
	if strings.TrimSpace(f.Explanation) == "" {
		msgs = append(msgs, fmt.Sprintf("%s: line %d: explanation is required: a paragraph saying what the stage shows", file, line("explanation")))
	}
	if len(f.Groups) == 0 {
		msgs = append(msgs, fmt.Sprintf("%s: line %d: groups: a scenario needs at least one group", file, line("groups")))
	}
	// The groups are checked exactly as in a groups file, with their lines.
	if len(f.Groups) > 0 {
		if _, err := checkGroups(file, f.Groups, groupNodes(&root), maxReplicas); err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) > 0 {
		return Scenario{}, errors.New(strings.Join(msgs, "\n"))
	}
	return Scenario(f), nil
}

// LoadScenarios reads every *.yaml file of fsys, sorted by stage then name.
func LoadScenarios(fsys fs.FS, maxReplicas int) ([]Scenario, error) {
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, err
	}
	var out []Scenario
	seen := map[string]string{}
	for _, n := range names {
		data, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		sc, err := ParseScenario(n, data, maxReplicas)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[sc.Name]; dup {
			return nil, fmt.Errorf("%s: scenario %q is already defined in %s", n, sc.Name, prev)
		}
		if want := strings.TrimSuffix(path.Base(n), ".yaml"); sc.Name != want {
			return nil, fmt.Errorf("%s: the scenario is named %q; name the file %s.yaml", n, sc.Name, sc.Name)
		}
		seen[sc.Name] = n
		out = append(out, sc)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Stage != out[j].Stage {
			return out[i].Stage < out[j].Stage
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}
