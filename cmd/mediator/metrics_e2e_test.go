package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics with the Prometheus text parser.
func scrape(t *testing.T, url, token string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// series returns the metrics of family name whose labels include want.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

func counterValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	var sum float64
	for _, m := range series(fams, name, want) {
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		}
	}
	return sum
}

func histogramCount(fams map[string]*dto.MetricFamily, name string, want map[string]string) uint64 {
	var n uint64
	for _, m := range series(fams, name, want) {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

// Real calls move the counters and histograms of /metrics as they should;
// an unknown tool name creates no series; a bad token counts by reason; a
// bearer token guards the endpoint when configured.
func TestE2EMetrics(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	cfg := policyFragment(t, "p, *, tool, fake__wipe, deny, no-wipe\np, *, tool, fake__*, allow, fake-all\n") + `
agent: {id: e2e-agent}
auth: {anonymous: {id: e2e-agent}}
metrics: {listen: "` + addr + `", token_env: E2E_METRICS_TOKEN}
upstreams:
  - name: fake
    command: ` + buildTool(t, "tools/testdata/fakeupstream") + `
`
	p := startServe(t, cfg, "E2E_METRICS_TOKEN=s3cret-scrape")
	url := "http://" + addr + "/metrics"

	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("scrape without the token: %s, want 401", resp.Status)
	}

	before := scrape(t, url, "s3cret-scrape")
	c := httpClient(t, p.URL)
	for range 3 {
		if res := callTool(t, c, "fake__echo", map[string]any{"text": "hi"}); res.IsError {
			t.Fatalf("echo: %s", resultText(res))
		}
	}
	if res := callTool(t, c, "fake__wipe", nil); !res.IsError {
		t.Fatal("wipe was not denied")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = "no_such_tool_x9"
	_, _ = c.CallTool(ctx, req)

	bad, _ := http.NewRequest(http.MethodPost, p.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	bad.Header.Set("Authorization", "Bearer not-a-jwt")
	bad.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(bad); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad token: %s, want 401", resp.Status)
		}
	}

	after := scrape(t, url, "s3cret-scrape")
	delta := func(name string, labels map[string]string) float64 {
		return counterValue(t, after, name, labels) - counterValue(t, before, name, labels)
	}
	echo := map[string]string{"method": "tools/call", "upstream": "fake", "tool": "fake__echo", "decision": "allow", "rule": "fake-all", "outcome": "ok"}
	if d := delta("mediator_calls_total", echo); d != 3 {
		t.Errorf("mediator_calls_total%v moved by %v, want 3", echo, d)
	}
	wipe := map[string]string{"tool": "fake__wipe", "decision": "deny", "rule": "no-wipe", "outcome": "denied"}
	if d := delta("mediator_calls_total", wipe); d != 1 {
		t.Errorf("mediator_calls_total%v moved by %v, want 1", wipe, d)
	}
	for _, m := range after["mediator_calls_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if strings.Contains(l.GetValue(), "no_such_tool_x9") {
				t.Errorf("an unknown tool name made a series: %v", m.GetLabel())
			}
		}
	}
	if d := delta("mediator_auth_failures_total", map[string]string{"reason": "malformed"}); d != 1 {
		t.Errorf("mediator_auth_failures_total{reason=malformed} moved by %v, want 1", d)
	}
	for _, step := range []string{"authenticate", "policy", "forward", "record"} {
		l := map[string]string{"step": step}
		if d := histogramCount(after, "mediator_step_duration_seconds", l) - histogramCount(before, "mediator_step_duration_seconds", l); d < 4 {
			t.Errorf("mediator_step_duration_seconds{step=%s} count moved by %d, want at least 4", step, d)
		}
	}
	if d := histogramCount(after, "mediator_call_duration_seconds", map[string]string{"method": "tools/call", "outcome": "ok"}) -
		histogramCount(before, "mediator_call_duration_seconds", map[string]string{"method": "tools/call", "outcome": "ok"}); d != 3 {
		t.Errorf("mediator_call_duration_seconds{tools/call, ok} count moved by %d, want 3", d)
	}
	if d := delta("mediator_audit_records_total", nil); d < 5 {
		t.Errorf("mediator_audit_records_total moved by %v, want at least 5", d)
	}
	if v := counterValue(t, after, "mediator_upstream_up", map[string]string{"upstream": "fake", "required": "true"}); v != 1 {
		t.Errorf("mediator_upstream_up{fake} = %v, want 1", v)
	}
	if len(series(after, "mediator_approvals", map[string]string{"state": "pending"})) != 1 {
		t.Error("no mediator_approvals{state=pending}")
	}
	bi := series(after, "mediator_build_info", nil)
	if len(bi) != 1 || bi[0].GetGauge().GetValue() != 1 {
		t.Fatalf("mediator_build_info: %v", bi)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if after[name] == nil {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}
	checkDashboard(t, after)
}

var (
	promSelector = regexp.MustCompile(`\b(mediator_[a-z_]+)(\{[^}]*\})?`)
	promLabel    = regexp.MustCompile(`([a-z_]+)\s*(=~|!=|!~|=)`)
	promBy       = regexp.MustCompile(`by \(([^)]*)\)`)
)

// checkDashboard reads every query of the example Grafana dashboard and
// checks that each metric it names is one the mediator exports (in fams,
// a live scrape) and that each label it selects or groups by is one of
// that metric's labels.
func checkDashboard(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "grafana", "mediator-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if len(d.Panels) < 10 {
		t.Fatalf("dashboard has %d panels", len(d.Panels))
	}
	labelsOf := func(family string) map[string]bool {
		out := map[string]bool{"le": strings.HasSuffix(family, "_bucket")}
		base := family
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if f := fams[strings.TrimSuffix(family, suf)]; f != nil && f.GetType() == dto.MetricType_HISTOGRAM {
				base = strings.TrimSuffix(family, suf)
			}
		}
		f := fams[base]
		if f == nil {
			return nil
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				out[l.GetName()] = true
			}
		}
		return out
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			sels := promSelector.FindAllStringSubmatch(tg.Expr, -1)
			if len(sels) == 0 {
				t.Errorf("panel %q: query %q names no mediator metric", p.Title, tg.Expr)
			}
			var all map[string]bool
			for _, sel := range sels {
				labels := labelsOf(sel[1])
				if labels == nil {
					t.Errorf("panel %q: %s is not a metric the mediator exports", p.Title, sel[1])
					continue
				}
				all = labels
				for _, l := range promLabel.FindAllStringSubmatch(sel[2], -1) {
					if !labels[l[1]] {
						t.Errorf("panel %q: %s has no label %q", p.Title, sel[1], l[1])
					}
				}
			}
			for _, by := range promBy.FindAllStringSubmatch(tg.Expr, -1) {
				for _, l := range strings.Split(by[1], ",") {
					if l = strings.TrimSpace(l); all != nil && !all[l] {
						t.Errorf("panel %q: groups by %q, which its metric does not have", p.Title, l)
					}
				}
			}
		}
	}
}
