package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"talentledger/domain"
	ledgerhttp "talentledger/http"
	"talentledger/projections"
)

// The demo's bank statement. The payments the demo releases on
// demoBatchDate form one release batch, demoBatch, whose payments carry
// the references <batch>-001, <batch>-002, … as a batch release gives
// them. The bank's statement of that day comes back with a few
// differences, so that the reconciliation has something to show: two
// payments the bank booked demoStatementShort less than released
// (mismatched), and a bank charge no payment explains (unmatched); every
// other line matches its payment.
const (
	demoBatch     = "RB20250214"
	demoBatchDate = "2025-02-14"
	// demoStatementDate is the day the statement is imported.
	demoStatementDate = "2025-02-17"
	// demoStatementShort is what the bank booked less on a mismatched line.
	demoStatementShort = "50.00"
	// demoBankFee is the unmatched line: the bank's charge for the batch.
	demoBankFee, demoBankFeeAmount = "ZJRCB-FEE-20250214", "-20.00"
)

// The demo statement's outcomes, which the demo prints and checks.
const (
	demoBatchPayments       = 10
	demoStatementMatched    = demoBatchPayments - demoStatementMismatched
	demoStatementMismatched = 2
	demoStatementUnmatched  = 1
)

// importDemoStatement writes the bank's statement of the demo's release
// batch and imports it as POST /v1/bank/statements does: the file parsed
// by the same reader, its lines matched by the work model (folded here
// from the log the loader wrote) and the match recorded through the
// domain, by the treasurer, on demoStatementDate. It fails unless the
// outcome is the one the demo states.
func (d *demoLoader) importDemoStatement() error {
	work := projections.NewWork()
	if err := projections.ReplayInto(d.ctx, d.svc.Store(), work); err != nil {
		return err
	}
	batch := work.BankFile(demoBatch)
	if len(batch) != demoBatchPayments {
		return fmt.Errorf("release batch %s has %d payments, want %d", demoBatch, len(batch), demoBatchPayments)
	}
	short := money(demoStatementShort)
	var b strings.Builder
	b.WriteString("value_date,reference,amount,counterparty,description\r\n")
	for i, in := range batch {
		amount := in.Amount.Neg()
		if i == 2 || i == 6 { // the bank booked these short
			amount = amount.Add(short)
		}
		fmt.Fprintf(&b, "%s,%s,%s,%s,代发人才补贴\r\n", demoBatchDate, in.Reference, amount, in.PayeeName)
	}
	fmt.Fprintf(&b, "%s,%s,%s,浙江平湖农村商业银行,代发手续费\r\n", demoBatchDate, demoBankFee, demoBankFeeAmount)
	body := []byte(b.String())
	entries, err := ledgerhttp.ParseStatement(body)
	if err != nil {
		return fmt.Errorf("the demo's statement: %w", err)
	}
	sum := sha256.Sum256(body)
	st := domain.NewBankStatement(hex.EncodeToString(sum[:]), work.MatchStatement(entries))
	if st.Matched != demoStatementMatched || st.Mismatched != demoStatementMismatched || st.Unmatched != demoStatementUnmatched {
		return fmt.Errorf("the demo's statement: %d matched, %d mismatched, %d unmatched; want %d, %d, %d", st.Matched, st.Mismatched,
			st.Unmatched, demoStatementMatched, demoStatementMismatched, demoStatementUnmatched)
	}
	m := d.meta(domain.RoleTreasurer, demoStatementDate, "ZJRCB-STMT-20250214")
	if _, err := d.svc.ReconcileStatement(d.ctx, domain.ReconcileStatement{Meta: m, Statement: st}); err != nil {
		return fmt.Errorf("import the demo's statement: %w", err)
	}
	return nil
}
