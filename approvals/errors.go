package approvals

import "errors"

// ErrInvalidGrant: a grant's duration or pattern is unusable.
var ErrInvalidGrant = errors.New("invalid grant")
