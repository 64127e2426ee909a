package domain

import "slices"

// The state machines of grants, payments, investments and principals are
// written once, here, as functions over events: the aggregates decide
// with them and the read models show what they give, so the two can never
// disagree about the state an event leaves behind.

// GrantStateAfter returns the state a grant is in after e, an event of its
// stream, from state before it. allPaid reports whether, once e is folded,
// every installment of the grant is paid: a release that pays the last one
// completes the grant.
func GrantStateAfter(state string, e Event, allPaid bool) string {
	switch e := e.(type) {
	case *GrantApplied:
		return GrantStateApplied
	case *GrantReviewed:
		if e.Decision == "approve" {
			return GrantStateReviewed
		}
	case *PublicNoticeOpened:
		return GrantStateInNotice
	case *PublicNoticeClosed:
		return GrantStateNoticeClosed
	case *GrantApproved:
		return GrantStateApproved
	case *GrantRejected:
		return GrantStateRejected
	case *PaymentReleased:
		if allPaid {
			return GrantStateCompleted
		}
	case *PaymentReversed:
		if state == GrantStateCompleted {
			return GrantStateApproved
		}
	case *GrantTerminated:
		return GrantStateTerminated
	}
	return state
}

// PaymentStateAfter returns the state a payment is in after e, an event of
// its grant's stream that names it (or, for GrantTerminated, any of the
// grant's payments), from state before it ("" before PaymentPrepared).
func PaymentStateAfter(state string, e Event) string {
	switch e.(type) {
	case *PaymentPrepared:
		return PaymentStatePrepared
	case *PaymentApproved:
		return PaymentStateApproved
	case *PaymentReleased:
		return PaymentStateReleased
	case *PaymentFailed:
		return PaymentStateFailed
	case *PaymentReversed:
		return PaymentStateReversed
	case *GrantTerminated:
		// A termination fails the payments still being prepared; one
		// approved stays for the treasurer to release or fail.
		if state == PaymentStatePrepared {
			return PaymentStateFailed
		}
	}
	return state
}

// InvestmentStateAfter returns the state an investment of a fund is in
// after e, an event of the fund's stream that names it, from state before
// it ("" before InvestmentApproved).
func InvestmentStateAfter(state string, e Event) string {
	switch e.(type) {
	case *InvestmentApproved:
		return InvestmentApprovedState
	case *InvestmentFunded:
		return InvestmentFundedState
	case *ExitCompleted:
		return InvestmentExited
	case *WrittenOff:
		return InvestmentWrittenOff
	}
	return state
}

// PrincipalAccess is who a principal is to the ledger: whether it exists,
// its roles, the hash of the token it holds ("" for none) and whether it
// is revoked. The principal aggregate and the principals read model both
// fold it with Apply.
type PrincipalAccess struct {
	Created     bool
	Roles       []string
	TokenSHA256 string
	Revoked     bool
}

// Apply folds an event of the principal's stream. Roles is a new slice
// whenever it changes, so a copy handed out earlier keeps its roles.
func (a *PrincipalAccess) Apply(e Event) {
	switch e := e.(type) {
	case *PrincipalCreated:
		if a.Created {
			return
		}
		a.Created = true
		a.Roles = slices.Clone(e.Roles)
		// An older log: the token came with the creation.
		a.TokenSHA256 = e.TokenSHA256
	case *RoleGranted:
		if !slices.Contains(a.Roles, e.Role) {
			a.Roles = append(slices.Clone(a.Roles), e.Role)
		}
	case *RoleRevoked:
		if slices.Contains(a.Roles, e.Role) {
			a.Roles = slices.DeleteFunc(slices.Clone(a.Roles), func(r string) bool { return r == e.Role })
		}
	case *TokenRotated:
		a.TokenSHA256 = e.TokenSHA256
	case *EnrollmentRedeemed:
		a.TokenSHA256 = e.TokenSHA256
	case *PrincipalRevoked:
		a.Revoked = true
		a.TokenSHA256 = ""
	case *PrincipalRestored:
		a.Revoked = false
	case *AccessRequested:
		if e.RevokeNow {
			a.TokenSHA256 = ""
		}
	}
}
