package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/mark3labs/mcp-go/mcp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// The example Grafana dashboard, evaluated for real: a mediator serves
// traffic of every kind the dashboard shows (allowed, denied, held for a
// human, refused tokens, an upstream that crashes and is restarted), the
// test scrapes /metrics as Prometheus would, and Prometheus's own PromQL
// engine evaluates every panel's query over the scrapes. Each query must
// parse and return data; the stat panels must show what was done. Then
// the panels are drawn, laid out as the dashboard lays them out, and
// screenshotted in headless Chromium (docs/screenshots/dashboard.png with
// UPDATE_SCREENSHOTS=1), since no Grafana can be installed here.
func TestE2EDashboardRendered(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	cfg := policyFragment(t, "p, *, tool, fake__wipe, deny, no-wipe\n"+
		"p, *, tool, fake__cat, deny, no-file-reads\n"+
		"p, *, tool, fake__copy, approve, copy-needs-a-human\n"+
		"p, *, tool, fake__*, allow, fake-all\n") + `
agent: {id: dash-agent}
auth: {anonymous: {id: dash-agent}}
approvals: {hold: 100ms}
metrics: {listen: "` + addr + `"}
upstreams:
  - name: fake
    command: ` + buildTool(t, "tools/testdata/fakeupstream") + `
`
	p := startServe(t, cfg)
	c := httpClient(t, p.URL)
	metricsURL := "http://" + addr + "/metrics"

	// One scrape each 15 s of the evaluation's clock (Prometheus's usual
	// interval); the traffic between two scrapes happens in real time.
	const scrapes, interval = 24, 15 * time.Second
	t0 := time.Now().Truncate(time.Second)
	st := &scrapeStore{series: map[string]*scrapedSeries{}}
	badToken := func() {
		req, _ := http.NewRequest(http.MethodPost, p.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		req.Header.Set("Authorization", "Bearer not-a-jwt")
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	try := func(name string, args map[string]any) {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = name, args
		_, _ = c.CallTool(ctx, req) // a crash or a pending approval is an error result; both are traffic
	}
	for i := range scrapes {
		for range 2 + i%4 {
			try("fake__echo", map[string]any{"text": "hi"})
		}
		if i%3 == 0 {
			try("fake__wipe", nil)
		}
		if i%5 == 1 {
			try("fake__cat", map[string]any{"path": "/etc/hostname"})
		}
		if i%6 == 2 {
			try("fake__copy", map[string]any{"source": "a", "destination": fmt.Sprintf("b-%d", i)})
		}
		if i%4 == 3 {
			badToken()
		}
		if i == scrapes/2 {
			try("fake__crash", nil)
			waitUpstreamBack(t, c)
		}
		st.add(scrape(t, metricsURL, ""), t0.Add(time.Duration(i)*interval))
	}

	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "grafana", "mediator-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	start, end := t0.Add(2*interval), t0.Add((scrapes-1)*interval)
	for i := range d.Panels {
		pn := &d.Panels[i]
		for _, tg := range pn.Targets {
			q, err := eng.NewRangeQuery(t.Context(), st, promql.NewPrometheusQueryOpts(false, 0, nil), tg.Expr, start, end, interval)
			if err != nil {
				t.Errorf("panel %q: query %q does not parse as PromQL: %v", pn.Title, tg.Expr, err)
				continue
			}
			res := q.Exec(t.Context())
			if res.Err != nil {
				t.Errorf("panel %q: query %q: %v", pn.Title, tg.Expr, res.Err)
				q.Close()
				continue
			}
			m, err := res.Matrix()
			// The engine reuses its points once the query is closed.
			for _, s := range m {
				pn.lines = append(pn.lines, line{name: legend(tg.LegendFormat, s.Metric), points: slices.Clone(s.Floats)})
			}
			q.Close()
			if err != nil || len(m) == 0 {
				t.Errorf("panel %q: query %q returned no data (%v)", pn.Title, tg.Expr, err)
			}
		}
	}
	// The stat panels show what the traffic did: the copies are waiting, wipes
	// and reads were denied, bad tokens refused, and nothing is down now.
	for title, want := range map[string]func(float64) bool{
		"Pending approvals": func(v float64) bool { return v >= 3 },
		"Denied calls/s":    func(v float64) bool { return v > 0 },
		"Upstreams down":    func(v float64) bool { return v == 0 },
		"Token failures/s":  func(v float64) bool { return v > 0 },
	} {
		pn := d.panel(title)
		if pn == nil {
			t.Errorf("no panel %q", title)
			continue
		}
		if v, ok := pn.last(); !ok || !want(v) {
			t.Errorf("panel %q shows %v at the end (data %v)", title, v, ok)
		}
	}
	if pn := d.panel("Upstream restarts"); pn != nil {
		if v, _ := pn.last(); v < 1 {
			t.Errorf("panel %q shows %v after fake crashed and was restarted", pn.Title, v)
		}
	}
	if t.Failed() {
		return
	}

	t.Run("rendered", func(t *testing.T) {
		chromium := requireChromium(t)
		page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(d.render(start, end)))
		}))
		defer page.Close()
		ctx := newChromium(t, chromium)
		must(t, chromedp.Do(ctx, chromedp.EmulateViewport(1360, 900), chromedp.Navigate(page.URL),
			chromedp.WaitVisible(chromedp.ID("dashboard"))))
		panels, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".panel").length`))
		must(t, err)
		if panels != len(d.Panels) {
			t.Fatalf("the page shows %d panels, the dashboard has %d", panels, len(d.Panels))
		}
		screenshot(t, ctx, "dashboard.png")
	})
}

// waitUpstreamBack calls echo until the restarted upstream answers.
func waitUpstreamBack(t *testing.T, c interface {
	CallTool(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error)
}) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = "fake__echo", map[string]any{"text": "back?"}
		if res, err := c.CallTool(t.Context(), req); err == nil && !res.IsError {
			return
		}
	}
	t.Fatal("the crashed upstream did not come back within 30s")
}

// scrapeStore holds scraped samples as a Prometheus storage: enough for
// the PromQL engine to evaluate queries over them.
type scrapeStore struct {
	series map[string]*scrapedSeries
}

type scrapedSeries struct {
	lset   labels.Labels
	ts     []int64
	values []float64
}

// add appends one scrape at time at, flattening histograms and summaries
// into their _bucket/_sum/_count (and quantile) series as Prometheus does.
func (s *scrapeStore) add(fams map[string]*dto.MetricFamily, at time.Time) {
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			base := map[string]string{}
			for _, l := range m.GetLabel() {
				base[l.GetName()] = l.GetValue()
			}
			put := func(name string, v float64, extra ...string) {
				lm := maps.Clone(base)
				lm["__name__"] = name
				for i := 0; i+1 < len(extra); i += 2 {
					lm[extra[i]] = extra[i+1]
				}
				s.append(labels.FromMap(lm), at.UnixMilli(), v)
			}
			switch {
			case m.Counter != nil:
				put(name, m.Counter.GetValue())
			case m.Gauge != nil:
				put(name, m.Gauge.GetValue())
			case m.Untyped != nil:
				put(name, m.Untyped.GetValue())
			case m.Histogram != nil:
				h := m.Histogram
				for _, b := range h.GetBucket() {
					put(name+"_bucket", float64(b.GetCumulativeCount()), "le", fmt.Sprint(b.GetUpperBound()))
				}
				put(name+"_bucket", float64(h.GetSampleCount()), "le", "+Inf")
				put(name+"_sum", h.GetSampleSum())
				put(name+"_count", float64(h.GetSampleCount()))
			case m.Summary != nil:
				for _, q := range m.Summary.GetQuantile() {
					put(name, q.GetValue(), "quantile", fmt.Sprint(q.GetQuantile()))
				}
				put(name+"_sum", m.Summary.GetSampleSum())
				put(name+"_count", float64(m.Summary.GetSampleCount()))
			}
		}
	}
}

func (s *scrapeStore) append(lset labels.Labels, t int64, v float64) {
	k := lset.String()
	ss := s.series[k]
	if ss == nil {
		ss = &scrapedSeries{lset: lset}
		s.series[k] = ss
	}
	ss.ts, ss.values = append(ss.ts, t), append(ss.values, v)
}

// Querier implements storage.Queryable.
func (s *scrapeStore) Querier(mint, maxt int64) (storage.Querier, error) {
	return &scrapeQuerier{s: s, mint: mint, maxt: maxt}, nil
}

type scrapeQuerier struct {
	s          *scrapeStore
	mint, maxt int64
}

func (q *scrapeQuerier) Select(_ context.Context, sortSeries bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	var out []storage.Series
	var keys []string
	for k := range q.s.series {
		keys = append(keys, k)
	}
	slices.Sort(keys)
next:
	for _, k := range keys {
		ss := q.s.series[k]
		for _, m := range ms {
			if !m.Matches(ss.lset.Get(m.Name)) {
				continue next
			}
		}
		var samples []chunks.Sample
		for i, t := range ss.ts {
			if t >= q.mint && t <= q.maxt {
				samples = append(samples, fsample{t: t, f: ss.values[i]})
			}
		}
		if len(samples) > 0 {
			out = append(out, storage.NewListSeries(ss.lset, samples))
		}
	}
	_ = sortSeries // keys are sorted by their labels already
	return &sliceSeriesSet{series: out, i: -1}
}

// fsample is one float sample (chunks.Sample).
type fsample struct {
	t int64
	f float64
}

func (s fsample) T() int64                      { return s.t }
func (s fsample) ST() int64                     { return 0 }
func (s fsample) F() float64                    { return s.f }
func (s fsample) H() *histogram.Histogram       { return nil }
func (s fsample) FH() *histogram.FloatHistogram { return nil }
func (s fsample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s fsample) Copy() chunks.Sample           { return s }

func (q *scrapeQuerier) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (q *scrapeQuerier) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (q *scrapeQuerier) Close() error { return nil }

type sliceSeriesSet struct {
	series []storage.Series
	i      int
}

func (s *sliceSeriesSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *sliceSeriesSet) At() storage.Series                { return s.series[s.i] }
func (s *sliceSeriesSet) Err() error                        { return nil }
func (s *sliceSeriesSet) Warnings() annotations.Annotations { return nil }

// dashboard is the part of Grafana's dashboard JSON that is drawn here.
type dashboard struct {
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	GridPos struct {
		X, Y, W, H int
	} `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`

	lines []line
}

type line struct {
	name   string
	points []promql.FPoint
}

func (d *dashboard) panel(title string) *panel {
	for i := range d.Panels {
		if d.Panels[i].Title == title {
			return &d.Panels[i]
		}
	}
	return nil
}

// last is the panel's first series' value at the end of the range.
func (p *panel) last() (float64, bool) {
	if len(p.lines) == 0 || len(p.lines[0].points) == 0 {
		return 0, false
	}
	pts := p.lines[0].points
	return pts[len(pts)-1].F, true
}

// legend fills Grafana's {{label}} placeholders from the series' labels.
func legend(format string, l labels.Labels) string {
	if format == "" {
		return l.String()
	}
	out := format
	l.Range(func(lb labels.Label) { out = strings.ReplaceAll(out, "{{"+lb.Name+"}}", lb.Value) })
	return legendPlaceholder.ReplaceAllString(out, "") // a label the series lacks is empty, as in Grafana
}

var legendPlaceholder = regexp.MustCompile(`\{\{\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\}\}`)

var palette = []string{"#73bf69", "#f2cc0c", "#5794f2", "#ff7383", "#b877d9", "#ff9830", "#8ab8ff", "#96d98d", "#ffb357", "#ca95e5"}

// render draws the dashboard as Grafana lays it out: a 24-column grid,
// each row unit 30 px; stat panels as their last value, time series as
// lines, tables as rows. Every text from the metrics is escaped.
func (d *dashboard) render(start, end time.Time) string {
	const colW, rowH = 56, 30
	var b strings.Builder
	fmt.Fprintf(&b, `<!doctype html><html><head><meta charset="utf-8"><title>%s</title><style>
