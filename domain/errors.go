package domain

import (
	"errors"
	"fmt"
)

// Error codes. They are stable: clients and the HTTP layer map on them.
const (
	ECONFLICT            = "conflict"              // the request clashes with the current state
	EINTERNAL            = "internal"              // a fault of ours; details only in the log
	EINVALID             = "invalid"               // the request is malformed or breaks a rule of input
	ENOTFOUND            = "not_found"             // the named thing does not exist
	EFORBIDDEN           = "forbidden"             // the principal's role may not do this
	EUNAUTHENTICATED     = "unauthenticated"       // no or an unknown token
	EINSUFFICIENTFUNDS   = "insufficient_funds"    // a budget or fund is short
	ESEGREGATION         = "segregation_of_duties" // maker and checker would be the same person
	ECAPEXCEEDED         = "cap_exceeded"          // an award above the program's cap for the tier
	EENTITLEMENT         = "entitlement_exhausted" // the talent has had what a program allows in a lifetime
	ESCHEDULE            = "schedule_mismatch"     // an award that the program's schedule cannot pay exactly
	ENOTDUE              = "installment_not_due"   // an installment prepared before its due date
	ENOTICEPENDING       = "notice_pending"        // the public notice is too young or has an open objection
	EWRONGVERSION        = "wrong_version"         // an expected version did not match
	EIDEMPOTENCYMISMATCH = "idempotency_mismatch"  // an Idempotency-Key reused with another body
)

// Error is the one error type of the domain. Code is stable and safe to show;
// Message is meant for users; Err, if set, is the underlying cause and is
// reachable through errors.Is / errors.As.
type Error struct {
	Code    string
	Message string
	Err     error
	// Field, when the error is about one input field, names it as a JSON
	// pointer into the command's body, e.g. "/reason".
	Field string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap exposes the cause, so errors.Is still sees store sentinels.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, "" for nil,
// and EINTERNAL for any other error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err, or a generic text for
// errors that are not *Error, so that internals never leak.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
