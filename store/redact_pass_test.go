package store

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// The redactor canonicalises and redacts JSON in one pass. These tests
// hold it to the straightforward way: decode, walk the value redacting
// strings and secret-named members, encode canonically.

func referenceRedactJSON(r *redactor, raw []byte) ([]byte, error) {
	x, err := mediator.DecodeJSON(raw)
	if err != nil {
		return nil, err
	}
	return mediator.AppendCanonical(nil, referenceWalk(r, x)), nil
}

func referenceWalk(r *redactor, x any) any {
	switch v := x.(type) {
	case string:
		return r.text(v)
	case []any:
		for i, e := range v {
			v[i] = referenceWalk(r, e)
		}
	case map[string]any:
		for k, e := range v {
			if e != nil && sensitiveKey(k) {
				v[k] = redactedText
				continue
			}
			v[k] = referenceWalk(r, e)
		}
	}
	return x
}

var redactSeeds = []string{
	`{"password":"hunter2","nested":{"apiKey":{"x":1},"max_tokens":5,"note":"Bearer abcdefgh123"}}`,
	`["sk-abcdefghijklmnopqrstu", {"Authorization": null}, "ok"]`,
	`{"to\u212aen":"x","TOKEN":"y","k":"url https://u:pw@host/"}`, `"token=abc"`, `12`, `nope`,
	`{"a":1,"a":{"secret":"s"},"b":[{"pwd":true}]}`, "{\"\xff\":\"\xfe\"}",
}

func TestRedactJSONMatchesReference(t *testing.T) {
	r := newRedactor(nil)
	for _, s := range redactSeeds {
		checkRedactAgainstReference(t, r, []byte(s))
	}
}

func FuzzRedactJSONMatchesReference(f *testing.F) {
	for _, s := range redactSeeds {
		f.Add([]byte(s))
	}
	r := newRedactor(nil)
	f.Fuzz(func(t *testing.T, in []byte) { checkRedactAgainstReference(t, r, in) })
}

func checkRedactAgainstReference(t *testing.T, r *redactor, in []byte) {
	t.Helper()
	want, wantErr := referenceRedactJSON(r, in)
	got, err := r.json(in)
	if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
		t.Fatalf("%.100q:\n got %.200q (%v)\nwant %.200q (%v)", in, got, err, want, wantErr)
	}
}

func TestSensitiveKeyBytes(t *testing.T) {
	for _, k := range []string{"password", "db_password", "apiKey", "x-api-key", "access_token", "clientSecret",
		"Authorization", "private_key", "max_tokens", "name", "to\u212aen", "KEY", "monkey", "", "pwd", "Cookie"} {
		if got, want := sensitiveKeyBytes([]byte(k)), sensitiveKey(k); got != want {
			t.Errorf("sensitiveKeyBytes(%q) = %v, sensitiveKey = %v", k, got, want)
		}
	}
}

func TestFormatTimeMatchesLayout(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", 3600)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0), time.Now(),
	} {
		if got, want := formatTime(tm), tm.UTC().Format(timeLayout); got != want {
			t.Errorf("formatTime(%v) = %q, want %q", tm, got, want)
		}
	}
}

func TestShortTextIsNeverRedacted(t *testing.T) {
	r := newRedactor(nil)
	if r.minNeedle != 3 {
		t.Fatalf("minNeedle = %d, want 3", r.minNeedle)
	}
	withExtra := newRedactor([]*regexp.Regexp{regexp.MustCompile(`x`)})
	if withExtra.minNeedle != 0 || withExtra.text("x") != redactedText {
		t.Fatalf("a pattern without needles must see every text")
	}
}
