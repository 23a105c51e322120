package demo

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"
)

// sampleCRM is the built-in customer list: fictional people, example.*
// e-mail domains and 555-01xx phone numbers.
//
//go:embed data/crm.json
var sampleCRM []byte

// Limits of lookup_customer.
const (
	minQueryLen = 2 // shorter queries would match nearly everyone
	maxQueryLen = 100
	maxMatches  = 25
)

// customer is one CRM record. Every field except ID, Country and Plan is
// personal data.
type customer struct {
	ID            string  `json:"id"`
	Name          string  `json:"name"`
	Email         string  `json:"email"`
	Phone         string  `json:"phone"`
	Country       string  `json:"country"`
	Plan          string  `json:"plan"`
	LifetimeValue float64 `json:"lifetime_value"`
}

// crm is an in-memory, read-only customer database.
type crm struct {
	customers []customer
}

// loadCRM reads customers from path, a JSON array of records, or from the
// embedded sample data when path is empty.
func loadCRM(path string) (*crm, error) {
	data := sampleCRM
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("read CRM file: %w", err)
		}
	}
	var customers []customer
	if err := json.Unmarshal(data, &customers); err != nil {
		return nil, fmt.Errorf("parse CRM data: %w", err)
	}
	seen := make(map[string]bool, len(customers))
	for i, c := range customers {
		if c.ID == "" || c.Name == "" || c.Email == "" {
			return nil, fmt.Errorf("CRM record %d: id, name and email are required", i)
		}
		if seen[c.ID] {
			return nil, fmt.Errorf("CRM record %d: duplicate id %q", i, c.ID)
		}
		seen[c.ID] = true
	}
	return &crm{customers: customers}, nil
}

// errBadQuery reports a lookup_customer query that is too short or too long.
var errBadQuery = fmt.Errorf("query must be %d to %d characters", minQueryLen, maxQueryLen)

// Search returns the customers whose name or e-mail contains query, ignoring
// case, in database order, at most maxMatches of them, and whether more
// matched.
func (c *crm) Search(query string) ([]customer, bool, error) {
	q := strings.ToLower(strings.TrimSpace(query))
	if n := utf8.RuneCountInString(q); n < minQueryLen || n > maxQueryLen {
		return nil, false, errBadQuery
	}
	matches := []customer{}
	for _, cu := range c.customers {
		if strings.Contains(strings.ToLower(cu.Name), q) || strings.Contains(strings.ToLower(cu.Email), q) {
			if len(matches) == maxMatches {
				return matches, true, nil
			}
			matches = append(matches, cu)
		}
	}
	return matches, false, nil
}

// Len returns the number of customers.
func (c *crm) Len() int { return len(c.customers) }

// crmSchemaJSON is the content of the demo://crm/schema resource.
const crmSchemaJSON = `{
  "description": "Fields of a customer record returned by lookup_customer. All records are fictional.",
  "classification": "pii",
  "fields": [
    {"name": "id",             "type": "string", "pii": false, "description": "Stable customer id, e.g. cus_0001."},
    {"name": "name",           "type": "string", "pii": true,  "description": "Full name."},
    {"name": "email",          "type": "string", "pii": true,  "description": "E-mail address."},
    {"name": "phone",          "type": "string", "pii": true,  "description": "Phone number in E.164-like form."},
    {"name": "country",        "type": "string", "pii": false, "description": "ISO 3166-1 alpha-2 country code."},
    {"name": "plan",           "type": "string", "pii": false, "description": "Subscription plan: free, starter, pro or enterprise."},
    {"name": "lifetime_value", "type": "number", "pii": false, "description": "Revenue from the customer to date, in USD. Commercially confidential."}
  ],
  "search": "lookup_customer matches a case-insensitive substring of name or email (2-100 characters) and returns at most 25 records."
}`
