package http

// Examples the API description shows for the finance officers' routes:
// what a console or a script sends and gets back.

var (
	exampleInbox = map[string]any{
		"principal": "approver1", "roles": []string{"approver"}, "today": "2024-02-05", "position": "1042",
		"queues": []any{
			map[string]any{"name": "grants_to_approve", "roles": []string{"approver"}, "count": 1, "segregated_count": 0,
				"items": []any{map[string]any{"grant_id": "g6d1f0c2a9b7e3d41", "program_id": "housing", "talent_id": "t2b9c1d0e4f5a6b7c",
					"talent_name": "王小明", "amount": "600000.00", "since": "2024-01-16", "action": "POST /v1/grants/g6d1f0c2a9b7e3d41/approve"}},
				"segregated": []any{}},
			map[string]any{"name": "payments_to_approve", "roles": []string{"approver"}, "count": 1, "segregated_count": 1,
				"items": []any{map[string]any{"grant_id": "g0a1b2c3d4e5f6071", "payment_id": "g0a1b2c3d4e5f6071-1-1", "installment": 1,
					"program_id": "transport", "talent_id": "t0a1b2c3d4e5f6071", "talent_name": "Sophie Martin", "amount": "18000.00",
					"action": "POST /v1/payments/g0a1b2c3d4e5f6071-1-1/approve"}},
				"segregated": []any{map[string]any{"grant_id": "g1b2c3d4e5f607182", "payment_id": "g1b2c3d4e5f607182-1-1", "installment": 1,
					"program_id": "transport", "talent_id": "t1b2c3d4e5f607182", "talent_name": "陈静", "amount": "18000.00",
					"action": "POST /v1/payments/g1b2c3d4e5f607182-1-1/approve", "reason": "whoever prepares a payment may not approve it"}}},
		},
	}
	examplePayments = map[string]any{
		"payments": []any{map[string]any{"id": "g0a1b2c3d4e5f6071-1-1", "grant_id": "g0a1b2c3d4e5f6071", "installment": 1,
			"program_id": "transport", "talent_id": "t0a1b2c3d4e5f6071", "talent_name": "Sophie Martin", "amount": "18000.00",
			"state": "released", "due_date": "2024-02-05", "fiscal_year": 2024, "prepared_by": "clerk1", "approved_by": "approver2",
			"released_by": "treasurer1", "bank_reference": "RB29B2F229DB-001", "released_on": "2024-02-06", "reconciled_in": "s72b39757fa402cf8"}},
		"total": 37, "limit": 1, "next_cursor": "p0", "position": "1042",
	}
	exampleBatchRequest = map[string]any{"payment_ids": []string{"g0a1b2c3d4e5f6071-1-1", "g1b2c3d4e5f607182-1-1"}}
	exampleBatchApprove = map[string]any{
		"results": []any{
			map[string]any{"payment_id": "g0a1b2c3d4e5f6071-1-1", "status": 200, "position": "1043"},
			map[string]any{"payment_id": "g1b2c3d4e5f607182-1-1", "status": 403, "problem": map[string]any{
				"type": "urn:talentledger:problem:segregation_of_duties", "title": "Forbidden", "status": 403,
				"detail": "whoever prepares a payment may not approve it", "code": "segregation_of_duties"}},
		},
		"succeeded": 1, "refused": 1, "position": "1043",
	}
	exampleBatchRelease = map[string]any{
		"batch": "RB29B2F229DB",
		"results": []any{
			map[string]any{"payment_id": "g0a1b2c3d4e5f6071-1-1", "status": 200, "position": "1050", "bank_reference": "RB29B2F229DB-001"},
			map[string]any{"payment_id": "g1b2c3d4e5f607182-1-1", "status": 200, "position": "1052", "bank_reference": "RB29B2F229DB-002"},
		},
		"succeeded": 2, "refused": 0, "position": "1052",
	}
)

const (
	exampleBankFile = "\ufeff收款人户名,收款账号,开户银行,金额,业务参考号\r\n" +
		"Sophie Martin,6228 4801 0000 0001,浙江平湖农村商业银行,18000.00,RB29B2F229DB-001\r\n" +
		"陈静,6228 4801 0000 0002,浙江平湖农村商业银行,18000.00,RB29B2F229DB-002\r\n"
	exampleStatement = "value_date,reference,amount,counterparty\r\n" +
		"2024-02-06,RB29B2F229DB-001,-18000.00,Sophie Martin\r\n" +
		"2024-02-06,RB29B2F229DB-002,-18000.00,陈静\r\n" +
		"2024-08-10,ZJRCB-REC-0001,2000.00,Ana Lima\r\n"
)
