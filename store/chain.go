package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mcp-mediator/mediator/mediator"
)

// genesisHash is the prev_hash of the first record of a chain.
const genesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// timeLayout is how record times are stored and hashed: RFC 3339 in UTC
// with exactly nine fractional digits, so that stored times sort as text.
// time.RFC3339Nano parses it.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// row is one audit record exactly as stored: one field per column. The
// chain hash is computed from a row, so that Verify can recompute it from
// what it reads.
type row struct {
	seq                                             int64
	id, time, sessionID, transport, agentID, taskID string
	method, kind, server, name, toolHash, prompt    string
	arguments, intent                               []byte // nil is NULL
	effect, rule, reason, policyVersion             string
	shadow                                          bool
	outcome, errText                                string
	result                                          []byte // nil is NULL
	truncated                                       bool
	durationUS, upstreamUS                          int64
	prevHash, hash                                  string
	// Added by migration 4; hashed only when not empty (see appendHashInput).
	reasoning       string
	promptTruncated bool
	approval        []byte // nil is NULL
	// Added by migration 5; hashed only when not empty.
	remoteAddr string
	// Added by migration 6; hashed only when not NULL.
	behaviour []byte // nil is NULL
	// Added by migration 7; hashed only when not empty.
	ref, writer string
	// Added by migration 9; hashed only when not NULL.
	scan []byte // nil is NULL
}

// formatTime renders t as stored: timeLayout, written by hand for the
// years 0 to 9999 (time.Format costs as much as redacting a record).
func formatTime(t time.Time) string {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.Format(timeLayout)
	}
	hour, min, sec := t.Clock()
	var b [35]byte
	put := func(i, v, width int) {
		for j := i + width - 1; j >= i; j-- {
			b[j] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, year, 4)
	b[4] = '-'
	put(5, int(month), 2)
	b[7] = '-'
	put(8, day, 2)
	b[10] = 'T'
	put(11, hour, 2)
	b[13] = ':'
	put(14, min, 2)
	b[16] = ':'
	put(17, sec, 2)
	b[19] = '.'
	put(20, t.Nanosecond(), 9)
	b[29] = 'Z'
	return string(b[:30])
}

// prepare turns r into a row ready for the chain: it fills a missing id
// and time, redacts Prompt, Reasoning, Error, Arguments, Result, Intent and
// Approval, and caps Arguments and Result. Seq and the hashes are left to
// the writer.
func (s *Store) prepare(r mediator.ChainRecord) (row, error) {
	w := row{
		id: r.ID, sessionID: r.SessionID, transport: r.Transport, agentID: r.AgentID,
		taskID: r.TaskID, method: r.Method, kind: string(r.Kind), server: r.Server,
		name: s.redactor.text(r.Name), toolHash: r.ToolHash, prompt: s.redactor.text(r.Prompt),
		reasoning: s.redactor.text(r.Reasoning), promptTruncated: r.PromptTruncated,
		effect: string(r.Decision.Effect), rule: r.Decision.Rule, reason: s.redactor.text(r.Decision.Reason),
		policyVersion: r.Decision.PolicyVersion, shadow: r.Decision.Shadow,
		outcome: string(r.Outcome), errText: s.redactor.text(r.Error),
		truncated: r.Truncated, durationUS: r.DurationUS, upstreamUS: r.UpstreamUS,
		remoteAddr: r.RemoteAddr, ref: r.Ref,
	}
	if r.Outcome == mediator.OutcomeForwarding {
		w.writer = s.instance
	}
	w.sanitize()
	if len(w.id) > maxIdentBytes {
		return row{}, fmt.Errorf("record id of %d bytes is longer than the %d allowed", len(w.id), maxIdentBytes)
	}
	w.truncated = w.capFields() || w.truncated
	if w.id == "" {
		w.id = mediator.NewID()
	}
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	w.time = formatTime(t)
	var cut bool
	w.arguments, cut = s.redactor.value(r.Arguments, s.maxArgBytes)
	w.truncated = w.truncated || cut
	w.result, cut = s.redactor.value(r.Result, s.maxResultBytes)
	w.truncated = w.truncated || cut
	if r.Intent != nil {
		b, err := json.Marshal(r.Intent)
		if err != nil {
			return row{}, fmt.Errorf("encode intent of record %s: %w", w.id, err)
		}
		w.intent, _ = s.redactor.value(b, 0)
	}
	if r.Approval != nil {
		b, err := json.Marshal(r.Approval)
		if err != nil {
			return row{}, fmt.Errorf("encode approval of record %s: %w", w.id, err)
		}
		w.approval, _ = s.redactor.value(b, 0)
	}
	if r.Behaviour != nil {
		b, err := json.Marshal(r.Behaviour)
		if err != nil {
			return row{}, fmt.Errorf("encode behaviour of record %s: %w", w.id, err)
		}
		w.behaviour, _ = s.redactor.value(b, 0)
	}
	if !r.Scan.Empty() {
		b, err := json.Marshal(r.Scan)
		if err != nil {
			return row{}, fmt.Errorf("encode scan report of record %s: %w", w.id, err)
		}
		w.scan, _ = s.redactor.value(b, 0)
	}
	return w, nil
}

