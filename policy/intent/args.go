package intent

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/mcp-mediator/mediator/mediator"
)

// A path constraint must not be dodged by a tool that takes its path under
// another name: read_multiple_files {"paths": [...]}, move_file {"source":
// ..., "destination": ...}, or {"edits": [{"file": ...}]}. So the checker
// classifies every argument name, at any depth of the arguments, into a
// family: paths (tested by prefix and glob constraints), URLs (tested by
// host constraints), or neither. The operator's classification in the
// upstream's config (tools.<tool>.paths, urls, plain) comes first; then the
// tool's input schema ("format": "uri" is a URL); then the name itself
// (path, paths, filePath, output_file, dir, source, destination; url,
// endpoint, host). A name that holds a path word elsewhere than at its end
// (path_prefix, fileGlob) cannot be classified: under a path constraint
// such an argument puts the call out of scope until the operator
// classifies it. The schema can only add tests: an upstream cannot declare
// its own arguments harmless.

// family is the kind of constraint that tests an argument.
type family uint8

const (
	famNone family = iota
	famPath        // prefix and glob
	famURL         // host
)

func familyOf(k mediator.ConstraintKind) family {
	switch k {
	case mediator.ConstraintPrefix, mediator.ConstraintGlob:
		return famPath
	case mediator.ConstraintHost:
		return famURL
	}
	return famNone
}

// Limits on the walk through nested arguments. Arguments beyond them are
// out of scope under a path or host constraint.
const (
	maxWalkDepth = 32
	maxWalkNodes = 4096
	// maxSchemaNames bounds the property names read from one schema.
	maxSchemaNames = 1024
)

// Words that make an argument name a path or a URL when they end it.
var (
	pathWords = []string{"path", "paths", "pathname", "pathnames", "file", "files", "filename", "filenames",
		"filepath", "filepaths", "dir", "dirs", "directory", "directories", "folder", "folders", "workdir", "cwd"}
	// pathNames are whole names that hold paths.
	pathNames = []string{"source", "sources", "destination", "destinations", "src", "dst", "dest"}
	urlWords  = []string{"url", "urls", "uri", "uris", "href", "endpoint", "endpoints", "host", "hosts", "hostname",
		"hostnames", "webhook"}
	// urlInnerWords make a name unclassifiable when they are not at its end.
	urlInnerWords = []string{"url", "urls", "uri", "uris"}
)

// classifyName classifies an argument name by its words (split at '_',
// '-', '.', spaces and lower-to-upper case changes). sure is false for a
// name that holds a path or URL word but not at its end.
func classifyName(name string) (f family, sure bool) {
	var buf [8]string
	words := splitWords(name, buf[:0])
	if len(words) == 0 {
		return famNone, true
	}
	last := words[len(words)-1]
	if len(words) == 1 && hasFold(pathNames, last) {
		return famPath, true
	}
	if hasFold(pathWords, last) || (len(words) >= 2 && hasFold2(pathWords, words[len(words)-2], last)) {
		return famPath, true
	}
	if hasFold(urlWords, last) {
		return famURL, true
	}
	for _, w := range words[:len(words)-1] {
		if hasFold(pathWords, w) {
			return famPath, false
		}
		if hasFold(urlInnerWords, w) {
			return famURL, false
		}
	}
	return famNone, true
}

// splitWords splits name into words without allocating while buf has room;
// names of more than cap(buf) words keep their first and last words.
func splitWords(name string, buf []string) []string {
	start := -1
	flush := func(end int) {
		if start >= 0 && end > start {
			if len(buf) == cap(buf) {
				buf[len(buf)-1] = name[start:end] // keep the last word
			} else {
				buf = append(buf, name[start:end])
			}
		}
		start = -1
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_' || c == '-' || c == '.' || c == ' ':
			flush(i)
		case c >= 'A' && c <= 'Z':
			if i > 0 && name[i-1] >= 'a' && name[i-1] <= 'z' {
				flush(i)
			}
			if start < 0 {
				start = i
			}
		default:
			if start < 0 {
				start = i
			}
		}
	}
	flush(len(name))
	return buf
}

