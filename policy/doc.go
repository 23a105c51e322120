// Package policy decides who may do what: it implements mediator.Authorizer
// with Casbin and mediator.Authenticator for identities taken from config.
// It is the only package that imports Casbin.
//
// The foundation model is deliberately plain: (subject, kind, object glob)
// → allow | deny, with each policy line naming its rule. The mediator asks
// once for "agent:<id>" and once per "role:<role>"; any matching deny wins,
// then any matching allow; no match is a denial. Policy text is parsed by
// this package (encoding/csv, strictly) before Casbin sees it, so a
// malformed line is an error naming file and line instead of a line Casbin
// silently drops.
package policy
