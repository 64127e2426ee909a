package domain

import (
	"context"
	"fmt"
	"testing"
)

// adjustMeta is the meta of an adjustment's request or approval.
func adjustMeta(a Actor, date string) CommandMeta {
	m := on(a, date)
	m.Reason, m.DocumentRef = "mid-year budget adjustment", "PHCZ-TZ-"+date
	return m
}

// TestBudgetAdjustments: an increase, a decrease and a transfer between
// programs, each requested by one approver and approved by another; what
// leaves a budget never takes it below what it reserved and paid; an
// increase covers waiting forward commitments; the ledger stays sound.
func TestBudgetAdjustments(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	_, gid := approvedHousing(t, s) // 2024 reserves 240,000 of 30,000,000
	defineMonthly(t, s, "rent", KindRent, "2500", 36)
	appropriate(t, s, "rent", 2024, "100000")
	payInstallment(t, s, gid, 1, "2024-01-15")

	// Each step is a day after the one before.
	day := 0
	next := func() string {
		day++
		return fmt.Sprintf("2024-06-%02d", day)
	}
	request := func(a Actor, c AdjustBudget) (Result, error) {
		c.Meta = adjustMeta(a, next())
		return s.RequestBudgetAdjustment(ctx, c)
	}
	approve := func(a Actor, program, id string) (Result, error) {
		return s.ApproveBudgetAdjustment(ctx, AdjustBudget{Meta: adjustMeta(a, next()), ProgramID: program, FiscalYear: 2024, AdjustmentID: id})
	}

	// A decrease may take only what is available: 30,000,000 less the
	// 240,000 reserved and paid.
	_, err := request(approver, AdjustBudget{ProgramID: "housing", FiscalYear: 2024, Kind: AdjustDecrease, Amount: money(t, "29760000.01")})
	wantCode(t, err, EINSUFFICIENTFUNDS)
	_, err = s.RequestBudgetAdjustment(ctx, AdjustBudget{Meta: on(approver, next()), ProgramID: "housing", FiscalYear: 2024,
		Kind: AdjustDecrease, Amount: money(t, "1")})
	wantCode(t, err, EINVALID) // no reason or document
	dec := must(t)(request(approver, AdjustBudget{ProgramID: "housing", FiscalYear: 2024, Kind: AdjustDecrease, Amount: money(t, "10000000")})).ID
	_, err = approve(approver, "housing", dec)
	wantCode(t, err, ESEGREGATION)
	must(t)(approve(approver2, "housing", dec))
	_, err = approve(approver2, "housing", dec)
	wantCode(t, err, ECONFLICT)
	wantMoney(t, "housing available after the decrease", budgetState(t, s, "housing", 2024).Available, "19760000.00")

	// A transfer to rent, approved after another reservation took some of
	// what was available, is checked again at approval.
	tr := must(t)(request(approver, AdjustBudget{ProgramID: "housing", FiscalYear: 2024, Kind: AdjustTransfer, Amount: money(t, "19760000"), ToProgram: "rent"})).ID
	g2 := apply(t, s, registerTalent(t, s, "D"), "housing", "150000")
	toNoticeClosed(t, s, g2)
	must(t)(s.ApproveGrant(ctx, ApproveGrant{Meta: on(approver, next()), GrantID: g2}))
	_, err = approve(approver2, "housing", tr)
	wantCode(t, err, EINSUFFICIENTFUNDS)
	tr = must(t)(request(approver, AdjustBudget{ProgramID: "housing", FiscalYear: 2024, Kind: AdjustTransfer, Amount: money(t, "500000"), ToProgram: "rent"})).ID
	must(t)(approve(approver2, "housing", tr))
	wantMoney(t, "housing adjusted", budgetState(t, s, "housing", 2024).Adjusted, "-10500000.00")
	rent := budgetState(t, s, "rent", 2024)
	wantMoney(t, "rent adjusted", rent.Adjusted, "500000.00")
	wantMoney(t, "rent available", rent.Available, "600000.00")

	// An increase covers the forward commitments waiting in its year:
	// a 36-month rent award approved in June 2024 commits 30,000 to 2025,
	// whose budget of 1.00 cannot cover it.
	appropriateOn(t, s, "rent", 2025, "1", next())
	g3 := approveDirect(t, s, registerTalent(t, s, "B"), "rent", "90000", next())
	wantMoney(t, "2025 uncovered", budgetState(t, s, "rent", 2025).Uncovered, "30000.00")
	inc := must(t)(s.RequestBudgetAdjustment(ctx, AdjustBudget{Meta: adjustMeta(approver, next()), ProgramID: "rent", FiscalYear: 2025,
		Kind: AdjustIncrease, Amount: money(t, "30000")})).ID
	must(t)(s.ApproveBudgetAdjustment(ctx, AdjustBudget{Meta: adjustMeta(approver2, next()), ProgramID: "rent", FiscalYear: 2025, AdjustmentID: inc}))
	b25 := budgetState(t, s, "rent", 2025)
	wantMoney(t, "2025 uncovered after the increase", b25.Uncovered, "0.00")
	wantMoney(t, "2025 available after the increase", b25.Available, "1.00")
	for _, g := range []string{gid, g2, g3} {
		wantGrantMoneyAddsUp(t, s, g, "after the adjustments")
	}
	ledger(t, s.Store())
	verifyChains(t, s.Store())
}

