package policy

import (
	"sync"

	"github.com/casbin/casbin/v2"
)

// Why decisions are fast
//
// Casbin evaluates the matcher once per policy line until one matches, and
// every evaluation walks an expression tree. The engine keeps that walk
// short in three ways:
//
//  1. Precomputed attributes. Everything a rule can test is computed once
//     per decision into plain structs (levels as numbers, network class,
//     business hours, weekday, normalised arguments), so matcher terms are
//     field reads and Go function calls, never parsing.
//  2. Conditions compiled once. A rule's condition is compiled when the
//     policy loads and evaluated by cond(p.name, ...) from the compiled
//     form. Casbin's eval(p.cond) would compile it again for every line on
//     every decision (~35 µs each).
//  3. A rule index. Whether a rule's subject, kind and object columns
//     cover a request depends only on the object and on which subject
//     columns name the agent (a bit mask over the policy's few distinct
//     subjects). So the candidate rules are computed once per (object,
//     mask) and policy version, and requests with the same candidates
//     share one Casbin enforcer holding only those rules, whose matcher
//     drops the subjectMatch and objectMatch terms the index answered.
//     A decision therefore evaluates cond() only for the rules that can
//     apply to it — typically a handful of the policy's lines — in
//     priority order, and stops at the first match.
//  4. Cheap calls. govaluate builds a new argument list for every function
//     call, and Casbin copies its function table on every decision; so the
//     index's matchers call condEnv(p.name, r.env), which reaches the
//     other attribute groups through r.env, instead of the five-argument
//     cond, and each enforcer registers only the functions its matcher
//     calls.
//
// The index applies when the model's matcher has
// "subjectMatch(r.sub, p.sub)" and "objectMatch(r.obj, p.kind, p.obj)" as
// top-level && terms, as the example model does, and the policy has at most
// 64 distinct subjects; otherwise every decision evaluates the full
// matcher over all rules.

// Bounds of the index: past them, objects are decided by the enforcer
// holding all rules (correct, just slower), so arbitrary resource URIs
// cannot grow memory.
const (
	maxIndexedObjects = 8192
	maxBuckets        = 256
)

type indexKey struct {
	kind, name string
	subjects   uint64
}

// ruleIndex maps requests to the enforcer of their candidate rules.
type ruleIndex struct {
	c *compiled
	// subjects are the distinct subject columns; subjectOf[i] is the
	// position of rule i's subject in them.
	subjects  []string
	subjectOf []int
	mu        sync.RWMutex
	byKey     map[indexKey]*casbin.SyncedEnforcer
	bySig     map[string]*casbin.SyncedEnforcer
}

// maxSubjects is how many distinct subject columns fit the mask.
const maxSubjects = 64

// newRuleIndex returns nil when the policy has too many distinct subjects.
func newRuleIndex(c *compiled) *ruleIndex {
	x := &ruleIndex{c: c, byKey: map[indexKey]*casbin.SyncedEnforcer{}, bySig: map[string]*casbin.SyncedEnforcer{}}
	pos := map[string]int{}
	for _, r := range c.rules {
		i, ok := pos[r.Sub]
		if !ok {
			i = len(x.subjects)
			pos[r.Sub] = i
			x.subjects = append(x.subjects, r.Sub)
		}
		x.subjectOf = append(x.subjectOf, i)
	}
	if len(x.subjects) > maxSubjects {
		return nil
	}
	return x
}

// subjectMask has bit i set when subject column i names s.
func (x *ruleIndex) subjectMask(s *Subject) uint64 {
	var m uint64
	for i, col := range x.subjects {
		if matchSubject(s, col) {
			m |= 1 << i
		}
	}
	return m
}

// enforcerFor returns the enforcer that decides requests of s about o, or
// nil when no rule covers them (Casbin, given no lines, would evaluate the
// matcher once against empty columns instead of matching nothing).
func (x *ruleIndex) enforcerFor(s *Subject, o *Object) (*casbin.SyncedEnforcer, error) {
	k := indexKey{o.Kind, o.Name, x.subjectMask(s)}
	x.mu.RLock()
	enf, ok := x.byKey[k]
	x.mu.RUnlock()
	if ok {
		return enf, nil
	}
	sig, rules := x.candidates(o, k.subjects)
	x.mu.Lock()
	defer x.mu.Unlock()
	enf, ok = x.bySig[sig]
	if !ok {
		if len(x.bySig) >= maxBuckets {
			return x.c.all, nil
		}
		if len(rules) > 0 {
			var err error
			if enf, err = x.c.enforcer(x.c.model.bucketMatcher, rules); err != nil {
				return nil, err
			}
		}
		x.bySig[sig] = enf
	}
	if len(x.byKey) < maxIndexedObjects {
		x.byKey[k] = enf
	}
	return enf, nil
}

// candidates returns the rules whose subject is in mask and whose kind and
// object glob cover o, and a signature naming that set.
func (x *ruleIndex) candidates(o *Object, mask uint64) (string, []Rule) {
	sig := make([]byte, (len(x.c.rules)+7)/8)
	var rules []Rule
	for i := range x.c.rules {
		r := &x.c.rules[i]
		if mask&(1<<x.subjectOf[i]) != 0 && matchObject(o, r.Kind, r.Obj) {
			sig[i/8] |= 1 << (i % 8)
			rules = append(rules, *r)
		}
	}
	return string(sig), rules
}
