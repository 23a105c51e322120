package behaviour

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"
)

// Bounds of one baseline. Beyond them new names are not learned (a call
// using one is still scored as novel): an agent cannot grow its profile
// without limit.
const (
	maxTools   = 256
	maxTrans   = 1024
	maxPlaces  = 512
	maxServers = 64
	maxFanTool = 64
)

// baselineVersion is the encoding version of a stored baseline.
const baselineVersion = 1

// Baseline is what an agent normally does, learned from its calls that
// were not flagged. Every feature is a weighted count, so that a baseline
// can be merged with what another process learned (add) and can fade old
// behaviour (scale). Explainable one feature at a time:
//
//   - Places: per tool, the directories (first two segments of a path)
//     and URL hosts its arguments name;
//   - Tools, Trans: how often each catalog tool is called, and which tool
//     follows which;
//   - Rate, Burst: how many calls the agent makes in a minute, and in ten
//     seconds, at each of its calls; Pace: how long its last three calls
//     took (in 10 ms units), which tells a burst within a few calls;
//   - Hours, Days: the hour of day and the weekday of its calls;
//   - Fan: per tool, how many distinct values of its identifying arguments
//     (ids, paths, hosts) its calls of the tool saw in the last Window, at
//     each such call;
//   - Class, Risk, Destructive, Servers: what it touches and where;
//   - Result: how large its results are;
//   - Denied, Errors, OutOfScope: how often its calls are refused, fail,
//     or leave their task.
type Baseline struct {
	V int `json:"v"`
	// Calls is the weight of all learned calls (faded); Seen counts every
	// call learned, ever.
	Calls float64   `json:"calls"`
	Seen  int64     `json:"seen"`
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// Learned is set once the learning period is over; Frozen stops
	// learning altogether (an operator's choice).
	Learned bool `json:"learned,omitempty"`
	Frozen  bool `json:"frozen,omitempty"`

	Tools       map[string]float64 `json:"tools,omitempty"`
	Trans       map[string]float64 `json:"trans,omitempty"`
	Places      map[string]float64 `json:"places,omitempty"`
	Servers     map[string]float64 `json:"servers,omitempty"`
	Hours       [24]float64        `json:"hours"`
	Days        [7]float64         `json:"days"`
	Rate        hist               `json:"rate"`
	Burst       hist               `json:"burst"`
	Pace        hist               `json:"pace"`
	Fan         map[string]*hist   `json:"fan,omitempty"`
	Class       [6]float64         `json:"class"`
	Risk        [5]float64         `json:"risk"`
	Destructive float64            `json:"destructive"`
	Result      hist               `json:"result"`
	Denied      float64            `json:"denied"`
	Errors      float64            `json:"errors"`
	OutOfScope  float64            `json:"out_of_scope"`
}

func newBaseline() *Baseline {
	return &Baseline{V: baselineVersion, Tools: map[string]float64{}, Trans: map[string]float64{}, Places: map[string]float64{},
		Servers: map[string]float64{}, Fan: map[string]*hist{}}
}

// decodeBaseline reads a stored baseline. A row that does not decode, or
// holds impossible values, is an error: the engine then falls back to its
// configured trust rather than trusting a blank profile.
func decodeBaseline(data []byte) (*Baseline, error) {
	b := newBaseline()
	if err := json.Unmarshal(data, b); err != nil {
		return nil, fmt.Errorf("decode baseline: %w", err)
	}
	if b.V != baselineVersion {
		return nil, fmt.Errorf("decode baseline: encoding version %d, this build reads %d", b.V, baselineVersion)
	}
	if b.Calls < 0 || b.Seen < 0 || len(b.Tools) > maxTools*2 || len(b.Trans) > maxTrans*2 || len(b.Places) > maxPlaces*2 ||
		len(b.Servers) > maxServers*2 || len(b.Fan) > maxFanTool*2 {
		return nil, errors.New("decode baseline: counts out of range")
	}
	if b.Tools == nil {
		b.Tools = map[string]float64{}
	}
	if b.Trans == nil {
		b.Trans = map[string]float64{}
	}
	if b.Places == nil {
		b.Places = map[string]float64{}
	}
	if b.Servers == nil {
		b.Servers = map[string]float64{}
	}
	if b.Fan == nil {
		b.Fan = map[string]*hist{}
	}
	for k, h := range b.Fan {
		if h == nil {
			delete(b.Fan, k)
		}
	}
	return b, nil
}

