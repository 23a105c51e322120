package policy

import "errors"

// Sentinel errors of the policy package.
var (
	// ErrInvalidPolicy is wrapped by every error about model, policy or
	// cases text: the policy cannot be loaded.
	ErrInvalidPolicy = errors.New("invalid policy")
	// ErrCasesFailed: the policy loaded, but its own test cases do not
	// pass, so it is not put in force.
	ErrCasesFailed = errors.New("policy test cases failed")
	// ErrInvalidInput: a value given to the package (an alert level, a
	// mode, a time, environment settings) is not one it accepts.
	ErrInvalidInput = errors.New("invalid input")
	// ErrEvaluation: a decision could not be made (a missing attribute, an
	// argument of the wrong type, a broken condition). The decision is a
	// denial with reason ReasonPolicyError.
	ErrEvaluation = errors.New("policy evaluation failed")
)

// ReasonPolicyError is the reason of every decision that failed to
// evaluate. Such a decision is always a denial.
const ReasonPolicyError = "policy error"