// Caps of a record's text fields that an agent can fill: the name of a
// tool, prompt or resource it asks for (a resource URI may be long, a tool
// name is at most 128 characters by the MCP specification), its session id
// and the method, and the texts that quote them. Identifiers from a
// verified token are capped too, so that no field stores more than its cap.
const (
	maxIdentBytes = 1024
	maxTextBytes  = 4096
)

// capFields cuts the text fields to their caps, at a UTF-8 boundary and
// ending in "…", and reports whether it cut any. Prompt and reasoning are
// capped by the mediator (limits.prompt_bytes), arguments and results by
// prepare. The id is not cut (two long ids could become one): prepare
// refuses an id over the cap.
func (r *row) capFields() bool {
	cut := false
	for _, f := range []*string{&r.sessionID, &r.transport, &r.agentID, &r.taskID,
		&r.method, &r.kind, &r.server, &r.name, &r.toolHash, &r.effect, &r.rule,
		&r.policyVersion, &r.outcome, &r.remoteAddr, &r.ref, &r.writer} {
		cut = capText(f, maxIdentBytes) || cut
	}
	cut = capText(&r.reason, maxTextBytes) || cut
	cut = capText(&r.errText, maxTextBytes) || cut
	return cut
}

// capText cuts *s to at most max bytes, ending in "…", at a rune boundary.
func capText(s *string, max int) bool {
	if len(*s) <= max {
		return false
	}
	const ellipsis = "…"
	prefix, _ := mediator.CutUTF8(*s, max-len(ellipsis))
	*s = prefix + ellipsis
	return true
}

// sanitize replaces invalid UTF-8 in the text fields with U+FFFD, so that
// what is stored is exactly what is hashed and exported.
func (r *row) sanitize() {
	for _, f := range []*string{&r.id, &r.sessionID, &r.transport, &r.agentID, &r.taskID,
		&r.method, &r.kind, &r.server, &r.name, &r.toolHash, &r.prompt, &r.effect, &r.rule,
		&r.reason, &r.policyVersion, &r.outcome, &r.errText, &r.reasoning, &r.remoteAddr, &r.ref, &r.writer} {
		if !utf8.ValidString(*f) {
			*f = strings.ToValidUTF8(*f, "\uFFFD")
		}
	}
}

// chainHash returns the hash of r given r.prevHash: the lower-case hex
// SHA-256 of r.prevHash (64 ASCII hex characters) immediately followed by
// hashInput(r). buf is scratch space, returned for reuse.
func chainHash(buf []byte, r *row) (string, []byte) {
	buf = append(buf[:0], r.prevHash...)
	buf = appendHashInput(buf, r)
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:]), buf
}

// appendHashInput appends the canonical serialisation of every stored
// field of r except prev_hash and hash, as defined in the package
// documentation ("Chain format"). Keys are written in byte order. The
// fields added by migrations 4 (approval, prompt_truncated, reasoning), 5
// (remote_addr), 6 (behaviour), 7 (ref, writer) and 9 (scan) are written only when
// not empty, so that
// records stored before them, and records that do not use them, hash
// exactly as they always have.
func appendHashInput(b []byte, r *row) []byte {
	b = appendStrField(b, '{', "agent_id", r.agentID)
	if r.approval != nil {
		b = appendRawField(b, "approval", r.approval)
	}
	b = appendRawField(b, "arguments", r.arguments)
	if r.behaviour != nil {
		b = appendRawField(b, "behaviour", r.behaviour)
	}
	b = appendStrField(b, ',', "decision_effect", r.effect)
	b = appendStrField(b, ',', "decision_policy_version", r.policyVersion)
	b = appendStrField(b, ',', "decision_reason", r.reason)
	b = appendStrField(b, ',', "decision_rule", r.rule)
	b = appendBoolField(b, "decision_shadow", r.shadow)
	b = appendIntField(b, "duration_us", r.durationUS)
	b = appendStrField(b, ',', "error", r.errText)
	b = appendStrField(b, ',', "id", r.id)
	b = appendRawField(b, "intent", r.intent)
	b = appendStrField(b, ',', "kind", r.kind)
	b = appendStrField(b, ',', "method", r.method)
	b = appendStrField(b, ',', "name", r.name)
	b = appendStrField(b, ',', "outcome", r.outcome)
	b = appendStrField(b, ',', "prompt", r.prompt)
	if r.promptTruncated {
		b = appendBoolField(b, "prompt_truncated", true)
	}
	if r.reasoning != "" {
		b = appendStrField(b, ',', "reasoning", r.reasoning)
	}
	if r.remoteAddr != "" {
		b = appendStrField(b, ',', "remote_addr", r.remoteAddr)
	}
	if r.ref != "" {
		b = appendStrField(b, ',', "ref", r.ref)
	}
	b = appendRawField(b, "result", r.result)
	if r.scan != nil {
		b = appendRawField(b, "scan", r.scan)
	}
	b = appendIntField(b, "seq", r.seq)
	b = appendStrField(b, ',', "server", r.server)
	b = appendStrField(b, ',', "session_id", r.sessionID)
	b = appendStrField(b, ',', "task_id", r.taskID)
	b = appendStrField(b, ',', "time", r.time)
	b = appendStrField(b, ',', "tool_hash", r.toolHash)
	b = appendStrField(b, ',', "transport", r.transport)
	b = appendBoolField(b, "truncated", r.truncated)
	b = appendIntField(b, "upstream_us", r.upstreamUS)
	if r.writer != "" {
		b = appendStrField(b, ',', "writer", r.writer)
	}
	return append(b, '}')
}