func (b *Baseline) encode() ([]byte, error) { return json.Marshal(b) }

func (b *Baseline) clone() *Baseline {
	c := *b
	c.Tools, c.Trans, c.Servers = maps.Clone(b.Tools), maps.Clone(b.Trans), maps.Clone(b.Servers)
	c.Places = maps.Clone(b.Places)
	c.Fan = make(map[string]*hist, len(b.Fan))
	for k, h := range b.Fan {
		hc := *h
		c.Fan[k] = &hc
	}
	return &c
}

// empty reports whether b holds nothing learned.
func (b *Baseline) empty() bool { return b.Seen == 0 && b.Calls == 0 }

// merge adds what d learned to b. Flags and times combine: learned or
// frozen in either is learned or frozen.
func (b *Baseline) merge(d *Baseline) {
	b.Calls += d.Calls
	b.Seen += d.Seen
	if b.First.IsZero() || (!d.First.IsZero() && d.First.Before(b.First)) {
		b.First = d.First
	}
	if d.Last.After(b.Last) {
		b.Last = d.Last
	}
	b.Learned = b.Learned || d.Learned
	addMap(b.Tools, d.Tools, maxTools)
	addMap(b.Trans, d.Trans, maxTrans)
	addMap(b.Places, d.Places, maxPlaces)
	addMap(b.Servers, d.Servers, maxServers)
	for i := range b.Hours {
		b.Hours[i] += d.Hours[i]
	}
	for i := range b.Days {
		b.Days[i] += d.Days[i]
	}
	b.Rate.merge(&d.Rate)
	b.Burst.merge(&d.Burst)
	b.Pace.merge(&d.Pace)
	for k, h := range d.Fan {
		if cur, ok := b.Fan[k]; ok {
			cur.merge(h)
		} else if len(b.Fan) < maxFanTool {
			hc := *h
			b.Fan[k] = &hc
		}
	}
	for i := range b.Class {
		b.Class[i] += d.Class[i]
	}
	for i := range b.Risk {
		b.Risk[i] += d.Risk[i]
	}
	b.Destructive += d.Destructive
	b.Result.merge(&d.Result)
	b.Denied += d.Denied
	b.Errors += d.Errors
	b.OutOfScope += d.OutOfScope
}

func addMap(dst, src map[string]float64, limit int) {
	for k, v := range src {
		if _, ok := dst[k]; ok || len(dst) < limit {
			dst[k] += v
		}
	}
}

// fade scales every weight so that Calls is at most keep: old behaviour
// counts less and less, which is how a learned baseline adapts. Names
// whose weight fades below a thousandth of a call are forgotten.
func (b *Baseline) fade(keep float64) {
	if keep <= 0 || b.Calls <= keep {
		return
	}
	f := keep / b.Calls
	b.Calls = keep
	scaleMap(b.Tools, f)
	scaleMap(b.Trans, f)
	scaleMap(b.Places, f)
	scaleMap(b.Servers, f)
	for i := range b.Hours {
		b.Hours[i] *= f
	}
	for i := range b.Days {
		b.Days[i] *= f
	}
	b.Rate.scale(f)
	b.Burst.scale(f)
	b.Pace.scale(f)
	for _, h := range b.Fan {
		h.scale(f)
	}
	for i := range b.Class {
		b.Class[i] *= f
	}
	for i := range b.Risk {
		b.Risk[i] *= f
	}
	b.Destructive *= f
	b.Result.scale(f)
	b.Denied *= f
	b.Errors *= f
	b.OutOfScope *= f
}

func scaleMap(m map[string]float64, f float64) {
	for k, v := range m {
		if v *= f; v < 1e-3 {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
}
