package projections

import (
	"fmt"
	"testing"

	"talentledger/domain"
)

// The budgets model marks the forward commitments that changed for its
// next commit only when it has a views store to commit to: kept in memory
// (no views directory, as replicas on EventStoreDB may run), the marks
// would grow with every commitment and never be cleared.
func TestBudgetsMarkNothingWithoutAStore(t *testing.T) {
	m := NewBudgets()
	for i := range 1000 {
		m.apply(&domain.ForwardCommitted{ProgramID: "rent", FiscalYear: 2025, GrantID: fmt.Sprintf("g-%d", i),
			TalentID: "t-1", Amount: domain.Yuan(100), Installments: []int{13}, ApprovedIn: 2024})
	}
	if len(m.Commitments("rent", 2025)) != 1000 {
		t.Fatalf("%d commitments folded, want 1000", len(m.Commitments("rent", 2025)))
	}
	if len(m.dirty) != 0 {
		t.Fatalf("%d commitments marked for a commit with no store to commit to", len(m.dirty))
	}
}
