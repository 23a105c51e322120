package demo

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of transfer_funds.
const (
	maxAmount        = 1e9
	maxAccountLen    = 64
	maxMemoLen       = 280
	amountDecimals   = 2
	transferIDPrefix = "txn_"
)

// currencies are the currencies transfer_funds accepts.
var currencies = []string{"USD", "EUR", "GBP"}

// errInvalidTransfer wraps every validation failure of a transfer.
var errInvalidTransfer = errors.New("invalid transfer")

// transferRequest is the input of transfer_funds. Pointers tell a missing
// field from a zero one.
type transferRequest struct {
	FromAccount *string  `json:"from_account"`
	ToAccount   *string  `json:"to_account"`
	Amount      *float64 `json:"amount"`
	Currency    *string  `json:"currency"`
	Memo        string   `json:"memo"`
}

// transfer is one ledger line.
type transfer struct {
	ID          string    `json:"id"`
	Time        time.Time `json:"time"`
	FromAccount string    `json:"from_account"`
	ToAccount   string    `json:"to_account"`
	Amount      float64   `json:"amount"`
	Currency    string    `json:"currency"`
	Memo        string    `json:"memo,omitempty"`
}

// validate checks r and returns the transfer it describes, without id or
// time.
func (r transferRequest) validate() (transfer, error) {
	var problems []string
	from, fromErr := checkAccount("from_account", r.FromAccount)
	if fromErr != "" {
		problems = append(problems, fromErr)
	}
	to, toErr := checkAccount("to_account", r.ToAccount)
	if toErr != "" {
		problems = append(problems, toErr)
	}
	if fromErr == "" && toErr == "" && strings.EqualFold(from, to) {
		problems = append(problems, "from_account and to_account must differ")
	}

	var amount float64
	switch {
	case r.Amount == nil:
		problems = append(problems, "amount is required")
	case math.IsNaN(*r.Amount) || math.IsInf(*r.Amount, 0):
		problems = append(problems, "amount must be a finite number")
	case *r.Amount <= 0:
		problems = append(problems, "amount must be greater than 0")
	case *r.Amount > maxAmount:
		problems = append(problems, fmt.Sprintf("amount must be at most %.0f", maxAmount))
	case !hasAtMostDecimals(*r.Amount, amountDecimals):
		problems = append(problems, fmt.Sprintf("amount must have at most %d decimal places", amountDecimals))
	default:
		amount = *r.Amount
	}

	var currency string
	switch {
	case r.Currency == nil || *r.Currency == "":
		problems = append(problems, "currency is required")
	case !slices.Contains(currencies, *r.Currency):
		problems = append(problems, fmt.Sprintf("currency must be one of %s", strings.Join(currencies, ", ")))
	default:
		currency = *r.Currency
	}

	memo := strings.TrimSpace(r.Memo)
	switch {
	case utf8.RuneCountInString(memo) > maxMemoLen:
		problems = append(problems, fmt.Sprintf("memo must be at most %d characters", maxMemoLen))
	case strings.IndexFunc(memo, unicode.IsControl) >= 0:
		problems = append(problems, "memo must not contain control characters")
	}

	if len(problems) > 0 {
		return transfer{}, fmt.Errorf("%w: %s", errInvalidTransfer, strings.Join(problems, "; "))
	}
	return transfer{FromAccount: from, ToAccount: to, Amount: amount, Currency: currency, Memo: memo}, nil
}

// checkAccount validates an account identifier and returns it trimmed, or a
// description of what is wrong with it.
func checkAccount(field string, v *string) (string, string) {
	if v == nil {
		return "", field + " is required"
	}
	s := strings.TrimSpace(*v)
	switch {
	case s == "":
		return "", field + " must not be empty"
	case utf8.RuneCountInString(s) > maxAccountLen:
		return "", fmt.Sprintf("%s must be at most %d characters", field, maxAccountLen)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "", field + " must not contain control characters"
	}
	return s, ""
}

// hasAtMostDecimals reports whether v has at most n decimal places, allowing
// for binary floating-point representation error.
func hasAtMostDecimals(v float64, n int) bool {
	scaled := v * math.Pow10(n)
	return math.Abs(scaled-math.Round(scaled)) < 1e-6*math.Max(1, math.Abs(scaled))
}

// ledger appends transfers to a JSON Lines file, one transfer per line.
type ledger struct {
	mu   sync.Mutex
	path string
	now  func() time.Time
}

// newLedger returns a ledger writing to path; the file and its directory are
// created on the first transfer.
func newLedger(path string) *ledger {
	return &ledger{path: path, now: time.Now}
}

// Record gives t an id and a time, appends it to the ledger file and syncs
// the file, and returns the recorded transfer.
func (l *ledger) Record(t transfer) (transfer, error) {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return transfer{}, fmt.Errorf("transfer id: %w", err)
	}
	t.ID = transferIDPrefix + hex.EncodeToString(id[:])
	t.Time = l.now().UTC().Truncate(time.Millisecond)
	line, err := json.Marshal(t)
	if err != nil {
		return transfer{}, fmt.Errorf("encode transfer: %w", err)
	}
	line = append(line, '\n')

	l.mu.Lock()
	defer l.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return transfer{}, fmt.Errorf("create ledger directory: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return transfer{}, fmt.Errorf("open ledger: %w", err)
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return transfer{}, fmt.Errorf("append to ledger: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return transfer{}, fmt.Errorf("sync ledger: %w", err)
	}
	if err := f.Close(); err != nil {
		return transfer{}, fmt.Errorf("close ledger: %w", err)
	}
	return t, nil
}
