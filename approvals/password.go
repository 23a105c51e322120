package approvals

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Password rules.
const (
	MinPasswordLen = 10
	// bcrypt reads at most 72 bytes; longer passwords are refused rather
	// than silently cut.
	MaxPasswordLen = 72
	bcryptCost     = 12
)

// ErrWeakPassword: the password is too short or too long.
var ErrWeakPassword = errors.New("unusable password")

// HashPassword returns a bcrypt hash of pw.
func HashPassword(pw string) (string, error) {
	if len(pw) < MinPasswordLen || len(pw) > MaxPasswordLen {
		return "", fmt.Errorf("%w: use %d to %d bytes", ErrWeakPassword, MinPasswordLen, MaxPasswordLen)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcryptCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword reports whether pw matches hash, in time independent of
// where they differ.
func CheckPassword(hash, pw string) bool {
	if len(pw) > MaxPasswordLen {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// dummyHash is compared against when an account does not exist, so that a
// wrong name costs as long as a wrong password.
// It is made on first use, not at start-up.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("not-a-real-password"), bcryptCost)
	return h
})

// CheckNoAccount spends the time of one password check.
func CheckNoAccount(pw string) { _ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(pw)) }
