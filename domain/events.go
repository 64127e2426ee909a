package domain

import (
	"encoding/json"
	"fmt"

	"github.com/shopspring/decimal"
)

// Event type names. They are stored with every event and never change; a Go
// type may be renamed, these may not.
const (
	TypeProgramDefined = "ProgramDefined"

	TypeBudgetAppropriated        = "BudgetAppropriated"
	TypeBudgetReserved            = "BudgetReserved"
	TypeBudgetReservationReleased = "BudgetReservationReleased"

	TypeTalentRegistered = "TalentRegistered"
	TypeTalentDeparted   = "TalentDeparted"

	TypeGrantApplied        = "GrantApplied"
	TypeGrantReviewed       = "GrantReviewed"
	TypePublicNoticeOpened  = "PublicNoticeOpened"
	TypeObjectionRaised     = "ObjectionRaised"
	TypeObjectionResolved   = "ObjectionResolved"
	TypePublicNoticeClosed  = "PublicNoticeClosed"
	TypeGrantApproved       = "GrantApproved"
	TypeGrantRejected       = "GrantRejected"
	TypePaymentPrepared     = "PaymentPrepared"
	TypePaymentApproved     = "PaymentApproved"
	TypePaymentReleased     = "PaymentReleased"
	TypePaymentFailed       = "PaymentFailed"
	TypePaymentReversed     = "PaymentReversed"
	TypeGrantTerminated     = "GrantTerminated"
	TypeClawbackAssessed    = "ClawbackAssessed"
	TypeRecoveryReceived    = "RecoveryReceived"
	TypeRecoveryWaived      = "RecoveryWaived"
	TypeIdempotencyRecorded = "IdempotencyRecorded"
)

// Event is implemented by every domain event payload.
type Event interface {
	// EventType returns the stable type name stored with the event.
	EventType() string
}

// Schedule says how an award is paid out.
type Schedule struct {
	// Percentages, summing to 100, pay the award in len(Percentages)
	// installments IntervalMonths apart, the first at approval.
	Percentages    []decimal.Decimal `json:"percentages,omitempty"`
	IntervalMonths int               `json:"interval_months,omitempty"`
	// MonthlyAmount × Months pays a fixed amount every month.
	MonthlyAmount *Money `json:"monthly_amount,omitempty"`
	Months        int    `json:"months,omitempty"`
}

