package esdb

import (
	"errors"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// retryable reports whether err may be cured by a new connection: the
// server was unreachable, restarting, not the leader, or the client gave
// up on it. Answers about the request itself (a wrong expected version, a
// missing stream, a refusal) are not.
func retryable(err error) bool {
	// errors.As, not the client's FromError: errors arrive wrapped.
	var e *esdbclient.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case esdbclient.ErrorCodeWrongExpectedVersion,
			esdbclient.ErrorCodeResourceNotFound,
			esdbclient.ErrorCodeStreamDeleted,
			esdbclient.ErrorCodeAccessDenied,
			esdbclient.ErrorCodeUnauthenticated,
			esdbclient.ErrorCodeUnsupportedFeature,
			esdbclient.ErrorCodeResourceAlreadyExists,
			esdbclient.ErrorCodeParsing:
			return false
		case esdbclient.ErrorCodeUnknown:
			// The client files the statuses it does not map under
			// Unknown; look at the status itself.
			return e.Err() == nil || retryableStatus(e.Err())
		}
		return true
	}
	return retryableStatus(err)
}

// retryableStatus judges a raw gRPC error (or any other error, which gRPC
// calls Unknown).
func retryableStatus(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange,
		codes.PermissionDenied, codes.Unauthenticated, codes.Unimplemented,
		codes.NotFound, codes.AlreadyExists, codes.Canceled:
		return false
	}
	return true
}

// permanent reports whether a subscription should give up on err rather
// than resubscribe: the server refused it, and would again.
func permanent(err error) bool {
	var e *esdbclient.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case esdbclient.ErrorCodeAccessDenied, esdbclient.ErrorCodeUnauthenticated, esdbclient.ErrorCodeUnsupportedFeature:
			return true
		case esdbclient.ErrorCodeUnknown:
			if e.Err() == nil {
				return false
			}
			err = e.Err()
		default:
			return false
		}
	}
	switch status.Code(err) {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated, codes.Unimplemented:
		return true
	}
	return false
}
