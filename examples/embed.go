// Package examples ships the example policy, so that the mediator's
// embedded default runs with nothing but the binary.
package examples

import "embed"

// Policy holds policy/model.conf and policy/policy.csv.
//
//go:embed policy/model.conf policy/policy.csv
var Policy embed.FS