func hasFold(words []string, w string) bool {
	for _, x := range words {
		if len(x) == len(w) && strings.EqualFold(x, w) {
			return true
		}
	}
	return false
}

// hasFold2 reports whether a+b (file+name, file+path) is one of words.
func hasFold2(words []string, a, b string) bool {
	for _, x := range words {
		if len(x) == len(a)+len(b) && strings.EqualFold(x[:len(a)], a) && strings.EqualFold(x[len(a):], b) {
			return true
		}
	}
	return false
}

// ToolArgs is what the checker knows about a tool's arguments: the names
// its input schema declares, and how they are classified. Build it with
// NewToolArgs; the zero value and nil mean nothing is known.
type ToolArgs struct {
	// declared are the schema's top-level property names; nil when the
	// schema is unknown.
	declared map[string]bool
	// notes are the operator's classification (mediator.Tool.Args).
	notes map[string]mediator.ArgKind
	// urls are property names (at any depth) the schema formats as URIs.
	urls map[string]bool
	// unsure are the schema's property names (at any depth) that may hold a
	// path or URL but cannot be classified, sorted, with their family.
	unsure []unsureName
	tool   string // the tool's name at the upstream, for reasons
}

type unsureName struct {
	name string
	fam  family
}

// NewToolArgs reads a tool definition (its inputSchema) and the operator's
// argument classification. A definition without an object schema leaves
// the declared names unknown: then every constraint applies.
func NewToolArgs(t mediator.Tool) *ToolArgs {
	ta := &ToolArgs{notes: t.Args, tool: t.Original}
	if ta.tool == "" {
		ta.tool = t.Name
	}
	var def struct {
		InputSchema json.RawMessage `json:"inputSchema"`
	}
	if json.Unmarshal(t.Definition, &def) != nil || len(def.InputSchema) == 0 {
		return ta
	}
	var root schemaNode
	if json.Unmarshal(def.InputSchema, &root) != nil || root.Type.String() != "object" {
		return ta
	}
	ta.declared = make(map[string]bool, len(root.Properties))
	for name := range root.Properties {
		ta.declared[name] = true
	}
	seen := map[string]bool{}
	n := 0
	ta.walkSchema(&root, 0, &n, seen)
	slices.SortFunc(ta.unsure, func(a, b unsureName) int { return strings.Compare(a.name, b.name) })
	return ta
}

// schemaNode is the part of a JSON schema the classification reads. It
// decodes leniently: a subschema that is not an object (true, false, a
// malformed one) is skipped, not an error for the whole schema.
type schemaNode struct {
	Type                 schemaType
	Format               string
	Properties           map[string]*schemaNode
	Items                *schemaNode
	AdditionalProperties *schemaNode
	AnyOf, OneOf, AllOf  []*schemaNode
}

