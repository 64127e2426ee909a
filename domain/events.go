package domain

import (
	"encoding/json"

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

// Event is implemented by every domain event payload. A payload field
// tagged personal:"true" holds personal data; docs/events.md lists them.
type Event interface {
	// EventType returns the type's stable name. The stored type is the
	// name and, above version 1, its schema version (see schema.go).
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
	// RetentionMonths is how long a talent's personal data is kept after
	// the last movement of money of a grant of the program before it may
	// be erased; 0 for DefaultRetentionMonths.
	RetentionMonths int `json:"retention_months,omitempty"`
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
	Name     string `json:"name" personal:"true"`
	// PermitCategory is the foreign work permit category ("A", "B", "C"),
	// or "permanent_resident", or "" for none.
	PermitCategory string `json:"permit_category,omitempty"`
	// Tier is the local talent tier, "A" to "E".
	Tier             string `json:"tier"`
	Employer         string `json:"employer" personal:"true"`
	OverseasEngineer bool   `json:"overseas_engineer,omitempty"`
	RegisteredOn     string `json:"registered_on"`
	// BankAccount and BankName are where the talent's payments are sent,
	// as the bank file names them; empty when not given.
	BankAccount string `json:"bank_account,omitempty" personal:"true"`
	BankName    string `json:"bank_name,omitempty" personal:"true"`
	// IDNumber is the resident ID or passport number; DateOfBirth,
	// Phone, Email and Address are the person's. All optional.
	IDNumber    string `json:"id_number,omitempty" personal:"true"`
	DateOfBirth string `json:"date_of_birth,omitempty" personal:"true"`
	Phone       string `json:"phone,omitempty" personal:"true"`
	Email       string `json:"email,omitempty" personal:"true"`
	Address     string `json:"address,omitempty" personal:"true"`
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
	Note     string `json:"note,omitempty" personal:"true"`
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
	Summary     string `json:"summary" personal:"true"`
}

// ObjectionResolved settles an objection; an upheld objection bars approval.
type ObjectionResolved struct {
	GrantID     string `json:"grant_id"`
	ObjectionID string `json:"objection_id"`
	Upheld      bool   `json:"upheld"`
	Resolution  string `json:"resolution" personal:"true"`
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
	Reason  string `json:"reason" personal:"true"`
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
// Idempotency-Key whose events cannot carry it (its streams follow from
// its body), so that a retry gets the same answer. Logs also hold it for
// commands that now carry their request hash in their events instead.
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

// eventSchema is the one list of every event type the ledger has ever
// written: for a type name, an empty payload of its current schema version
// and that version. A type gets a case here when it is added, and keeps it
// for as long as any log may hold it; raising its version needs an
// upcaster from the previous one (see upcasters) and corpus entries (see
// docs/changing-events.md). An unknown name returns nil.
func eventSchema(name string) (Event, int) {
	switch name {
	case TypeProgramDefined:
		return &ProgramDefined{}, 1
	case TypeBudgetAppropriated:
		return &BudgetAppropriated{}, 1
	case TypeBudgetReserved:
		return &BudgetReserved{}, 1
	case TypeBudgetReservationReleased:
		return &BudgetReservationReleased{}, 1
	case TypeTalentRegistered:
		return &TalentRegistered{}, 1
	case TypeTalentDeparted:
		return &TalentDeparted{}, 1
	case TypeGrantApplied:
		return &GrantApplied{}, 1
	case TypeGrantReviewed:
		return &GrantReviewed{}, 1
	case TypePublicNoticeOpened:
		return &PublicNoticeOpened{}, 1
	case TypeObjectionRaised:
		return &ObjectionRaised{}, 1
	case TypeObjectionResolved:
		return &ObjectionResolved{}, 1
	case TypePublicNoticeClosed:
		return &PublicNoticeClosed{}, 1
	case TypeGrantApproved:
		// Version 2 adds the award's shares by fiscal year (years):
		// a version-1 approval reserved its whole award in its year.
		return &GrantApproved{}, 2
	case TypeGrantRejected:
		return &GrantRejected{}, 1
	case TypePaymentPrepared:
		return &PaymentPrepared{}, 1
	case TypePaymentApproved:
		return &PaymentApproved{}, 1
	case TypePaymentReleased:
		return &PaymentReleased{}, 1
	case TypePaymentFailed:
		return &PaymentFailed{}, 1
	case TypePaymentReversed:
		return &PaymentReversed{}, 1
	case TypeGrantTerminated:
		return &GrantTerminated{}, 1
	case TypeClawbackAssessed:
		return &ClawbackAssessed{}, 1
	case TypeRecoveryReceived:
		return &RecoveryReceived{}, 1
	case TypeRecoveryWaived:
		return &RecoveryWaived{}, 1
	case TypeIdempotencyRecorded:
		return &IdempotencyRecorded{}, 1
	case TypeBankStatementReconciled:
		return &BankStatementReconciled{}, 1
	case TypeTalentKeyCreated:
		return &TalentKeyCreated{}, 1
	case TypeTalentKeyRotated:
		return &TalentKeyRotated{}, 1
	case TypeTalentKeyDestroyed:
		return &TalentKeyDestroyed{}, 1
	case TypeTalentErasureRequested:
		return &TalentErasureRequested{}, 1
	case TypeTalentErasureApproved:
		return &TalentErasureApproved{}, 1
	case TypePersonalDataUnmasked:
		return &PersonalDataUnmasked{}, 1
	case TypeMasterKeyRotated:
		return &MasterKeyRotated{}, 1
	case TypeEntitlementReserved:
		// Version 2 adds the award's shares by fiscal year (years):
		// a version-1 approval reserved its whole award in its year.
		return &EntitlementReserved{}, 2
	case TypeEntitlementReleased:
		return &EntitlementReleased{}, 1
	case TypeForwardCommitted:
		return &ForwardCommitted{}, 1
	case TypeForwardCommitmentCovered:
		return &ForwardCommitmentCovered{}, 1
	case TypePaymentCharged:
		return &PaymentCharged{}, 1
	case TypePaymentChargeReversed:
		return &PaymentChargeReversed{}, 1
	case TypeYearEndCloseRequested:
		return &YearEndCloseRequested{}, 1
	case TypeYearEndClosed:
		return &YearEndClosed{}, 1
	case TypeBudgetCarriedOver:
		return &BudgetCarriedOver{}, 1
	case TypeBudgetAdjustmentRequested:
		return &BudgetAdjustmentRequested{}, 1
	case TypeBudgetAdjusted:
		return &BudgetAdjusted{}, 1
	case TypeBudgetTransferReceived:
		return &BudgetTransferReceived{}, 1
	case TypeFundEstablished:
		return &FundEstablished{}, 1
	case TypeCommitmentMade:
		return &CommitmentMade{}, 1
	case TypeCapitalPaidIn:
		return &CapitalPaidIn{}, 1
	case TypeInvestmentApproved:
		return &InvestmentApproved{}, 1
	case TypeInvestmentFunded:
		return &InvestmentFunded{}, 1
	case TypeValuationUpdated:
		return &ValuationUpdated{}, 1
	case TypeDistributionReceived:
		return &DistributionReceived{}, 1
	case TypeExitCompleted:
		return &ExitCompleted{}, 1
	case TypeWrittenOff:
		return &WrittenOff{}, 1
	case TypeFundAppropriated:
		return &FundAppropriated{}, 1
	case TypePrincipalCreated:
		return &PrincipalCreated{}, 1
	case TypeRoleGranted:
		return &RoleGranted{}, 1
	case TypeRoleRevoked:
		return &RoleRevoked{}, 1
	case TypeTokenRotated:
		return &TokenRotated{}, 1
	case TypePrincipalRevoked:
		return &PrincipalRevoked{}, 1
	case TypeAccessRequested:
		return &AccessRequested{}, 1
	case TypeAccessApproved:
		return &AccessApproved{}, 1
	case TypeAccessRejected:
		return &AccessRejected{}, 1
	case TypePrincipalRestored:
		return &PrincipalRestored{}, 1
	case TypeEnrollmentRedeemed:
		return &EnrollmentRedeemed{}, 1
	case TypeApartmentRegistered:
		return &ApartmentRegistered{}, 1
	case TypeApartmentApplied:
		return &ApartmentApplied{}, 1
	case TypeApartmentAllocated:
		return &ApartmentAllocated{}, 1
	case TypeApartmentVacated:
		return &ApartmentVacated{}, 1
	}
	return nil, 0
}
