package domain

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// sample is an event as the ledger writes it, in the stream it goes to.
// The golden corpus is generated from the samples (TestCorpus
// -update-corpus) and the catalogue shows their streams and postings.
type sample struct {
	stream string
	event  Event
}

// m is a sample amount.
func m(s string) Money {
	v, err := ParseMoney(s)
	if err != nil {
		panic(err)
	}
	return v
}

// samples returns one sample of every event type, in its current version.
// A new event type needs one here (TestCorpus says so).
func samples() map[string]sample {
	out := map[string]sample{}
	for _, s := range sampleList() {
		out[s.event.EventType()] = s
	}
	return out
}

// sampleList returns the samples in the catalogue's order.
func sampleList() []sample {
	approval := GrantApproved{GrantID: "g1", TalentID: "t1", ProgramID: "housing", Award: m("600000"),
		Deduction: m("0"), Amount: m("600000"), FiscalYear: 2024,
		Installments:  []Installment{{N: 1, Amount: m("240000"), DueDate: "2024-03-01"}, {N: 2, Amount: m("360000"), DueDate: "2025-03-01"}},
		ServiceMonths: 60, ServiceStart: "2024-03-01", ApprovedOn: "2024-03-01", CommandID: "c1",
		Years: []YearShare{{FiscalYear: 2024, Amount: m("240000"), Installments: []int{1}}, {FiscalYear: 2025, Amount: m("360000"), Installments: []int{2}}}}
	expires := time.Date(2024, 3, 4, 9, 0, 0, 0, time.UTC)
	list := []sample{
		{"program-housing", &ProgramDefined{ProgramID: "housing", Name: "Housing purchase subsidy", Kind: KindHousingPurchase,
			Caps:          map[string]Money{"A": m("1000000"), "B": m("600000")},
			Schedule:      Schedule{Percentages: []decimal.Decimal{decimal.RequireFromString("40"), decimal.RequireFromString("60")}, IntervalMonths: 12},
			ServiceMonths: 60, NoticeDays: 5, FundingSource: "treasury", Entitlement: Entitlement{Once: true}}},
		{"budget-housing-2024", &BudgetAppropriated{ProgramID: "housing", FiscalYear: 2024, Amount: m("50000000"), FundingSource: "treasury"}},
		{"budget-housing-2024", &BudgetReserved{ProgramID: "housing", FiscalYear: 2024, GrantID: "g1", TalentID: "t1", Amount: m("600000"), CommandID: "c1", Approval: approval}},
		{"budget-housing-2024", &BudgetReservationReleased{ProgramID: "housing", FiscalYear: 2024, GrantID: "g1", TalentID: "t1", Amount: m("360000"), Reason: "terminated"}},
		{"budget-housing-2025", &ForwardCommitted{ProgramID: "housing", FiscalYear: 2025, GrantID: "g1", TalentID: "t1", Amount: m("360000"),
			Installments: []int{2}, ApprovedIn: 2024, Covered: false, CommandID: "c1"}},
		{"budget-housing-2025", &ForwardCommitmentCovered{ProgramID: "housing", FiscalYear: 2025, GrantID: "g1", TalentID: "t1", Amount: m("360000")}},
		{"budget-housing-2024", &PaymentCharged{ProgramID: "housing", FiscalYear: 2024, GrantID: "g1", TalentID: "t1", PaymentID: "p1", Installment: 1,
			Amount: m("240000"), CommandID: "c4", Release: PaymentReleased{GrantID: "g1", PaymentID: "p1", Installment: 1, TalentID: "t1",
				ProgramID: "housing", FiscalYear: 2024, Amount: m("240000"), BankReference: "BANK-0001", ReleasedOn: "2024-03-05"}}},
		{"budget-housing-2024", &PaymentChargeReversed{ProgramID: "housing", FiscalYear: 2024, GrantID: "g1", PaymentID: "p1", Installment: 1,
			Amount: m("240000"), Reason: "paid to the wrong account", CommandID: "c5", Reversal: &PaymentReversed{GrantID: "g1", PaymentID: "p1",
				Installment: 1, TalentID: "t1", ProgramID: "housing", FiscalYear: 2024, Amount: m("240000"), Reason: "paid to the wrong account"}}},
		{"budget-housing-2024", &BudgetAdjustmentRequested{AdjustmentID: "a1", ProgramID: "housing", FiscalYear: 2024, Kind: AdjustTransfer,
			Amount: m("500000"), ToProgram: "rent", FundingSource: "treasury"}},
		{"budget-housing-2024", &BudgetAdjusted{AdjustmentID: "a1", ProgramID: "housing", FiscalYear: 2024, Kind: AdjustTransfer,
			Amount: m("500000"), ToProgram: "rent", FundingSource: "treasury", RequestedBy: "approver1", CommandID: "c6"}},
		{"budget-rent-2024", &BudgetTransferReceived{AdjustmentID: "a1", ProgramID: "rent", FiscalYear: 2024, FromProgram: "housing", Amount: m("500000")}},
		{"budget-housing-2024", &YearEndCloseRequested{ProgramID: "housing", FiscalYear: 2024,
			CarryOver: []CarryOver{{GrantID: "g1", Reason: "contract signed in December"}}, CommandID: "c7"}},
		{"budget-housing-2024", &YearEndClosed{ProgramID: "housing", FiscalYear: 2024, RequestedBy: "approver1", Reason: "year-end close",
			DocumentRef: "PHCZ-JZ-2024", CommandID: "c8",
			Carried: []YearEndItem{{GrantID: "g1", TalentID: "t1", Amount: m("240000"), Uncovered: m("0"), Installments: []int{1}, Reason: "contract signed in December"}},
			Lapsed:  []YearEndItem{{GrantID: "g2", TalentID: "t2", Amount: m("60000"), Uncovered: m("10000"), Installments: []int{1, 2}}}}},
		{"budget-housing-2025", &BudgetCarriedOver{ProgramID: "housing", FiscalYear: 2025, FromYear: 2024, GrantID: "g1", TalentID: "t1",
			Amount: m("240000"), Installments: []int{1}, Reason: "contract signed in December", DocumentRef: "PHCZ-JZ-2024", CommandID: "c8"}},
		{"talent-t1", &TalentKeyCreated{TalentID: "t1"}},
		{"talent-t1", &TalentRegistered{TalentID: "t1", Name: "Li Wei", PermitCategory: "A", Tier: "B", Employer: "Acme Semiconductors", RegisteredOn: "2024-01-10",
			IDNumber: "330482199001011234", DateOfBirth: "1990-01-01", Phone: "+86 573 8500 0000", Email: "li.wei@example.com", Address: "1 Xinhua Road, Pinghu"}},
		{"talent-t1", &TalentDeparted{TalentID: "t1", DepartureDate: "2025-06-30"}},
		{"talent-t1", &EntitlementReserved{TalentID: "t1", ProgramID: "housing", Kind: KindHousingPurchase, GrantID: "g1", Approval: approval}},
		{"talent-t1", &EntitlementReleased{TalentID: "t1", ProgramID: "housing", GrantID: "g1", Installments: []int{2}, Reason: "terminated"}},
		{"talent-t1", &PersonalDataUnmasked{TalentID: "t1", Fields: []string{"bank_account", "id_number"}}},
		{"talent-t1", &TalentErasureRequested{TalentID: "t1", RequestedOn: "2031-01-10"}},
		{"talent-t1", &TalentErasureApproved{TalentID: "t1", NotBefore: "2031-01-12"}},
		{"talent-t1", &TalentKeyRotated{TalentID: "t1", KeyID: "k0123456789abcdef01234567", Version: 2, RotatedOn: "2029-05-04"}},
		{"talent-t1", &TalentKeyDestroyed{TalentID: "t1", ErasedOn: "2031-01-12"}},
		{"keystore", &MasterKeyRotated{Keys: 530, RotatedOn: "2031-02-01"}},
		{"grant-g1", &GrantApplied{GrantID: "g1", TalentID: "t1", ProgramID: "housing", AmountRequested: m("600000"), AppliedOn: "2024-01-15"}},
		{"grant-g1", &GrantReviewed{GrantID: "g1", Decision: "approve", Note: "documents complete"}},
		{"grant-g1", &PublicNoticeOpened{GrantID: "g1", OpenedOn: "2024-02-01"}},
		{"grant-g1", &ObjectionRaised{GrantID: "g1", ObjectionID: "o1", Summary: "employment dates disputed"}},
		{"grant-g1", &ObjectionResolved{GrantID: "g1", ObjectionID: "o1", Upheld: false, Resolution: "contract on file"}},
		{"grant-g1", &PublicNoticeClosed{GrantID: "g1", ClosedOn: "2024-02-20"}},
		{"grant-g1", &approval},
		{"grant-g1", &GrantRejected{GrantID: "g1", Reason: "not eligible"}},
		{"grant-g1", &PaymentPrepared{GrantID: "g1", PaymentID: "p1", Installment: 1, Amount: m("240000")}},
		{"grant-g1", &PaymentApproved{GrantID: "g1", PaymentID: "p1"}},
		{"grant-g1", &PaymentReleased{GrantID: "g1", PaymentID: "p1", Installment: 1, TalentID: "t1", ProgramID: "housing", FiscalYear: 2024,
			Amount: m("240000"), BankReference: "BANK-0001", ReleasedOn: "2024-03-05"}},
		{"grant-g1", &PaymentFailed{GrantID: "g1", PaymentID: "p1", Reason: "account closed"}},
		{"grant-g1", &PaymentReversed{GrantID: "g1", PaymentID: "p1", Installment: 1, TalentID: "t1", ProgramID: "housing", FiscalYear: 2024,
			Amount: m("240000"), Reason: "paid to the wrong account"}},
		{"grant-g1", &GrantTerminated{GrantID: "g1", TalentID: "t1", ProgramID: "housing", FiscalYear: 2024, DepartureDate: "2025-06-30",
			MonthsServed: 15, MonthsRequired: 60, Paid: m("240000"), Cancelled: []int{2}, Released: m("360000"), CommandID: "c2"}},
		{"grant-g1", &ClawbackAssessed{GrantID: "g1", TalentID: "t1", FiscalYear: 2024, Amount: m("90000"), Formula: "max(0, 240000.00 - 600000.00 * 15 / 60)"}},
		{"grant-g1", &RecoveryReceived{GrantID: "g1", TalentID: "t1", FiscalYear: 2024, Amount: m("50000"), BankReference: "BANK-0002"}},
		{"grant-g1", &RecoveryWaived{GrantID: "g1", TalentID: "t1", FiscalYear: 2024, Amount: m("40000"), Reason: "hardship"}},
		{"statement-s1", &BankStatementReconciled{StatementID: "s1", Digest: strings.Repeat("ab", 32), Account: "ZJRCB 3301 0001",
			From: "2024-03-01", To: "2024-03-31", Matched: 1, Mismatched: 1, Unmatched: 1, Lines: []StatementLine{
				{Line: 2, ValueDate: "2024-03-05", Reference: "BANK-0001", Amount: m("-240000"), Outcome: LineMatched, Kind: MatchPayment, GrantID: "g1", PaymentID: "p1"},
				{Line: 3, ValueDate: "2024-03-06", Reference: "REC-0001", Amount: m("1000"), Outcome: LineMismatched, Kind: MatchRecovery, GrantID: "g1",
					Expected: &[]Money{m("1200")}[0], Note: "the amount differs"},
				{Line: 4, ValueDate: "2024-03-07", Reference: "UNKNOWN-1", Amount: m("-50"), Outcome: LineUnmatched}}}},
		{"idempotency-c1", &IdempotencyRecorded{Key: "k1", RequestHash: "9f86d081884c7d65", Status: 201, Response: json.RawMessage(`{"id":"g1","position":"12"}`)}},
		{"fund-f1", &FundEstablished{FundID: "f1", Name: "Talent industry fund", FundType: FundDirectInvestment, Target: m("1000000000"), TermYears: 10,
			EstablishedOn: "2024-01-02", TermEnd: "2034-01-02", Manager: "City Capital", ConcentrationLimitPct: decimal.RequireFromString("20")}},
		{"fund-f1", &CommitmentMade{FundID: "f1", LP: "City Treasury", Amount: m("500000000")}},
		{"fund-f1", &CapitalPaidIn{FundID: "f1", LP: "City Treasury", Amount: m("100000000"), PaidInOn: "2024-02-01"}},
		{"fund-f1", &InvestmentApproved{FundID: "f1", InvestmentID: "i1", CommitteeRef: "IC-2024-01", Project: "Wafer line", Company: "Acme Semiconductors",
			Sector: "semiconductors", Amount: m("50000000"), StakePct: decimal.RequireFromString("12.5"), ApprovedOn: "2024-02-10"}},
		{"fund-f1", &InvestmentFunded{FundID: "f1", InvestmentID: "i1", Tranche: 1, Amount: m("20000000"), FundedOn: "2024-02-15"}},
		{"fund-f1", &ValuationUpdated{FundID: "f1", InvestmentID: "i1", Valuation: m("26000000"), AsOf: "2024-06-30"}},
		{"fund-f1", &DistributionReceived{FundID: "f1", InvestmentID: "i1", Amount: m("1000000"), ReceivedOn: "2024-12-20"}},
		{"fund-f1", &ExitCompleted{FundID: "f1", InvestmentID: "i1", Cost: m("20000000"), Proceeds: m("31000000"), ExitedOn: "2027-05-01"}},
		{"fund-f1", &WrittenOff{FundID: "f1", InvestmentID: "i1", Amount: m("20000000"), WrittenOn: "2026-01-31"}},
		{"fund-f1", &FundAppropriated{FundID: "f1", ProgramID: "housing", FiscalYear: 2024, Amount: m("10000000"), CommandID: "c3"}},
		{"principal-clerk9", &PrincipalCreated{PrincipalID: "clerk9", Roles: []string{RoleClerk}}},
		{"principal-clerk9", &RoleGranted{PrincipalID: "clerk9", Role: RoleReviewer}},
		{"principal-clerk9", &RoleRevoked{PrincipalID: "clerk9", Role: RoleReviewer}},
		{"principal-clerk9", &TokenRotated{PrincipalID: "clerk9", TokenSHA256: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}},
		{"principal-clerk9", &PrincipalRevoked{PrincipalID: "clerk9"}},
		{"principal-clerk9", &AccessRequested{PrincipalID: "clerk9", RequestID: "r1", Change: ChangeCreate, Roles: []string{RoleClerk},
			RequestedBy: "admin", CodeSHA256: "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"}},
		{"principal-clerk9", &AccessApproved{PrincipalID: "clerk9", RequestID: "r1", ApprovedBy: "admin2",
			CodeSHA256: "baa5a0964d3320fbc0c6a922140453c8513ea24ab8fd0577034804a967248096", ExpiresAt: &expires}},
		{"principal-clerk9", &AccessRejected{PrincipalID: "clerk9", RequestID: "r2", RejectedBy: "admin2"}},
		{"principal-clerk9", &PrincipalRestored{PrincipalID: "clerk9"}},
		{"principal-clerk9", &EnrollmentRedeemed{PrincipalID: "clerk9", RequestID: "r1", TokenSHA256: "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3"}},
		{"apartments", &ApartmentRegistered{Unit: "A-101", Building: "Pinghu Talent Apartments, Block A", SizeSqm: decimal.RequireFromString("68.5"),
			MarketRent: m("4200"), DiscountedRent: m("1200")}},
		{"apartments", &ApartmentApplied{ApplicationID: "w1", TalentID: "t1", AppliedOn: "2024-03-01"}},
		{"apartments", &ApartmentAllocated{AllocationID: "l1", Unit: "A-101", ApplicationID: "w1", TalentID: "t1", StartDate: "2024-04-01",
			EndDate: "2026-03-31", GrantID: "g1"}},
		{"apartments", &ApartmentVacated{AllocationID: "l1", Unit: "A-101", TalentID: "t1", EndDate: "2025-06-30", Reason: "left Pinghu"}},
	}
	return list
}