body{margin:0;background:#111217;color:#ccccdc;font:12px Inter,Helvetica,Arial,sans-serif}
h1{font-size:16px;font-weight:500;margin:0;padding:10px 12px}
#dashboard{position:relative;height:%dpx;margin:0 8px}
.panel{position:absolute;box-sizing:border-box;background:#181b1f;border:1px solid #2c3235;border-radius:2px;padding:6px 8px;overflow:hidden}
.panel h2{font-size:12px;font-weight:500;margin:0 0 4px}
.stat{font-size:30px;font-weight:600;color:#73bf69;text-align:center;margin-top:6px}
.legend span{margin-right:10px;white-space:nowrap} .legend i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
table{border-collapse:collapse;width:100%%} td,th{border-bottom:1px solid #2c3235;padding:3px 6px;text-align:left}
</style></head><body><h1>%s <small>— %s to %s, rendered by TestE2EDashboardRendered from a live mediator's /metrics</small></h1>`,
		html.EscapeString(d.Title), d.height()*rowH, html.EscapeString(d.Title), start.UTC().Format("15:04:05"), end.UTC().Format("15:04:05 MST"))
	b.WriteString(`<div id="dashboard">`)
	for _, p := range d.Panels {
		x, y, w, h := p.GridPos.X*colW, p.GridPos.Y*rowH, p.GridPos.W*colW-6, p.GridPos.H*rowH-6
		fmt.Fprintf(&b, `<div class="panel" style="left:%dpx;top:%dpx;width:%dpx;height:%dpx"><h2>%s</h2>`, x, y, w, h, html.EscapeString(p.Title))
		switch p.Type {
		case "stat":
			v, _ := p.last()
			fmt.Fprintf(&b, `<div class="stat">%s</div>`, html.EscapeString(formatValue(v, p.FieldConfig.Defaults.Unit)))
		case "table":
			b.WriteString(`<table><tr><th>series</th><th>value</th></tr>`)
			for _, l := range p.lines {
				v := l.points[len(l.points)-1].F
				fmt.Fprintf(&b, `<tr><td>%s</td><td>%s</td></tr>`, html.EscapeString(l.name), html.EscapeString(formatValue(v, "")))
			}
			b.WriteString(`</table>`)
		default:
			b.WriteString(timeSeriesSVG(p, w-16, h-56, start, end))
			b.WriteString(`<div class="legend">`)
			for i, l := range p.lines {
				fmt.Fprintf(&b, `<span><i style="background:%s"></i>%s</span>`, palette[i%len(palette)], html.EscapeString(l.name))
			}
			b.WriteString(`</div>`)
		}
		b.WriteString(`</div>`)
	}
	b.WriteString(`</div></body></html>`)
	return b.String()
}

func (d *dashboard) height() int {
	h := 0
	for _, p := range d.Panels {
		h = max(h, p.GridPos.Y+p.GridPos.H)
	}
	return h
}

// timeSeriesSVG draws a panel's lines over [start, end] with a y axis
// from 0 to the largest value.
func timeSeriesSVG(p panel, w, h int, start, end time.Time) string {
	const left = 80
	top := 0.0
	for _, l := range p.lines {
		for _, pt := range l.points {
			if !math.IsNaN(pt.F) && !math.IsInf(pt.F, 0) {
				top = max(top, pt.F)
			}
		}
	}
	if top == 0 {
		top = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`, w, h)
	const pad = 8 // room above the top tick's label
	plotH := float64(h - 14 - pad)
	for i := 0; i <= 4; i++ {
		y := pad + plotH*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#2c3235"/><text x="%d" y="%.1f" fill="#8e8e8e" font-size="10" text-anchor="end">%s</text>`,
			left, w, y, y, left-4, y+3, html.EscapeString(formatValue(top*float64(4-i)/4, p.FieldConfig.Defaults.Unit)))
	}
	span := float64(end.Sub(start).Milliseconds())
	for i, l := range p.lines {
		var pts []string
		for _, pt := range l.points {
			if math.IsNaN(pt.F) || math.IsInf(pt.F, 0) {
				continue
			}
			x := left + float64(w-left)*float64(pt.T-start.UnixMilli())/span
			y := pad + plotH*(1-pt.F/top)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>`, palette[i%len(palette)], strings.Join(pts, " "))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#8e8e8e" font-size="10">%s</text><text x="%d" y="%d" fill="#8e8e8e" font-size="10" text-anchor="end">%s</text></svg>`,
		left, h-1, start.UTC().Format("15:04"), w, h-1, end.UTC().Format("15:04"))
	return b.String()
}

// formatValue writes v in Grafana's units: reqps, s, or plain.
func formatValue(v float64, unit string) string {
	switch unit {
	case "reqps":
		return fmt.Sprintf("%.3g req/s", v)
	case "s":
		switch {
		case v == 0:
			return "0 s"
		case v < 1e-3:
			return fmt.Sprintf("%.3g µs", v*1e6)
		case v < 1:
			return fmt.Sprintf("%.3g ms", v*1e3)
		}
		return fmt.Sprintf("%.3g s", v)
	}
	return fmt.Sprintf("%.4g", v)
}
