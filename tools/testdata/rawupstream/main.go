// Command rawupstream is an MCP server over stdio that writes its answers as
// fixed JSON, not through an MCP library, for the tests that compare what an
// agent sees directly with what it sees through the mediator byte for byte:
// tools in an order that is not by name, without annotations or a
// description, with icons, an output schema, "required": false in a schema,
// and an execution member (which the mediator keeps); prompts, resources and templates likewise, with members mcp-go's
// types drop or add. The tool "grow" adds a resource and a template and
// sends one notifications/resources/list_changed; resources/read answers
// with the params it received, as text. completion/complete answers with
// "hasMore": false and "total": 0, or, for the value "hang", not at all;
// the tool "last_cancel" tells the params of the last
// notifications/cancelled; the tool "leaky" answers with a secret where
// mcp-go's types do not look (a member they do not know, a key given
// twice).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Tools is the tools/list result's tools array, exactly as written.
const Tools = `[` +
	`{"name":"zeta","inputSchema":{"type":"object","properties":{"text":{"type":"string","required":false}}}},` +
	`{"name":"alpha","title":"Alpha","description":"","inputSchema":{"type":"object"},"icons":[{"src":"https://example.com/a.png","mimeType":"image/png","sizes":["48x48"]}]},` +
	`{"name":"mid","inputSchema":{"type":"object"},"outputSchema":{"type":"object","properties":{"n":{"type":"integer"}}},"_meta":{"vendor/x":1}},` +
	`{"name":"tasky","inputSchema":{"type":"object"},"execution":{"taskSupport":"optional"},"annotations":{"readOnlyHint":true}},` +
	`{"name":"grow","inputSchema":{"type":"object"}},` +
	`{"name":"last_cancel","inputSchema":{"type":"object"}},` +
	`{"name":"leaky","inputSchema":{"type":"object"}}` +
	`]`

// Prompts, Resources and Templates are the other lists, exactly as written;
// Grown are the resource and the template "grow" adds.
const (
	Prompts = `[` +
		`{"name":"zprompt","title":"Z","description":"","icons":[{"src":"https://example.com/z.png"}],"arguments":[{"name":"a","required":false}]},` +
		`{"name":"aprompt","_meta":{"vendor/x":1}}` +
		`]`
	Resources = `[` +
		`{"uri":"raw://z","name":"z","size":12,"_meta":{"vendor/x":1}},` +
		`{"uri":"raw://a","name":"a","description":"","icons":[{"src":"https://example.com/a.png"}]}` +
		`]`
	Templates = `[` +
		`{"uriTemplate":"raw://t/{id}","name":"t","description":"","icons":[{"src":"https://example.com/t.png"}]},` +
		`{"uriTemplate":"raw://a/{x}","name":"a","_meta":{"vendor/x":1}}` +
		`]`
	GrownResource = `{"uri":"raw://new","name":"new"}`
	// LeakedSecret is the secret "leaky" hides (a GitHub token's shape).
	LeakedSecret  = "ghp_R8x2Kq7ZpL4mW9vT3nY6cB1dF5hJ0sA8eUiO"
	GrownTemplate = `{"uriTemplate":"raw://new/{n}","name":"new"}`
)

func main() {
	resources, templates := Resources, Templates
	lastCancel := ""
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		if json.Unmarshal(in.Bytes(), &req) != nil || req.Method == "" {
			continue // a response
		}
		if len(req.ID) == 0 {
			if req.Method == "notifications/cancelled" {
				lastCancel = string(req.Params)
			}
			continue
		}
		var result string
		switch req.Method {
		case "initialize":
			result = `{"protocolVersion":"2025-11-25","capabilities":{"tools":{},"prompts":{},"resources":{"listChanged":true},"completions":{}},"serverInfo":{"name":"raw","version":"1"}}`
		case "tools/list":
			result = `{"tools":` + Tools + `}`
		case "prompts/list":
			result = `{"prompts":` + Prompts + `}`
		case "resources/list":
			result = `{"resources":` + resources + `}`
		case "resources/templates/list":
			result = `{"resourceTemplates":` + templates + `}`
		case "resources/read":
			var p struct {
				URI string `json:"uri"`
			}
			_ = json.Unmarshal(req.Params, &p)
			uri, _ := json.Marshal(p.URI)
			text, _ := json.Marshal(string(req.Params))
			result = `{"contents":[{"uri":` + string(uri) + `,"text":` + string(text) + `}]}`
		case "completion/complete":
			if json.Valid(req.Params) && strings.Contains(string(req.Params), `"value":"hang"`) {
				continue // answered never: the agent cancels it
			}
			result = `{"completion":{"values":["a","b"],"total":0,"hasMore":false}}`
		case "tools/call":
			var p struct {
				Name string `json:"name"`
			}
			_ = json.Unmarshal(req.Params, &p)
			if p.Name == "leaky" {
				result = `{"content":[{"type":"text","text":"` + LeakedSecret + `","text":"ok","note":"` + LeakedSecret + `"}],"extra":"` + LeakedSecret + `"}`
				break
			}
			if p.Name == "last_cancel" {
				text, _ := json.Marshal(lastCancel)
				result = `{"content":[{"type":"text","text":` + string(text) + `}]}`
				break
			}
			if p.Name == "grow" && resources == Resources {
				resources = Resources[:len(Resources)-1] + "," + GrownResource + "]"
				templates = Templates[:len(Templates)-1] + "," + GrownTemplate + "]"
				fmt.Println(`{"jsonrpc":"2.0","method":"notifications/resources/list_changed"}`)
			}
			result = `{"content":[{"type":"text","text":"ok"}]}`
		case "ping":
			result = `{}`
		default:
			fmt.Printf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"method not found"}}`+"\n", req.ID)
			continue
		}
		fmt.Printf(`{"jsonrpc":"2.0","id":%s,"result":%s}`+"\n", req.ID, result)
	}
}
