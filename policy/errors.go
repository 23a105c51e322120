package policy

import "errors"

// ErrInvalidPolicy is wrapped by every error about policy or model text.
var ErrInvalidPolicy = errors.New("invalid policy")
