package store

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mcp-mediator/mediator/mediator"
)

func TestRedactJSON(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlX2hlcmU"
	tests := []struct {
		name, in, want string
	}{
		{"bearer token",
			`{"headers":{"X-Fwd":"Bearer abcdef123456.xyz"}}`,
			`{"headers":{"X-Fwd":"Bearer [REDACTED]"}}`},
		{"authorization key",
			`{"Authorization":"Basic dXNlcjpwYXNz"}`,
			`{"Authorization":"[REDACTED]"}`},
		{"sk key in text",
			`{"cmd":"curl -H 'x-key: sk-proj-AbCdEfGhIjKlMnOpQrSt' https://api"}`,
			`{"cmd":"curl -H 'x-key: [REDACTED]' https://api"}`},
		{"password nested in arrays",
			`{"users":[{"name":"a","password":"hunter2"},[{"Password":{"x":1}}]],"n":2}`,
			`{"n":2,"users":[{"name":"a","password":"[REDACTED]"},[{"Password":"[REDACTED]"}]]}`},
		{"jwt", `["token is ` + jwt + `"]`, `["token is [REDACTED]"]`},
		{"key names",
			`{"api_key":1,"apiKey":"k","X-Api-Key":"k","access_token":"t","clientSecret":"s","db_password":"p","private_key":"k","max_tokens":100,"keyboard":"qwerty"}`,
			`{"X-Api-Key":"[REDACTED]","access_token":"[REDACTED]","apiKey":"[REDACTED]","api_key":"[REDACTED]","clientSecret":"[REDACTED]","db_password":"[REDACTED]","keyboard":"qwerty","max_tokens":100,"private_key":"[REDACTED]"}`},
		{"null secret stays null", `{"token":null}`, `{"token":null}`},
		{"cloud tokens",
			`"AKIAABCDEFGHIJKLMNOP ghp_abcdefghijklmnopqrstuvwxyz0123 xoxb-1234567890-abcdef"`,
			`"[REDACTED] [REDACTED] [REDACTED]"`},
		{"key=value in text", `"login --password=s3cr3t --user bob"`, `"login --password=[REDACTED] --user bob"`},
		{"url password", `"postgres://bob:s3cr3t@db:5432/x"`, `"postgres://bob:[REDACTED]@db:5432/x"`},
		{"escaped json in text", `{"text":"{\"token\":\"abc\"}"}`, `{"text":"{\"token\":\"[REDACTED]\"}"}`},
		{"numbers keep their text", `{"b":1.50,"a":1e3}`, `{"a":1e3,"b":1.50}`},
		{"nothing to redact", `{"path":"/tmp/x","tokens":["a"]}`, `{"path":"/tmp/x","tokens":["a"]}`},
	}
	r := newRedactor(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.json([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestRedactText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"bearer", "401 with Authorization: Bearer eyJabc.def", "401 with Authorization: Bearer [REDACTED]"},
		{"basic", "Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic [REDACTED]"},
		{"sk in error", "upstream rejected key sk-ant-0123456789abcdefXYZ", "upstream rejected key [REDACTED]"},
		{"pem", "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nend",
			"key:\n[REDACTED]\nend"},
		{"plain", "read the file /etc/hosts", "read the file /etc/hosts"},
	}
	r := newRedactor(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.text(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRedactExtraPatterns(t *testing.T) {
	r := newRedactor([]*regexp.Regexp{
		regexp.MustCompile(`ACME-[0-9]{6}`),
		regexp.MustCompile(`ssn (?P<secret>\d{3}-\d{2}-\d{4})`),
	})
	got := r.text("id ACME-123456 and ssn 123-45-6789")
	if want := "id [REDACTED] and ssn [REDACTED]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSensitiveKey(t *testing.T) {
	for key, want := range map[string]bool{
		"password": true, "PASSWORD": true, "userPassword": true, "pass": true, "passphrase": true,
		"secret": true, "client_secret": true, "token": true, "refreshToken": true, "auth-token": true,
		"api_key": true, "APIKey": true, "XApiKey": true, "x-api-key": true, "private_key": true,
		"authorization": true, "Cookie": true, "credentials": true, "signingKey": true,
		"max_tokens": false, "tokens": false, "key": false, "keyboard": false, "path": false,
		"bypass": false, "monkey": false, "name": false, "": false,
	} {
		if got := sensitiveKey(key); got != want {
			t.Errorf("sensitiveKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestRecordRedactsEverything(t *testing.T) {
	s := openTest(t, testDB(t))
	rec := testRecord("red", 1)
	rec.Arguments = json.RawMessage(`{"q":"x","password":"hunter2"}`)
	rec.Result = json.RawMessage(`{"content":[{"type":"text","text":"key sk-abcdefghijklmnopqrstuv"}]}`)
	rec.Prompt = "use token=abc123secret please"
	rec.Error = "upstream said: Bearer abcdefghijklmnop is invalid"
	rec.Intent.Reasons = []string{"mentions ghp_abcdefghijklmnopqrstuvwxyz0123"}
	if err := s.Record(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Records(t.Context(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(recs[0])
	for _, secret := range []string{"hunter2", "sk-abc", "abc123secret", "abcdefghijklmnop", "ghp_"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("stored record holds %q: %s", secret, b)
		}
	}
	mustVerify(t, s, 1)
}

func TestCaps(t *testing.T) {
	long := strings.Repeat(`{"k":"a\"b","u":"héllo\u0001"},`, 200)
	tests := []struct {
		name          string
		args, result  string
		wantTruncated bool
	}{
		{"small", `{"a":1}`, `{"b":2}`, false},
		{"long arguments", `[` + long + `1]`, `{"b":2}`, true},
		{"long result", `{"a":1}`, `[` + long + `2]`, true},
		{"long text that is not JSON", strings.Repeat("é\"", 500), "", true},
	}
	const maxArgs, maxResult = 100, 57
	s := openTest(t, testDB(t), WithMaxArgBytes(maxArgs), WithMaxResultBytes(maxResult))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := testRecord("cap", i)
			rec.Arguments, rec.Result = json.RawMessage(tt.args), json.RawMessage(tt.result)
			got := recordAndRead(t, s, rec)
			if got.Truncated != tt.wantTruncated {
				t.Errorf("Truncated = %v, want %v", got.Truncated, tt.wantTruncated)
			}
			checkCapped(t, got.Arguments, maxArgs)
			checkCapped(t, got.Result, maxResult)
		})
	}
	mustVerify(t, s, int64(len(tests)))
}

// The text fields an agent can fill are capped too: a call for a tool that
// does not exist, named with a megabyte, stores at most 1 KiB of the name.
func TestCapTextFields(t *testing.T) {
	tests := []struct {
		name          string
		edit          func(r *mediator.ChainRecord)
		check         func(r mediator.ChainRecord) string
		wantTruncated bool
	}{
		{"short fields are kept", func(*mediator.ChainRecord) {},
			func(r mediator.ChainRecord) string { return r.Name }, false},
		{"a 1 MiB tool name", func(r *mediator.ChainRecord) { r.Name = strings.Repeat("n", 1<<20) },
			func(r mediator.ChainRecord) string { return r.Name }, true},
		{"a long name of multi-byte characters is cut between characters",
			func(r *mediator.ChainRecord) { r.Name = strings.Repeat("é", 2000) },
			func(r mediator.ChainRecord) string { return r.Name }, true},
		{"a long session id", func(r *mediator.ChainRecord) { r.SessionID = strings.Repeat("s", 5000) },
			func(r mediator.ChainRecord) string { return r.SessionID }, true},
		{"a long method", func(r *mediator.ChainRecord) { r.Method = strings.Repeat("m", 5000) },
			func(r mediator.ChainRecord) string { return r.Method }, true},
		{"a long error", func(r *mediator.ChainRecord) { r.Error = strings.Repeat("e", 100_000) },
			func(r mediator.ChainRecord) string { return r.Error }, true},
	}
	s := openTest(t, testDB(t))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := testRecord("textcap", i)
			tt.edit(&rec)
			got := recordAndRead(t, s, rec)
			if got.Truncated != tt.wantTruncated {
				t.Errorf("Truncated = %v, want %v", got.Truncated, tt.wantTruncated)
			}
			v := tt.check(got)
			if !utf8.ValidString(v) {
				t.Errorf("stored field is not valid UTF-8: %q", v[len(v)-8:])
			}
			max := maxIdentBytes
			if v == got.Error {
				max = maxTextBytes
			}
			if len(v) > max {
				t.Errorf("stored field has %d bytes, cap %d", len(v), max)
			}
			if tt.wantTruncated && (!strings.HasSuffix(v, "…") || len(v) < max-8) {
				t.Errorf("a cut field should keep nearly %d bytes and end in …: %d bytes, ends %q", max, len(v), v[len(v)-8:])
			}
		})
	}
	mustVerify(t, s, int64(len(tests)))
}

// Secrets in the name an agent asked for, and in the decision's reason that
// quotes it, are redacted like those in arguments; an id longer than the
// cap is refused rather than cut (two ids must not become one).
func TestRedactNameAndReason(t *testing.T) {
	s := openTest(t, testDB(t))
	const secret = "hunter2hunter2"
	rec := testRecord("redact-name", 1)
	rec.Name = "https://admin:" + secret + "@files.internal/report.csv"
	rec.Decision.Reason = "rule reader allows resource " + rec.Name
	if got := recordAndRead(t, s, rec); strings.Contains(got.Name, secret) || strings.Contains(got.Decision.Reason, secret) ||
		!strings.Contains(got.Name, "files.internal") {
		t.Errorf("stored name %q, reason %q: want the password redacted and the rest kept", got.Name, got.Decision.Reason)
	}
	long := testRecord("redact-name", 2)
	long.ID = strings.Repeat("i", 2000)
	if err := s.Record(t.Context(), long); err == nil || !strings.Contains(err.Error(), "record id of 2000 bytes") {
		t.Errorf("a 2000-byte id: %v, want it refused", err)
	}
	mustVerify(t, s, 1)
}

// recordAndRead records rec and returns the newest record as stored.
func recordAndRead(t *testing.T, s *Store, rec mediator.ChainRecord) mediator.ChainRecord {
	t.Helper()
	if err := s.Record(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Records(t.Context(), Filter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	return recs[0]
}

func checkCapped(t *testing.T, v json.RawMessage, max int) {
	t.Helper()
	if v == nil {
		return
	}
	if !json.Valid(v) || !utf8.Valid(v) {
		t.Errorf("stored value is not valid JSON: %s", v)
	}
	if len(v) > max {
		t.Errorf("stored value has %d bytes, cap %d", len(v), max)
	}
}

func TestCapDisabled(t *testing.T) {
	s := openTest(t, testDB(t), WithMaxArgBytes(0))
	rec := testRecord("nocap", 1)
	rec.Arguments = json.RawMessage(`"` + strings.Repeat("x", 200_000) + `"`)
	if err := s.Record(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Records(t.Context(), Filter{})
	if err != nil || recs[0].Truncated || len(recs[0].Arguments) != 200_002 {
		t.Fatalf("uncapped record: truncated %v, %d bytes, %v", recs[0].Truncated, len(recs[0].Arguments), err)
	}
}

func FuzzRedactor(f *testing.F) {
	for _, seed := range []string{
		`{"password":"x","a":[{"token":{"b":1}}]}`, `"Bearer abcdefghij"`, `[1,2.50,-0,1e9]`,
		`{"u":"postgres://a:b@c"}`, `not json sk-abcdefghijklmnopqrstuv`, `{"a":"\u2028\ud800"}`, ``,
	} {
		f.Add([]byte(seed), 40)
	}
	r := newRedactor([]*regexp.Regexp{regexp.MustCompile(`(?P<secret>x+)y`)})
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		_ = r.text(string(in))
		out, err := r.json(in)
		if json.Valid(in) && err == nil && !json.Valid(out) {
			t.Fatalf("redacted valid JSON %q into invalid %q", in, out)
		}
		max = (max%1000+1000)%1000 + 2
		v, _ := r.value(in, max)
		if len(in) > 0 && (!json.Valid(v) || len(v) > max) {
			t.Fatalf("value(%q, %d) = %q: invalid or over the cap", in, max, v)
		}
	})
}

func TestRecorderInterface(t *testing.T) {
	var r mediator.Recorder = openTest(t, testDB(t))
	if err := r.Record(t.Context(), testRecord("i", 1)); err != nil {
		t.Fatal(err)
	}
}
