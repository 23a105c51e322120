package scan

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-mediator/mediator/mediator"
)

// BenchmarkDefinition is the scan of one definition, averaged over the
// corpus (first sight and change; a pinned definition is not rescanned).
func BenchmarkDefinition(b *testing.B) {
	corpus := loadCorpus(b)
	if _, err := DefaultSecrets(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		Definition(corpus[i%len(corpus)].Tool, Context{Own: []string{"x"}, Others: corpusOthers})
	}
}

// BenchmarkResultPerKiB is the inspection of a clean 1 KiB text result
// (secrets and injection markers); b.SetBytes gives the rate.
func BenchmarkResultPerKiB(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			in, err := NewInspector(nil)
			if err != nil {
				b.Fatal(err)
			}
			text := strings.Repeat("The quarterly export lists 42 accounts, their owners and balances. ", size/60+1)[:size]
			b.SetBytes(int64(size))
			for b.Loop() {
				c := &mediator.Call{Target: &mediator.Target{Server: "s"},
					Result: &mcp.CallToolResult{Content: []mcp.Content{mcp.TextContent{Type: "text", Text: text}}}}
				if err := in.Result(b.Context(), c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkArguments is the secret scan of a small argument object.
func BenchmarkArguments(b *testing.B) {
	in, err := NewInspector(nil)
	if err != nil {
		b.Fatal(err)
	}
	args := map[string]any{"path": "reports/q3.csv", "limit": 10.0, "query": "churn by region"}
	for b.Loop() {
		in.Arguments(&mediator.Call{Arguments: args})
	}
}
