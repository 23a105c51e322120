// Package policy decides who may do what: it implements mediator.Authorizer
// with Casbin (attribute-based, three-way: allow, deny, approve) and
// mediator.Authenticator for identities taken from config. It is the only
// package that imports Casbin.
//
// A request is turned into four groups of attributes — r.sub (the agent),
// r.obj (the tool, resource or prompt and the call's arguments), r.env
// (local time, business hours, client network, alert level) and r.intent
// (the intent check's verdict) — once per decision (BuildAttributes).
// Policy lines name a subject, a kind, an object glob, a decision, a rule
// name and an optional condition over those attributes. The Casbin model
// (examples/policy/model.conf) expands each line into columns, orders deny
// before approve before allow with the priority effect, and the engine
// reads the first matching line back with EnforceEx: its decision column is
// the decision, its name the rule every decision cites. No match is a
// denial. An allow by a rule whose condition does not read the intent's
// verdict is a denial for a call outside its declared intent
// (RuleOutOfScope). A call lacking an argument a rule reads, or sending it
// with another type than the rule compares it with, is a denial citing that
// rule with a *mediator.ArgumentError (the agent's mistake); any other
// failure to evaluate is a denial with reason "policy error" and an error.
//
// Policy text is parsed by this package strictly (ParseRules), before
// Casbin sees it: a malformed line is an error naming file and line, never
// a line silently dropped. Conditions are compiled and checked when the
// policy loads; see index.go for why decisions are fast.
//
// A policy may carry test cases (ParseCases, Engine.Test); LoadFiles runs
// them and refuses a policy that fails one, so that a reload (Watcher,
// SIGHUP) never puts a broken policy in force. Listings ask whether an
// object could ever be allowed: conditions that depend on arguments, time,
// alert level or intent do not hide it. In shadow mode (globally or per
// upstream) the would-be decision is returned with Shadow set and counted.
package policy