// TestBudgetTransferInterrupted stops a transfer between its source and
// its target: ReconcileTransfers, or a retry of the approval, credits it
// once.
func TestBudgetTransferInterrupted(t *testing.T) {
	for _, how := range []string{"reconcile", "retry"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			fs := &faultStore{Store: newTestStore(t)}
			s := newServiceOver(fs)
			defineMonthly(t, s, "rent", KindRent, "2500", 36)
			appropriate(t, s, "rent", 2024, "100000")
			defineMonthly(t, s, "transport", KindTransport, "500", 36)
			appropriate(t, s, "transport", 2024, "100000")
			id := must(t)(s.RequestBudgetAdjustment(ctx, AdjustBudget{Meta: adjustMeta(approver, "2024-06-01"), ProgramID: "rent", FiscalYear: 2024,
				Kind: AdjustTransfer, Amount: money(t, "40000"), ToProgram: "transport"})).ID
			fs.onAppend = failOnce(TypeBudgetTransferReceived)
			approve := func() (Result, error) {
				return s.ApproveBudgetAdjustment(ctx, AdjustBudget{Meta: withID(adjustMeta(approver2, "2024-06-02"), "adj-1"),
					ProgramID: "rent", FiscalYear: 2024, AdjustmentID: id})
			}
			if _, err := approve(); err == nil {
				t.Fatal("the transfer did not stop")
			}
			r := newServiceOver(fs.Store)
			wantMoney(t, "rent available after the crash", budgetState(t, r, "rent", 2024).Available, "60000.00")
			wantMoney(t, "transport available after the crash", budgetState(t, r, "transport", 2024).Available, "100000.00")
			ledger(t, fs) // the money is in transit, nowhere twice
			keys := []TransferKey{{"rent", 2024, id}}
			if how == "reconcile" {
				if n, err := r.ReconcileTransfers(ctx, keys); err != nil || n != 1 {
					t.Fatalf("ReconcileTransfers = %d, %v; want 1", n, err)
				}
			} else {
				must(t)(approve())
			}
			if n, err := r.ReconcileTransfers(ctx, keys); err != nil || n != 0 {
				t.Errorf("a second ReconcileTransfers = %d, %v; want 0", n, err)
			}
			if n := countEvents(t, fs, TypeBudgetTransferReceived); n != 1 {
				t.Errorf("%d BudgetTransferReceived, want 1", n)
			}
			wantMoney(t, "transport available", budgetState(t, newServiceOver(fs.Store), "transport", 2024).Available, "140000.00")
			bal := ledger(t, fs)
			wantMoney(t, "in transit", bal["budget:transport:2024:in_transit"], "0.00")
			verifyChains(t, fs)
		})
	}
}
