// Package mediator holds the domain of MCP Mediator: the types every other
// package speaks (Agent, Call, Decision, ChainRecord, the catalog), the small
// interfaces the pipeline consumes (Upstreams, Authenticator, IntentChecker,
// Authorizer, Approver, Recorder), the mediation pipeline itself, and the MCP
// server that agents connect to.
//
// Imports point inward: tools, policy, approvals and store import this
// package for its types and implement its interfaces; this package imports
// none of them. cmd/mediator wires the implementations together.
//
// Every request an agent sends passes through one chain, built in
// BuildChain, in the order of DESIGN.md:
//
//	record → recover → authenticate → resolve → intent → policy → approval → forward
//
// Nothing reaches an upstream without a decision, a failure to decide is a
// denial, and every outcome (allowed, denied, failed, cancelled) ends in one
// hash-chained audit record.
package mediator
