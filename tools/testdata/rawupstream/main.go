// Command rawupstream is an MCP server over stdio that writes its answers as
// fixed JSON, not through an MCP library, for the tests that compare what an
// agent sees directly with what it sees through the mediator byte for byte:
// tools in an order that is not by name, without annotations or a
// description, with icons, an output schema, "required": false in a schema,
// and an execution member (which the mediator does not offer: tasks are not
// proxied).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

// Tools is the tools/list result's tools array, exactly as written.
const Tools = `[` +
	`{"name":"zeta","inputSchema":{"type":"object","properties":{"text":{"type":"string","required":false}}}},` +
	`{"name":"alpha","title":"Alpha","description":"","inputSchema":{"type":"object"},"icons":[{"src":"https://example.com/a.png","mimeType":"image/png","sizes":["48x48"]}]},` +
	`{"name":"mid","inputSchema":{"type":"object"},"outputSchema":{"type":"object","properties":{"n":{"type":"integer"}}},"_meta":{"vendor/x":1}},` +
	`{"name":"tasky","inputSchema":{"type":"object"},"execution":{"taskSupport":"optional"},"annotations":{"readOnlyHint":true}}` +
	`]`

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(in.Bytes(), &req) != nil || len(req.ID) == 0 || req.Method == "" {
			continue // a notification or a response
		}
		var result string
		switch req.Method {
		case "initialize":
			result = `{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"raw","version":"1"}}`
		case "tools/list":
			result = `{"tools":` + Tools + `}`
		case "tools/call":
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