func (n *schemaNode) UnmarshalJSON(b []byte) error {
	var raw struct {
		Type                 schemaType                 `json:"type"`
		Format               json.RawMessage            `json:"format"`
		Properties           map[string]json.RawMessage `json:"properties"`
		Items                json.RawMessage            `json:"items"`
		AdditionalProperties json.RawMessage            `json:"additionalProperties"`
		AnyOf                []json.RawMessage          `json:"anyOf"`
		OneOf                []json.RawMessage          `json:"oneOf"`
		AllOf                []json.RawMessage          `json:"allOf"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		// Not an object, or fields of unexpected types: keep what can be
		// read field by field.
		var fields map[string]json.RawMessage
		if json.Unmarshal(b, &fields) != nil {
			return nil
		}
		_ = json.Unmarshal(fields["type"], &raw.Type)
		_ = json.Unmarshal(fields["properties"], &raw.Properties)
		raw.Format, raw.Items, raw.AdditionalProperties = fields["format"], fields["items"], fields["additionalProperties"]
	}
	_ = json.Unmarshal(raw.Format, &n.Format)
	n.Type = raw.Type
	sub := func(m json.RawMessage) *schemaNode {
		if len(m) == 0 || m[0] != '{' {
			return nil
		}
		x := &schemaNode{}
		_ = json.Unmarshal(m, x)
		return x
	}
	if raw.Properties != nil {
		n.Properties = make(map[string]*schemaNode, len(raw.Properties))
		for k, v := range raw.Properties {
			n.Properties[k] = sub(v)
		}
	}
	n.Items, n.AdditionalProperties = sub(raw.Items), sub(raw.AdditionalProperties)
	for _, l := range []struct {
		in  []json.RawMessage
		out *[]*schemaNode
	}{{raw.AnyOf, &n.AnyOf}, {raw.OneOf, &n.OneOf}, {raw.AllOf, &n.AllOf}} {
		for _, m := range l.in {
			if x := sub(m); x != nil {
				*l.out = append(*l.out, x)
			}
		}
	}
	return nil
}

// schemaType is a schema's "type": a name or a list of names.
type schemaType []string

func (t *schemaType) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*t = schemaType{one}
		return nil
	}
	var many []string
	if json.Unmarshal(b, &many) == nil {
		*t = many
	}
	return nil // anything else: no type
}

func (t schemaType) String() string {
	if len(t) == 1 {
		return t[0]
	}
	return ""
}

// scalarOnly reports whether the type admits only numbers or booleans,
// which hold neither paths nor URLs.
func (t schemaType) scalarOnly() bool {
	if len(t) == 0 {
		return false
	}
	for _, x := range t {
		switch x {
		case "number", "integer", "boolean", "null":
		default:
			return false
		}
	}
	return true
}

func (ta *ToolArgs) walkSchema(s *schemaNode, depth int, n *int, seen map[string]bool) {
	if s == nil || depth > maxWalkDepth || *n > maxSchemaNames {
		return
	}
	for name, p := range s.Properties {
		*n++
		if p == nil {
			p = &schemaNode{} // true, or not a schema: any type
		}
		switch p.Format {
		case "uri", "url", "iri", "uri-reference", "iri-reference", "hostname", "idn-hostname":
			if ta.urls == nil {
				ta.urls = map[string]bool{}
			}
			ta.urls[name] = true
		}
		if _, noted := ta.notes[name]; !noted && !seen[name] && !p.Type.scalarOnly() {
			if f, sure := classifyName(name); !sure {
				seen[name] = true
				ta.unsure = append(ta.unsure, unsureName{name, f})
			}
		}
		ta.walkSchema(p, depth+1, n, seen)
	}
	ta.walkSchema(s.Items, depth+1, n, seen)
	ta.walkSchema(s.AdditionalProperties, depth+1, n, seen)
	for _, l := range [][]*schemaNode{s.AnyOf, s.OneOf, s.AllOf} {
		for _, x := range l {
			ta.walkSchema(x, depth+1, n, seen)
		}
	}
}

// classOf classifies the argument name: fams are the families (bits 1<<f)
// whose constraints test it, unsure those it may belong to but cannot be
// told, strict whether the operator classified it. The operator's note
// decides alone; otherwise the name's words and the schema's URI format
// add up (a schema can add a family, never take the name's away).
func (ta *ToolArgs) classOf(name string) (fams, unsure uint8, strict bool) {
	if ta != nil {
		switch ta.notes[name] {
		case mediator.ArgPath:
			return 1 << famPath, 0, true
		case mediator.ArgURL:
			return 1 << famURL, 0, true
		case mediator.ArgPlain:
			return 0, 0, true
		}
		if ta.urls[name] {
			fams |= 1 << famURL
		}
	}
	f, sure := classifyName(name)
	switch {
	case f == famNone:
	case sure:
		fams |= 1 << f
	default:
		unsure |= 1 << f
	}
	return fams, unsure &^ fams, false
}

func (ta *ToolArgs) declares(name string) bool {
	return ta != nil && ta.declared != nil && ta.declared[name]
}

func (ta *ToolArgs) schemaKnown() bool { return ta != nil && ta.declared != nil }

func (ta *ToolArgs) unsureNames() []unsureName {
	if ta == nil {
		return nil
	}
	return ta.unsure
}
