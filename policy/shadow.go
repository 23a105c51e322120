package policy

import (
	"expvar"
	"sync/atomic"

	"github.com/mcp-mediator/mediator/mediator"
)

// shadowVar publishes shadow decisions of every engine in the process as
// the expvar map "mediator_policy_shadow" (keys allow, deny, approve).
var shadowVar = expvar.NewMap("mediator_policy_shadow")

// shadowCounts counts one engine's shadow decisions by effect.
type shadowCounts struct {
	allow, deny, approve atomic.Uint64
}

func (s *shadowCounts) add(eff mediator.Effect) {
	switch eff {
	case mediator.EffectAllow:
		s.allow.Add(1)
	case mediator.EffectApprove:
		s.approve.Add(1)
	default:
		eff = mediator.EffectDeny
		s.deny.Add(1)
	}
	shadowVar.Add(string(eff), 1)
}

// ShadowCounts returns how many calls this engine decided in shadow mode,
// by the effect that enforcement would have had. Listings are not counted.
func (e *Engine) ShadowCounts() map[mediator.Effect]uint64 {
	return map[mediator.Effect]uint64{
		mediator.EffectAllow:   e.counts.allow.Load(),
		mediator.EffectDeny:    e.counts.deny.Load(),
		mediator.EffectApprove: e.counts.approve.Load(),
	}
}

// shadowed reports whether requests to server are only recorded.
func (e *Engine) shadowed(server string) bool {
	return e.mode == ModeShadow || e.shadow[server]
}

// applyMode marks a decision about a shadowed server. A call keeps its
// would-be effect, with Shadow set, and is counted (the pipeline forwards
// it and records the decision). A listing is never narrowed in shadow
// mode: hiding a tool would enforce the policy, so a would-be hidden object
// is listed, with the would-be decision in the reason.
func (e *Engine) applyMode(req mediator.AuthzRequest, d mediator.Decision) mediator.Decision {
	if !e.shadowed(req.Target.Server) {
		return d
	}
	d.Shadow = true
	if req.Listing {
		if d.Effect == mediator.EffectDeny {
			d.Effect, d.Reason = mediator.EffectAllow, "shadow mode; enforcing would hide it: "+d.Reason
		}
		return d
	}
	e.counts.add(d.Effect)
	return d
}
