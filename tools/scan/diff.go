package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Change is one difference between two tool definitions: a JSON path and
// its value before and after ("" when absent), as compact JSON.
type Change struct {
	Path   string `json:"path"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// Kind says whether the path was added, removed or changed.
func (c Change) Kind() string {
	switch {
	case c.Before == "":
		return "added"
	case c.After == "":
		return "removed"
	}
	return "changed"
}

// maxLeaves bounds the paths a diff walks; a definition is at most
// MaxDefinitionBytes and MaxDefinitionDepth deep before it gets here.
const maxLeaves = 8192

// Diff lists what differs between two definitions, path by path (leaves:
// strings, numbers, booleans, null, empty objects and arrays). The
// "name" member at the top is ignored: it is the catalog's.
func Diff(before, after json.RawMessage) ([]Change, error) {
	b, err := leaves(before)
	if err != nil {
		return nil, fmt.Errorf("diff: pinned definition: %w", err)
	}
	a, err := leaves(after)
	if err != nil {
		return nil, fmt.Errorf("diff: offered definition: %w", err)
	}
	paths := make([]string, 0, len(a)+len(b))
	for p := range b {
		paths = append(paths, p)
	}
	for p := range a {
		if _, ok := b[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	var out []Change
	for _, p := range paths {
		if p == "name" || b[p] == a[p] {
			continue
		}
		out = append(out, Change{Path: p, Before: b[p], After: a[p]})
	}
	return out, nil
}

// Summary names the parts of a definition that changed, for an error
// message: "description, inputSchema.properties.path.default".
func Summary(changes []Change) string {
	var parts []string
	for _, c := range changes {
		parts = append(parts, c.Path+" "+c.Kind())
		if len(parts) == 5 && len(changes) > 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(changes)-5))
			break
		}
	}
	return strings.Join(parts, ", ")
}

func leaves(def json.RawMessage) (map[string]string, error) {
	out := map[string]string{}
	if def == nil {
		return out, nil
	}
	if len(def) > MaxDefinitionBytes {
		return nil, fmt.Errorf("definition over %d bytes", MaxDefinitionBytes)
	}
	if d := jsonDepth(def); d > MaxDefinitionDepth {
		return nil, fmt.Errorf("definition nests %d levels, over %d", d, MaxDefinitionDepth)
	}
	var v any
	if err := json.Unmarshal(def, &v); err != nil {
		return nil, err
	}
	var walk func(path string, v any) error
	walk = func(path string, v any) error {
		if len(out) > maxLeaves {
			return fmt.Errorf("definition has more than %d values", maxLeaves)
		}
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 0 {
				out[path] = "{}"
			}
			for k, e := range x {
				if err := walk(join(path, k), e); err != nil {
					return err
				}
			}
		case []any:
			if len(x) == 0 {
				out[path] = "[]"
			}
			for i, e := range x {
				if err := walk(join(path, strconv.Itoa(i)), e); err != nil {
					return err
				}
			}
		default:
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(x)
			out[path] = strings.TrimSuffix(buf.String(), "\n")
		}
		return nil
	}
	return out, walk("", v)
}
