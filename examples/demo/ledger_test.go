package demo

import (
	"bufio"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestTransferValidate(t *testing.T) {
	valid := func() transferRequest {
		return transferRequest{FromAccount: ptr("ACME-OPS"), ToAccount: ptr("VENDOR-42"), Amount: ptr(125.5), Currency: ptr("USD")}
	}
	tests := []struct {
		name    string
		edit    func(*transferRequest)
		wantErr string // substring; "" means valid
	}{
		{name: "valid", edit: func(*transferRequest) {}},
		{name: "valid max", edit: func(r *transferRequest) { r.Amount = ptr(1e9) }},
		{name: "valid cents", edit: func(r *transferRequest) { r.Amount = ptr(0.01) }},
		{name: "valid memo", edit: func(r *transferRequest) { r.Memo = "  invoice 7  " }},
		{name: "zero", edit: func(r *transferRequest) { r.Amount = ptr(0.0) }, wantErr: "greater than 0"},
		{name: "negative", edit: func(r *transferRequest) { r.Amount = ptr(-5.0) }, wantErr: "greater than 0"},
		{name: "too large", edit: func(r *transferRequest) { r.Amount = ptr(1e9 + 1) }, wantErr: "at most"},
		{name: "NaN", edit: func(r *transferRequest) { r.Amount = ptr(math.NaN()) }, wantErr: "finite"},
		{name: "fractional cents", edit: func(r *transferRequest) { r.Amount = ptr(1.234) }, wantErr: "decimal places"},
		{name: "missing amount", edit: func(r *transferRequest) { r.Amount = nil }, wantErr: "amount is required"},
		{name: "bad currency", edit: func(r *transferRequest) { r.Currency = ptr("JPY") }, wantErr: "currency must be one of"},
		{name: "lower-case currency", edit: func(r *transferRequest) { r.Currency = ptr("usd") }, wantErr: "currency must be one of"},
		{name: "missing currency", edit: func(r *transferRequest) { r.Currency = nil }, wantErr: "currency is required"},
		{name: "empty from", edit: func(r *transferRequest) { r.FromAccount = ptr("  ") }, wantErr: "from_account must not be empty"},
		{name: "missing to", edit: func(r *transferRequest) { r.ToAccount = nil }, wantErr: "to_account is required"},
		{name: "same account", edit: func(r *transferRequest) { r.ToAccount = ptr("acme-ops") }, wantErr: "must differ"},
		{name: "long account", edit: func(r *transferRequest) { r.ToAccount = ptr(strings.Repeat("x", 65)) }, wantErr: "at most 64"},
		{name: "control chars", edit: func(r *transferRequest) { r.ToAccount = ptr("a\nb") }, wantErr: "control characters"},
		{name: "long memo", edit: func(r *transferRequest) { r.Memo = strings.Repeat("m", 281) }, wantErr: "memo must be at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid()
			tt.edit(&r)
			got, err := r.validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				if got.FromAccount == "" || got.Amount <= 0 || strings.TrimSpace(got.Memo) != got.Memo {
					t.Fatalf("validate returned %+v", got)
				}
				return
			}
			if !errors.Is(err, errInvalidTransfer) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validate: err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestLedgerRecordConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "ledger.jsonl")
	l := newLedger(path)
	const n = 50
	var wg sync.WaitGroup
	ids := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, err := l.Record(transfer{FromAccount: "A", ToAccount: "B", Amount: 1, Currency: "EUR"})
			if err != nil {
				t.Error(err)
				return
			}
			ids <- rec.ID
		}()
	}
	wg.Wait()
	close(ids)

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec transfer
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("ledger line %q: %v", sc.Text(), err)
		}
		if !strings.HasPrefix(rec.ID, transferIDPrefix) || seen[rec.ID] {
			t.Fatalf("bad or duplicate id %q", rec.ID)
		}
		seen[rec.ID] = true
	}
	if len(seen) != n {
		t.Fatalf("ledger has %d lines, want %d", len(seen), n)
	}
	for id := range ids {
		if !seen[id] {
			t.Errorf("id %s missing from ledger", id)
		}
	}
}

func TestParseFetchURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080/x", true},
		{"https://example.com/path?q=1", true},
		{"HTTPS://EXAMPLE.COM", true},
		{"file:///etc/passwd", false},
		{"ftp://example.com/file", false},
		{"gopher://example.com", false},
		{"javascript:alert(1)", false},
		{"example.com/no-scheme", false},
		{"http://", false},
		{"http:///path-only", false},
		{"http://user:pass@example.com/", false},
		{"http://example.com/" + strings.Repeat("a", maxURLLen), false},
		{"http://[::1", false},
	}
	for _, tt := range tests {
		_, err := parseFetchURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("parseFetchURL(%q) err = %v, want ok=%v", tt.url, err, tt.ok)
		}
		if err != nil && !errors.Is(err, errBadURL) {
			t.Errorf("parseFetchURL(%q) err = %v, want errBadURL", tt.url, err)
		}
	}
}

func TestCRMSearch(t *testing.T) {
	c, err := loadCRM("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() < 20 {
		t.Fatalf("sample CRM has %d customers, want at least 20", c.Len())
	}
	tests := []struct {
		query   string
		want    int
		wantErr bool
	}{
		{query: "quill", want: 1},
		{query: "  AVERY ", want: 1},
		{query: "example.org", want: 6},
		{query: "nobody-here", want: 0},
		{query: "a", wantErr: true},
		{query: strings.Repeat("q", maxQueryLen+1), wantErr: true},
	}
	for _, tt := range tests {
		got, _, err := c.Search(tt.query)
		if (err != nil) != tt.wantErr {
			t.Errorf("Search(%q) err = %v", tt.query, err)
			continue
		}
		if err == nil && len(got) != tt.want {
			t.Errorf("Search(%q) = %d matches, want %d", tt.query, len(got), tt.want)
		}
	}
	for _, cu := range c.customers {
		if !strings.Contains(cu.Email, "@example.") || !strings.Contains(cu.Phone, "-555-01") {
			t.Errorf("sample customer %s does not look fictional: %s %s", cu.ID, cu.Email, cu.Phone)
		}
	}
}

func TestLoadCRMRejectsBadData(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not-json":  "{",
		"no-email":  `[{"id":"c1","name":"N"}]`,
		"duplicate": `[{"id":"c1","name":"N","email":"a@example.com"},{"id":"c1","name":"M","email":"b@example.com"}]`,
	} {
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadCRM(path); err == nil {
			t.Errorf("loadCRM(%s) accepted bad data", name)
		}
	}
	if _, err := loadCRM(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("loadCRM accepted a missing file")
	}
}