// ProgramDefined creates a subsidy program.
type ProgramDefined struct {
	ProgramID string `json:"program_id"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	// Caps is the largest award per talent tier; a tier without a cap is not
	// eligible.
	Caps     map[string]Money `json:"caps"`
	Schedule Schedule         `json:"schedule"`
	// ServiceMonths is how long the talent must stay; 0 for none.
	ServiceMonths int `json:"service_months"`
	// NoticeDays is the public notice's length in working days; 0 for none.
	NoticeDays int `json:"notice_days"`
	// PermitCategories, when set, limits eligibility to these categories.
	PermitCategories []string `json:"permit_categories,omitempty"`
	// DeductKinds lists program kinds whose payments to the same talent are
	// deducted from an award of this program (no stacking).
	DeductKinds []string `json:"deduct_kinds,omitempty"`
	// FundingSource is "treasury" or "fund:<id>" for special-fund grants.
	FundingSource string `json:"funding_source"`
	// Entitlement is what one talent may receive in a lifetime.
	Entitlement Entitlement `json:"entitlement,omitzero"`
}

// BudgetAppropriated adds money to a program's budget for a fiscal year.
type BudgetAppropriated struct {
	ProgramID     string `json:"program_id"`
	FiscalYear    int    `json:"fiscal_year"`
	Amount        Money  `json:"amount"`
	FundingSource string `json:"funding_source"`
}

// BudgetReserved encumbers a grant's award in a budget. It carries the whole
// approval so that an approval interrupted after this event can be completed.
type BudgetReserved struct {
	ProgramID  string        `json:"program_id"`
	FiscalYear int           `json:"fiscal_year"`
	GrantID    string        `json:"grant_id"`
	TalentID   string        `json:"talent_id"`
	Amount     Money         `json:"amount"`
	CommandID  string        `json:"command_id"`
	Approval   GrantApproved `json:"approval"`
}

// BudgetReservationReleased returns an unspent reservation to the budget.
type BudgetReservationReleased struct {
	ProgramID  string `json:"program_id"`
	FiscalYear int    `json:"fiscal_year"`
	GrantID    string `json:"grant_id"`
	TalentID   string `json:"talent_id"`
	Amount     Money  `json:"amount"`
	Reason     string `json:"reason"`
	// Uncovered marks the release of a forward commitment the year had
	// not covered.
	Uncovered bool `json:"uncovered,omitempty"`
}

// TalentRegistered records a talent.
type TalentRegistered struct {
	TalentID string `json:"talent_id"`
	Name     string `json:"name"`
	// PermitCategory is the foreign work permit category ("A", "B", "C"),
	// or "permanent_resident", or "" for none.
	PermitCategory string `json:"permit_category,omitempty"`
	// Tier is the local talent tier, "A" to "E".
	Tier             string `json:"tier"`
	Employer         string `json:"employer"`
	OverseasEngineer bool   `json:"overseas_engineer,omitempty"`
	RegisteredOn     string `json:"registered_on"`
}

// TalentDeparted records that a talent left local employment.
type TalentDeparted struct {
	TalentID      string `json:"talent_id"`
	DepartureDate string `json:"departure_date"`
}

// GrantApplied opens a grant: an application by a talent under a program.
type GrantApplied struct {
	GrantID         string `json:"grant_id"`
	TalentID        string `json:"talent_id"`
	ProgramID       string `json:"program_id"`
	AmountRequested Money  `json:"amount_requested"`
	AppliedOn       string `json:"applied_on"`
}

// GrantReviewed records the talent office's review.
type GrantReviewed struct {
	GrantID  string `json:"grant_id"`
	Decision string `json:"decision"` // "approve" or "reject"
	Note     string `json:"note,omitempty"`
}

// PublicNoticeOpened starts the public notice (公示).
type PublicNoticeOpened struct {
	GrantID  string `json:"grant_id"`
	OpenedOn string `json:"opened_on"`
}

// ObjectionRaised records an objection during the public notice.
type ObjectionRaised struct {
	GrantID     string `json:"grant_id"`
	ObjectionID string `json:"objection_id"`
	Summary     string `json:"summary"`
}

// ObjectionResolved settles an objection; an upheld objection bars approval.
type ObjectionResolved struct {
	GrantID     string `json:"grant_id"`
	ObjectionID string `json:"objection_id"`
	Upheld      bool   `json:"upheld"`
	Resolution  string `json:"resolution"`
}

// PublicNoticeClosed ends the public notice.
type PublicNoticeClosed struct {
	GrantID  string `json:"grant_id"`
	ClosedOn string `json:"closed_on"`
}

// Installment is one scheduled payout of an award.
type Installment struct {
	N       int    `json:"n"`
	Amount  Money  `json:"amount"`
	DueDate string `json:"due_date"`
}

// GrantApproved awards a grant. The share of the fiscal year of approval
// is reserved in its budget; the shares of later years are forward
// commitments on theirs.
type GrantApproved struct {
	GrantID   string `json:"grant_id"`
	TalentID  string `json:"talent_id"`
	ProgramID string `json:"program_id"`
	// Award is what was approved before deductions; Amount is what is paid
	// (Award − Deduction) and reserved.
	Award        Money         `json:"award"`
	Deduction    Money         `json:"deduction"`
	DeductedFrom []string      `json:"deducted_from,omitempty"`
	Amount       Money         `json:"amount"`
	FiscalYear   int           `json:"fiscal_year"`
	Installments []Installment `json:"installments"`
	// Years splits Amount by the fiscal year each installment is charged
	// to, FiscalYear's (reserved at approval) first, then the forward
	// commitments.
	Years         []YearShare `json:"years,omitempty"`
	ServiceMonths int         `json:"service_months"`
	ServiceStart  string      `json:"service_start"`
	ApprovedOn    string      `json:"approved_on"`
	CommandID     string      `json:"command_id"`
}

// GrantRejected refuses a grant.
type GrantRejected struct {
	GrantID string `json:"grant_id"`
	Reason  string `json:"reason"`
}

// PaymentPrepared enters a payment of one installment (the maker's step).
type PaymentPrepared struct {
	GrantID     string `json:"grant_id"`
	PaymentID   string `json:"payment_id"`
	Installment int    `json:"installment"`
	Amount      Money  `json:"amount"`
}

// PaymentApproved is the checker's approval of a prepared payment.
type PaymentApproved struct {
	GrantID   string `json:"grant_id"`
	PaymentID string `json:"payment_id"`
}

// PaymentReleased records that the bank paid the talent. Its fields make the
// event's postings self-contained.
type PaymentReleased struct {
	GrantID       string `json:"grant_id"`
	PaymentID     string `json:"payment_id"`
	Installment   int    `json:"installment"`
	TalentID      string `json:"talent_id"`
	ProgramID     string `json:"program_id"`
	FiscalYear    int    `json:"fiscal_year"`
	Amount        Money  `json:"amount"`
	BankReference string `json:"bank_reference"`
	ReleasedOn    string `json:"released_on"`
}

// PaymentFailed records that the bank did not pay; the installment may be
// prepared again.
type PaymentFailed struct {
	GrantID   string `json:"grant_id"`
	PaymentID string `json:"payment_id"`
	Reason    string `json:"reason"`
}

// PaymentReversed corrects a released payment: the money is back in the
// reservation and the installment may be paid again.
type PaymentReversed struct {
	GrantID     string `json:"grant_id"`
	PaymentID   string `json:"payment_id"`
	Installment int    `json:"installment"`
	TalentID    string `json:"talent_id"`
	ProgramID   string `json:"program_id"`
	FiscalYear  int    `json:"fiscal_year"`
	Amount      Money  `json:"amount"`
	Reason      string `json:"reason"`
}

// GrantTerminated ends a grant early: the installments not yet paid are
// cancelled and their reservation is released.
type GrantTerminated struct {
	GrantID        string `json:"grant_id"`
	TalentID       string `json:"talent_id"`
	ProgramID      string `json:"program_id"`
	FiscalYear     int    `json:"fiscal_year"`
	DepartureDate  string `json:"departure_date"`
	MonthsServed   int    `json:"months_served"`
	MonthsRequired int    `json:"months_required"`
	Paid           Money  `json:"paid"`
	Cancelled      []int  `json:"cancelled_installments"`
	Released       Money  `json:"released"`
	// Releases splits Released by the fiscal year it was reserved or
	// committed in; absent when all of it lies in FiscalYear.
	Releases  []YearShare `json:"releases"`
	CommandID string      `json:"command_id"`
}

// ClawbackAssessed sets what the talent owes back:
// max(0, paid − amount × served ÷ required).
type ClawbackAssessed struct {
	GrantID    string `json:"grant_id"`
	TalentID   string `json:"talent_id"`
	FiscalYear int    `json:"fiscal_year"`
	Amount     Money  `json:"amount"`
	Formula    string `json:"formula"`
}

// RecoveryReceived records money paid back against a clawback.
type RecoveryReceived struct {
	GrantID       string `json:"grant_id"`
	TalentID      string `json:"talent_id"`
	FiscalYear    int    `json:"fiscal_year"`
	Amount        Money  `json:"amount"`
	BankReference string `json:"bank_reference"`
}

// RecoveryWaived forgives (part of) a clawback.
type RecoveryWaived struct {
	GrantID    string `json:"grant_id"`
	TalentID   string `json:"talent_id"`
	FiscalYear int    `json:"fiscal_year"`
	Amount     Money  `json:"amount"`
	Reason     string `json:"reason"`
}

// IdempotencyRecorded keeps the first answer to a command sent with an
// Idempotency-Key, so that a retry gets the same answer.
type IdempotencyRecorded struct {
	Key         string          `json:"key"`
	RequestHash string          `json:"request_hash"`
	Status      int             `json:"status"`
	Response    json.RawMessage `json:"response"`
}

func (ProgramDefined) EventType() string            { return TypeProgramDefined }
func (BudgetAppropriated) EventType() string        { return TypeBudgetAppropriated }
func (BudgetReserved) EventType() string            { return TypeBudgetReserved }
func (BudgetReservationReleased) EventType() string { return TypeBudgetReservationReleased }
func (TalentRegistered) EventType() string          { return TypeTalentRegistered }
func (TalentDeparted) EventType() string            { return TypeTalentDeparted }
func (GrantApplied) EventType() string              { return TypeGrantApplied }
func (GrantReviewed) EventType() string             { return TypeGrantReviewed }
func (PublicNoticeOpened) EventType() string        { return TypePublicNoticeOpened }
func (ObjectionRaised) EventType() string           { return TypeObjectionRaised }
func (ObjectionResolved) EventType() string         { return TypeObjectionResolved }
func (PublicNoticeClosed) EventType() string        { return TypePublicNoticeClosed }
func (GrantApproved) EventType() string             { return TypeGrantApproved }
func (GrantRejected) EventType() string             { return TypeGrantRejected }
func (PaymentPrepared) EventType() string           { return TypePaymentPrepared }
func (PaymentApproved) EventType() string           { return TypePaymentApproved }
func (PaymentReleased) EventType() string           { return TypePaymentReleased }
func (PaymentFailed) EventType() string             { return TypePaymentFailed }
func (PaymentReversed) EventType() string           { return TypePaymentReversed }
func (GrantTerminated) EventType() string           { return TypeGrantTerminated }
func (ClawbackAssessed) EventType() string          { return TypeClawbackAssessed }
func (RecoveryReceived) EventType() string          { return TypeRecoveryReceived }
func (RecoveryWaived) EventType() string            { return TypeRecoveryWaived }
func (IdempotencyRecorded) EventType() string       { return TypeIdempotencyRecorded }

// DecodeEvent turns a stored event's type and data into its payload. The
// switch is explicit: a type name maps to exactly one Go type, and an
// unknown type is an error, never a guess.
func DecodeEvent(typ string, data []byte) (Event, error) {
	if e, ok := decodeFast(typ, data); ok {
		return e, nil
	}
	var e Event
	switch typ {
	case TypeProgramDefined:
		e = &ProgramDefined{}
	case TypeBudgetAppropriated:
		e = &BudgetAppropriated{}
	case TypeBudgetReserved:
		e = &BudgetReserved{}
	case TypeBudgetReservationReleased:
		e = &BudgetReservationReleased{}
	case TypeTalentRegistered:
		e = &TalentRegistered{}
	case TypeTalentDeparted:
		e = &TalentDeparted{}
	case TypeGrantApplied:
		e = &GrantApplied{}
	case TypeGrantReviewed:
		e = &GrantReviewed{}
	case TypePublicNoticeOpened:
		e = &PublicNoticeOpened{}
	case TypeObjectionRaised:
		e = &ObjectionRaised{}
	case TypeObjectionResolved:
		e = &ObjectionResolved{}
	case TypePublicNoticeClosed:
		e = &PublicNoticeClosed{}
	case TypeGrantApproved:
		e = &GrantApproved{}
	case TypeGrantRejected:
		e = &GrantRejected{}
	case TypePaymentPrepared:
		e = &PaymentPrepared{}
	case TypePaymentApproved:
		e = &PaymentApproved{}
	case TypePaymentReleased:
		e = &PaymentReleased{}
	case TypePaymentFailed:
		e = &PaymentFailed{}
	case TypePaymentReversed:
		e = &PaymentReversed{}
	case TypeGrantTerminated:
		e = &GrantTerminated{}
	case TypeClawbackAssessed:
		e = &ClawbackAssessed{}
	case TypeRecoveryReceived:
		e = &RecoveryReceived{}
	case TypeRecoveryWaived:
		e = &RecoveryWaived{}
	case TypeIdempotencyRecorded:
		e = &IdempotencyRecorded{}
	case TypeEntitlementReserved:
		e = &EntitlementReserved{}
	case TypeEntitlementReleased:
		e = &EntitlementReleased{}
	case TypeForwardCommitted:
		e = &ForwardCommitted{}
	case TypeForwardCommitmentCovered:
		e = &ForwardCommitmentCovered{}
	case TypePaymentCharged:
		e = &PaymentCharged{}
	case TypePaymentChargeReversed:
		e = &PaymentChargeReversed{}
	case TypeYearEndCloseRequested:
		e = &YearEndCloseRequested{}
	case TypeYearEndClosed:
		e = &YearEndClosed{}
	case TypeBudgetCarriedOver:
		e = &BudgetCarriedOver{}
	case TypeBudgetAdjustmentRequested:
		e = &BudgetAdjustmentRequested{}
	case TypeBudgetAdjusted:
		e = &BudgetAdjusted{}
	case TypeBudgetTransferReceived:
		e = &BudgetTransferReceived{}
	default:
		if d, ok := extraDecoders[typ]; ok {
			e = d()
			break
		}
		return nil, fmt.Errorf("domain: unknown event type %q", typ)
	}
	if err := json.Unmarshal(data, e); err != nil {
		return nil, fmt.Errorf("domain: decode %s: %w", typ, err)
	}
	return e, nil
}

// extraDecoders holds event types registered by other files of the package
// (funds, principals), keeping DecodeEvent the single entry point.
var extraDecoders = map[string]func() Event{}
