package domain

import (
	"context"
	"talentledger/eventstore"
)

func (s *Service) requireFund(ctx context.Context, fund string) error {
	return Errorf(ENOTFOUND, "fund %s not found", fund)
}
func (s *Service) appropriateFromFund(ctx context.Context, m *meta, fund, stream string, ev *BudgetAppropriated) (Result, error) {
	var r eventstore.AppendResult
	_ = r
	return Result{}, Errorf(ENOTFOUND, "fund %s not found", fund)
}
