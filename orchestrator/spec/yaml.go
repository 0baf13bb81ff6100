package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// groupsFile is the shape of a groups file (flotilla apply FILE).
type groupsFile struct {
	Groups []Group `yaml:"groups"`
}

// ParseGroups decodes and checks a groups file strictly: an unknown field,
// a wrong type or an invalid group is an error naming the file, the line and
// the field, one problem per line. Defaults are not applied to the result.
func ParseGroups(file string, data []byte, maxReplicas int) ([]Group, error) {
	return parseGroups(file, data, maxReplicas)
}

// parseGroups decodes and checks a groups file. Errors name the file, the
// line and the field, one problem per line.
func parseGroups(file string, data []byte, maxReplicas int) ([]Group, error) {
	// The node tree gives lines to the errors the struct decoding cannot.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(root.Content) == 0 || root.Content[0].ShortTag() == "!!null" {
		return nil, fmt.Errorf("%s is empty; it should hold a groups: list", file)
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f groupsFile
	if err := dec.Decode(&f); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			msgs[i] = file + ": " + explainYAML(m, &root)
		}
		return nil, errors.New(strings.Join(msgs, "\n"))
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s holds more than one YAML document; put every group under one groups: list", file)
	}
	if len(f.Groups) == 0 {
		return nil, fmt.Errorf("%s has no groups; it should hold a groups: list", file)
	}

	return checkGroups(file, f.Groups, groupNodes(&root), maxReplicas)
}

// groupNodes returns the nodes of the items of the groups: list.
func groupNodes(root *yaml.Node) []*yaml.Node {
	if len(root.Content) == 0 {
		return nil
	}
	if list := findKey(root.Content[0], "groups"); list != nil {
		if v := valueOf(root.Content[0], list); v != nil && v.Kind == yaml.SequenceNode {
			return v.Content
		}
	}
	return nil
}

// findKey finds the key node of a dotted field path ("resources.pids") in a
// mapping node, or nil.
func findKey(n *yaml.Node, path string) *yaml.Node {
	var key *yaml.Node
	for _, part := range strings.Split(path, ".") {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		key = nil
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				key, n = n.Content[i], n.Content[i+1]
				break
			}
		}
		if key == nil {
			return nil
		}
	}
	return key
}

func valueOf(mapping, key *yaml.Node) *yaml.Node {
	for i := 0; i+1 < len(mapping.Content); i += 2 {
		if mapping.Content[i] == key {
			return mapping.Content[i+1]
		}
	}
	return nil
}

var (
	yamlUnknownField = regexp.MustCompile(`^line (\d+): field (.+) not found in type (\S+)$`)
	yamlWrongType    = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
)

// explainYAML rewrites one of yaml.v3's type errors, which speak of Go types,
// into the file's own terms.
func explainYAML(msg string, root *yaml.Node) string {
	if m := yamlUnknownField.FindStringSubmatch(msg); m != nil {
		where, fields := "the file", "a groups: list"
		switch m[3] {
		case "spec.Group":
			where, fields = "a group", "name, service, replicas, resources, balancer, probe and liveness"
		case "spec.Resources":
			where, fields = "resources", "memoryMiB, milliCPU and pids"
		case "spec.Balancer":
			where, fields = "balancer", "policy and port"
		case "spec.Probe":
			where, fields = "probe or liveness", "periodMs, timeoutMs, successThreshold and failureThreshold"
		case "spec.scenarioFile":
			where, fields = "a scenario", "name, stage, title, explanation, try and groups"
		}
		return fmt.Sprintf("line %s: unknown field %q in %s, which takes %s", m[1], m[2], where, fields)
	}
	if m := yamlWrongType.FindStringSubmatch(msg); m != nil {
		got := yamlKinds[m[2]]
		if got == "" {
			got = m[2]
		}
		if m[3] != "" {
			got += fmt.Sprintf(" %q", m[3])
		}
		want := goKinds[m[4]]
		if want == "" {
			want = m[4]
		}
		var line int
		fmt.Sscan(m[1], &line)
		if path := fieldAt(root, line, m[2], m[3]); path != "" {
			return fmt.Sprintf("line %s: %s must be %s, not %s", m[1], path, want, got)
		}
		return fmt.Sprintf("line %s: expected %s, not %s", m[1], want, got)
	}
	return msg
}

var yamlKinds = map[string]string{
	"!!str": "a string", "!!int": "a number", "!!float": "a number", "!!bool": "a boolean",
	"!!map": "a mapping", "!!seq": "a list", "!!null": "nothing", "!!timestamp": "a timestamp",
	"!!binary": "binary data",
}

var goKinds = map[string]string{
	"int": "a whole number", "int64": "a whole number",
	"string":            "a string",
	"[]spec.Group":      "a list of groups",
	"spec.Group":        "a mapping with name, service, replicas and resources",
	"spec.Resources":    "a mapping with memoryMiB, milliCPU and pids",
	"spec.groupsFile":   "a mapping with a groups: list",
	"spec.scenarioFile": "a scenario: a mapping with name, title, explanation, try and groups",
	"[]string":          "a list of strings",
}

// fieldAt finds the field whose value yaml.v3 complained about: on that line,
// with that tag and (possibly truncated) value. The path is relative to the
// group ("replicas", "resources.pids"), or "groups" at the top.
func fieldAt(root *yaml.Node, line int, tag, value string) string {
	var walk func(n *yaml.Node, path []string) string
	walk = func(n *yaml.Node, path []string) string {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if p := walk(c, path); p != "" {
					return p
				}
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				if p := walk(c, nil); p != "" {
					return p
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := append(append([]string(nil), path...), k.Value)
				if v.Line == line && v.ShortTag() == tag && valueMatches(v.Value, value) {
					return strings.Join(p, ".")
				}
				if found := walk(v, p); found != "" {
					return found
				}
			}
		}
		return ""
	}
	return walk(root, nil)
}

// valueMatches compares a node's value with yaml.v3's rendering of it, which
// cuts values longer than 10 characters to 7 and "...".
func valueMatches(full, shown string) bool {
	if shown == "" {
		return true
	}
	if strings.HasSuffix(shown, "...") && len(full) > 10 {
		return strings.HasPrefix(full, strings.TrimSuffix(shown, "..."))
	}
	return full == shown
}

// checkGroups validates groups read from file; items are their YAML nodes,
// for line numbers. It reports every problem, one per line.
func checkGroups(file string, groups []Group, items []*yaml.Node, maxReplicas int) ([]Group, error) {
	var msgs []string
	firstLine := map[string]int{}
	for i, g := range groups {
		var item *yaml.Node
		if i < len(items) {
			item = items[i]
		}
		line := 0
		if item != nil {
			line = item.Line
		}
		label := fmt.Sprintf("group %d", i+1)
		if g.Name != "" {
			label = fmt.Sprintf("group %q", g.Name)
		}
		if g.Name == "" {
			msgs = append(msgs, fmt.Sprintf("%s: line %d: %s: name is required", file, line, label))
			continue
		}
		if err := g.WithDefaults().Validate(maxReplicas); err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				if key := findKey(item, ve.Field); key != nil {
					line = key.Line
				}
			}
			msgs = append(msgs, fmt.Sprintf("%s: line %d: %s: %v", file, line, label, err))
			continue
		}
		if first, dup := firstLine[g.Name]; dup {
			msgs = append(msgs, fmt.Sprintf("%s: line %d: %s is already defined at line %d", file, line, label, first))
			continue
		}
		firstLine[g.Name] = line
	}
	if len(msgs) > 0 {
		return nil, errors.New(strings.Join(msgs, "\n"))
	}
	return groups, nil
}