func appendKey(b []byte, sep byte, key string) []byte {
	b = append(b, sep, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

func appendStrField(b []byte, sep byte, key, v string) []byte {
	return appendJSONString(appendKey(b, sep, key), v)
}

func appendRawField(b []byte, key string, v []byte) []byte {
	b = appendKey(b, ',', key)
	if v == nil {
		return append(b, "null"...)
	}
	return appendJSONString(b, string(v))
}

func appendBoolField(b []byte, key string, v bool) []byte {
	return strconv.AppendBool(appendKey(b, ',', key), v)
}

func appendIntField(b []byte, key string, v int64) []byte {
	return strconv.AppendInt(appendKey(b, ',', key), v, 10)
}

// record converts a stored row back into a ChainRecord.
func (r *row) record() (mediator.ChainRecord, error) {
	t, err := time.Parse(time.RFC3339Nano, r.time)
	if err != nil {
		return mediator.ChainRecord{}, fmt.Errorf("record seq %d: parse time %q: %w", r.seq, r.time, err)
	}
	c := mediator.ChainRecord{
		Seq: r.seq, ID: r.id, Time: t, SessionID: r.sessionID, Transport: r.transport,
		AgentID: r.agentID, TaskID: r.taskID, Method: r.method, Kind: mediator.Kind(r.kind),
		Server: r.server, Name: r.name, ToolHash: r.toolHash, Prompt: r.prompt,
		Reasoning: r.reasoning, PromptTruncated: r.promptTruncated, Arguments: r.arguments,
		Decision: mediator.Decision{Effect: mediator.Effect(r.effect), Rule: r.rule,
			Reason: r.reason, PolicyVersion: r.policyVersion, Shadow: r.shadow},
		Outcome: mediator.Outcome(r.outcome), Error: r.errText, Result: r.result,
		Truncated: r.truncated, DurationUS: r.durationUS, UpstreamUS: r.upstreamUS,
		PrevHash: r.prevHash, Hash: r.hash, RemoteAddr: r.remoteAddr, Ref: r.ref, Writer: r.writer,
	}
	if r.intent != nil {
		c.Intent = new(mediator.Intent)
		if err := json.Unmarshal(r.intent, c.Intent); err != nil {
			return mediator.ChainRecord{}, fmt.Errorf("record seq %d: decode intent: %w", r.seq, err)
		}
	}
	if r.approval != nil {
		c.Approval = new(mediator.ApprovalRef)
		if err := json.Unmarshal(r.approval, c.Approval); err != nil {
			return mediator.ChainRecord{}, fmt.Errorf("record seq %d: decode approval: %w", r.seq, err)
		}
	}
	if r.behaviour != nil {
		c.Behaviour = new(mediator.Behaviour)
		if err := json.Unmarshal(r.behaviour, c.Behaviour); err != nil {
			return mediator.ChainRecord{}, fmt.Errorf("record seq %d: decode behaviour: %w", r.seq, err)
		}
	}
	if r.scan != nil {
		c.Scan = new(mediator.ScanReport)
		if err := json.Unmarshal(r.scan, c.Scan); err != nil {
			return mediator.ChainRecord{}, fmt.Errorf("record seq %d: decode scan report: %w", r.seq, err)
		}
	}
	return c, nil
}
