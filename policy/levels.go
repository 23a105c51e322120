package policy

import (
	"fmt"

	"github.com/mcp-mediator/mediator/mediator"
)

// Numeric levels let a condition compare grades: "r.obj.DataClass >=
// confidential", "r.obj.Risk >= high", "r.env.Alert >= elevated". The
// names below are constants inside conditions; numbers are float64 because
// that is what the expression language compares.
const (
	levelLow      = 1
	levelMedium   = 2
	levelHigh     = 3
	levelCritical = 4

	classPublic       = 1
	classInternal     = 2
	classConfidential = 3
	classPII          = 4
	classFinancial    = 5

	// Trust levels share low, medium and high with risk; none is 0.
	trustNone = 0

	alertNormal   = 1
	alertElevated = 2
	alertIncident = 3
)

// constants are the bare names a condition may use.
var constants = map[string]float64{
	"low": levelLow, "medium": levelMedium, "high": levelHigh, "critical": levelCritical,
	"public": classPublic, "internal": classInternal, "confidential": classConfidential,
	"pii": classPII, "financial": classFinancial,
	"none":   trustNone,
	"normal": alertNormal, "elevated": alertElevated, "incident": alertIncident,
}

// riskLevel grades r. An unknown risk counts as critical: a tool nobody
// graded is treated as the worst it could be.
func riskLevel(r mediator.Risk) (float64, string) {
	switch r {
	case mediator.RiskLow:
		return levelLow, string(r)
	case mediator.RiskMedium:
		return levelMedium, string(r)
	case mediator.RiskHigh:
		return levelHigh, string(r)
	case mediator.RiskCritical:
		return levelCritical, string(r)
	}
	return levelCritical, "unknown"
}

// classLevel grades d. An unknown data class counts as financial, the most
// sensitive class, for the same reason as an unknown risk.
func classLevel(d mediator.DataClass) (float64, string) {
	switch d {
	case mediator.DataPublic:
		return classPublic, string(d)
	case mediator.DataInternal:
		return classInternal, string(d)
	case mediator.DataConfidential:
		return classConfidential, string(d)
	case mediator.DataPII:
		return classPII, string(d)
	case mediator.DataFinancial:
		return classFinancial, string(d)
	}
	return classFinancial, "unknown"
}

// AlertLevel is the security posture of the whole deployment, set by an
// operator with `mediator alert set` and seen by every decision as
// r.env.Alert.
type AlertLevel string

// The alert levels, calmest first.
const (
	AlertNormal   AlertLevel = "normal"
	AlertElevated AlertLevel = "elevated"
	AlertIncident AlertLevel = "incident"
)

// AlertSettingKey is the mediator.SettingStore key holding the alert level.
const AlertSettingKey = "alert_level"

// ParseAlertLevel accepts normal, elevated or incident.
func ParseAlertLevel(s string) (AlertLevel, error) {
	switch l := AlertLevel(s); l {
	case AlertNormal, AlertElevated, AlertIncident:
		return l, nil
	}
	return "", fmt.Errorf("%w: alert level %q: use normal, elevated or incident", ErrInvalidInput, s)
}

// rank is the level's number in conditions. An empty level is normal.
func (a AlertLevel) rank() float64 {
	switch a {
	case AlertElevated:
		return alertElevated
	case AlertIncident:
		return alertIncident
	}
	return alertNormal
}

// name is the level's name, "normal" for the empty level.
func (a AlertLevel) name() string {
	if a == "" {
		return string(AlertNormal)
	}
	return string(a)
}

// Mode says whether decisions are enforced or only recorded.
type Mode string

// The enforcement modes.
const (
	// ModeEnforce: a deny refuses the call, an approve waits for a human.
	ModeEnforce Mode = "enforce"
	// ModeShadow: every call is forwarded; the would-be decision is
	// recorded with Decision.Shadow set and counted.
	ModeShadow Mode = "shadow"
)

// ParseMode accepts enforce or shadow; "" is enforce.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return ModeEnforce, nil
	case ModeEnforce, ModeShadow:
		return m, nil
	}
	return "", fmt.Errorf("%w: mode %q: use enforce or shadow", ErrInvalidInput, s)
}
