package domain

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes. They are stable: clients map on them. Every code is here,
// the API's own included, and in Codes below, which gives each its HTTP
// status and meaning: the one list the API's status table, its OpenAPI
// document, the console's messages and the tests read.
const (
	ECONFLICT            = "conflict"
	EINTERNAL            = "internal"
	EINVALID             = "invalid"
	ENOTFOUND            = "not_found"
	EFORBIDDEN           = "forbidden"
	EUNAUTHENTICATED     = "unauthenticated"
	EINSUFFICIENTFUNDS   = "insufficient_funds"
	ESEGREGATION         = "segregation_of_duties"
	ECAPEXCEEDED         = "cap_exceeded"
	EENTITLEMENT         = "entitlement_exhausted"
	ESCHEDULE            = "schedule_mismatch"
	ENOTDUE              = "installment_not_due"
	ENOTICEPENDING       = "notice_pending"
	EWRONGVERSION        = "wrong_version"
	EIDEMPOTENCYMISMATCH = "idempotency_mismatch"
	ENOTRESERVED         = "not_reserved"
	EYEARCLOSED          = "year_closed"
	ENOTELIGIBLE         = "not_eligible"
	EEXCEEDSCOMMITMENT   = "exceeds_commitment"
	EEXCEEDSTARGET       = "exceeds_target"
	EEXCEEDSAPPROVED     = "exceeds_approved"
	EDATEFUTURE          = "effective_date_in_future"
	EDATEBEFORESTREAM    = "effective_date_before_stream"
	EBACKDATE            = "backdate_window"

	// The API's own: what goes wrong with a request before it reaches
	// the ledger.
	ETIMEOUT          = "timeout"
	ETOOLARGE         = "payload_too_large"
	EUNSUPPORTEDMEDIA = "unsupported_media_type"
	EMETHOD           = "method_not_allowed"
	EUNAVAILABLE      = "unavailable"
	ESLOWBODY         = "request_timeout"
	EUNKNOWNPARAM     = "unknown_parameter"
)

// CodeInfo is what an error code means and the HTTP status it answers
// with.
type CodeInfo struct {
	Code   string `json:"code"`
	Status int    `json:"status"`
	// Meaning says in a line when the code is given.
	Meaning string `json:"meaning"`
}

// Codes lists every error code, in the order above.
var Codes = []CodeInfo{
	{ECONFLICT, http.StatusConflict, "the request clashes with the current state"},
	{EINTERNAL, http.StatusInternalServerError, "a fault of ours; details only in the log"},
	{EINVALID, http.StatusBadRequest, "the request is malformed or breaks a rule of input"},
	{ENOTFOUND, http.StatusNotFound, "the named thing does not exist"},
	{EFORBIDDEN, http.StatusForbidden, "the principal's role may not do this"},
	{EUNAUTHENTICATED, http.StatusUnauthorized, "no token, or one the ledger does not know"},
	{EINSUFFICIENTFUNDS, http.StatusUnprocessableEntity, "a budget or fund is short"},
	{ESEGREGATION, http.StatusForbidden, "maker and checker would be the same person"},
	{ECAPEXCEEDED, http.StatusUnprocessableEntity, "an award above the program's cap for the tier"},
	{EENTITLEMENT, http.StatusUnprocessableEntity, "the talent has had what a program allows in a lifetime"},
	{ESCHEDULE, http.StatusUnprocessableEntity, "an award that the program's schedule cannot pay exactly"},
	{ENOTDUE, http.StatusConflict, "an installment prepared before its due date"},
	{ENOTICEPENDING, http.StatusConflict, "the public notice is too young or has an open objection"},
	{EWRONGVERSION, http.StatusConflict, "an expected version did not match"},
	{EIDEMPOTENCYMISMATCH, http.StatusConflict, "an Idempotency-Key reused with another body"},
	{ENOTRESERVED, http.StatusConflict, "a payment the budget of its release year holds no reservation for"},
	{EYEARCLOSED, http.StatusConflict, "a fiscal year closed at year end: no reserving, paying, appropriating or correcting in it"},
	{ENOTELIGIBLE, http.StatusUnprocessableEntity, "a talent the program does not cover"},
	{EEXCEEDSCOMMITMENT, http.StatusUnprocessableEntity, "capital paid in above what was committed"},
	{EEXCEEDSTARGET, http.StatusUnprocessableEntity, "commitments above the fund's target"},
	{EEXCEEDSAPPROVED, http.StatusUnprocessableEntity, "tranches above the amount approved"},
	{EDATEFUTURE, http.StatusUnprocessableEntity, "an effective date after today"},
	{EDATEBEFORESTREAM, http.StatusUnprocessableEntity, "an effective date before the latest business date already recorded on the record"},
	{EBACKDATE, http.StatusUnprocessableEntity, "an effective date beyond the backdating window"},
	{ETIMEOUT, http.StatusGatewayTimeout, "the read models did not reach a position in time: a ?min_position=, or a change recorded but not yet in force"},
	{ETOOLARGE, http.StatusRequestEntityTooLarge, "a request body above the size limit"},
	{EUNSUPPORTEDMEDIA, http.StatusUnsupportedMediaType, "a request body that is not JSON"},
	{EMETHOD, http.StatusMethodNotAllowed, "a method the path does not take"},
	{EUNAVAILABLE, http.StatusServiceUnavailable, "the server cannot answer now: starting, read-only or shedding load"},
	{ESLOWBODY, http.StatusRequestTimeout, "a request body sent too slowly"},
	{EUNKNOWNPARAM, http.StatusBadRequest, "a query parameter the endpoint does not take"},
}

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
