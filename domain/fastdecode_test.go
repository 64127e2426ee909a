package domain

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// slowTypes constructs the payload of each type with a fast decoder, for
// decoding with encoding/json alone.
var slowTypes = map[string]func() Event{
	TypeGrantApplied:                func() Event { return &GrantApplied{} },
	TypeGrantReviewed:               func() Event { return &GrantReviewed{} },
	TypePublicNoticeOpened:          func() Event { return &PublicNoticeOpened{} },
	TypePublicNoticeClosed:          func() Event { return &PublicNoticeClosed{} },
	TypeGrantApproved + ".v2":       func() Event { return &GrantApproved{} },
	TypeBudgetReserved:              func() Event { return &BudgetReserved{} },
	TypeEntitlementReserved + ".v2": func() Event { return &EntitlementReserved{} },
	TypePaymentPrepared:             func() Event { return &PaymentPrepared{} },
	TypePaymentApproved:             func() Event { return &PaymentApproved{} },
	TypePaymentReleased:             func() Event { return &PaymentReleased{} },
	TypePaymentCharged:              func() Event { return &PaymentCharged{} },
	TypeTalentRegistered:            func() Event { return &TalentRegistered{} },
	TypeTalentKeyCreated:            func() Event { return &TalentKeyCreated{} },
	TypeIdempotencyRecorded:         func() Event { return &IdempotencyRecorded{} },
}

func slowDecode(typ string, data []byte) (Event, error) {
	e := slowTypes[typ]()
	err := json.Unmarshal(data, e)
	return e, err
}

func fastSamples(t testing.TB) map[string][][]byte {
	t.Helper()
	m := func(s string) Money {
		v, err := ParseMoney(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	approval := GrantApproved{GrantID: "g0123456789abcdef", TalentID: "t0123456789abcdef", ProgramID: "housing",
		Award: m("600000.00"), Deduction: m("15000.00"), DeductedFrom: []string{"g1111111111111111", "g2222222222222222"},
		Amount: m("585000.00"), FiscalYear: 2024, Installments: []Installment{{1, m("234000.00"), "2024-01-15"}, {2, m("175500.50"), "2025-01-15"}},
		ServiceMonths: 60, ServiceStart: "2024-01-15", ApprovedOn: "2024-01-15", CommandID: "c-1"}
	bare := GrantApproved{GrantID: "g1", Installments: []Installment{}}
	split := approval
	split.Years = []YearShare{{2024, m("234000.00"), []int{1}}, {2025, m("175500.50"), []int{2}}, {2026, Zero, nil}, {2027, m("1"), []int{}}}
	release := PaymentReleased{GrantID: "g1", PaymentID: "g1-1-1", Installment: 1, TalentID: "t1", ProgramID: "housing", FiscalYear: 2025,
		Amount: m("234000.00"), BankReference: "ZJRCB-1", ReleasedOn: "2025-01-15"}
	events := []Event{
		&GrantApplied{GrantID: "g0123456789abcdef", TalentID: "t1", ProgramID: "housing", AmountRequested: m("600000"), AppliedOn: "2024-01-02"},
		&GrantApplied{},
		&GrantReviewed{GrantID: "g1", Decision: "approve", Note: "雇主已核实; documents complete"},
		&GrantReviewed{GrantID: "g1", Decision: "reject", Note: `quotes "and" <tags> & back\slash`},
		&PublicNoticeOpened{GrantID: "g1", OpenedOn: "2024-01-02"},
		&TalentKeyCreated{TalentID: "t0123456789abcdef", KeyID: "k0123456789abcdef01234567"},
		&TalentKeyCreated{TalentID: "t1"},
		&PublicNoticeClosed{GrantID: "g1", ClosedOn: "2024-01-09"},
		&approval, &bare, &GrantApproved{}, &split,
		&BudgetReserved{Approval: split},
		&PaymentCharged{ProgramID: "housing", FiscalYear: 2025, GrantID: "g1", TalentID: "t1", PaymentID: "g1-1-1", Installment: 1,
			Amount: m("234000.00"), CommandID: "c-2", Release: release},
		&PaymentCharged{},
		&BudgetReserved{ProgramID: "housing", FiscalYear: 2024, GrantID: "g1", TalentID: "t1", Amount: m("585000"), CommandID: "c-1", Approval: approval},
		&BudgetReserved{Approval: bare},
		&EntitlementReserved{TalentID: "t1", ProgramID: "housing", Kind: KindHousingPurchase, GrantID: "g1", Approval: split},
		&EntitlementReserved{Approval: bare},
		&EntitlementReserved{},
		&PaymentPrepared{GrantID: "g1", PaymentID: "g1-1-1", Installment: 1, Amount: m("234000.00")},
		&PaymentApproved{GrantID: "g1", PaymentID: "g1-1-1"},
		&PaymentReleased{GrantID: "g1", PaymentID: "g1-1-1", Installment: 1, TalentID: "t1", ProgramID: "housing", FiscalYear: -3,
			Amount: m("0.01"), BankReference: "ZJRCB-2024-01-15-0001", ReleasedOn: "2024-01-15"},
		&TalentRegistered{TalentID: "t1", Name: "Thomas Müller", PermitCategory: "A", Tier: "B", Employer: "Pinghu Optics", OverseasEngineer: true, RegisteredOn: "2023-12-15"},
		&TalentRegistered{TalentID: "t2", Name: "王小明", Tier: "E"},
		&IdempotencyRecorded{Key: "k", RequestHash: "ab12", Status: 201, Response: json.RawMessage(`{"id":"g1","position":"7/7","nested":[1,-2.5e3,true,null,{"a":"\u003c"}]}`)},
		&IdempotencyRecorded{Key: "k", Status: 200, Response: json.RawMessage(`null`)},
	}
	out := map[string][][]byte{}
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		typ := Codec{}.StoredType(e)
		out[typ] = append(out[typ], b)
	}
	return out
}

func TestFastDecodeAgreesWithEncodingJSON(t *testing.T) {
	for typ, samples := range fastSamples(t) {
		for _, b := range samples {
			fast, ok := decodeFast(typ, b)
			if !ok {
				if !strings.Contains(string(b), `\`) {
					t.Errorf("%s %s: the fast decoder gave up on what json.Marshal wrote", typ, b)
				}
				continue
			}
			slow, err := slowDecode(typ, b)
			if err != nil {
				t.Fatalf("%s %s: %v", typ, b, err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Errorf("%s %s:\nfast %#v\nslow %#v", typ, b, fast, slow)
			}
		}
	}
}

func TestFastDecodeGivesUpOnAnythingUnusual(t *testing.T) {
	for _, c := range []struct{ typ, data string }{
		{TypePaymentApproved, ` {"grant_id":"g1","payment_id":"p"}`},
		{TypePaymentApproved, `{"grant_id": "g1","payment_id":"p"}`},
		{TypePaymentApproved, `{"grant_id":"g1","payment_id":"p"} `},
		{TypePaymentApproved, `{"grant_id":"g1","payment_id":"p"}x`},
		{TypePaymentApproved, `{"grant_id":"g\u0031","payment_id":"p"}`},
		{TypePaymentApproved, `{"Grant_ID":"g1","payment_id":"p"}`},
		{TypePaymentApproved, `{"grant_id":"g1","grant_id":"g2"}`},
		{TypePaymentApproved, `{"grant_id":null}`},
		{TypePaymentApproved, `{"grant_id":"g1","extra":1}`},
		{TypePaymentApproved, "{\"grant_id\":\"g\xff\"}"},
		{TypePaymentApproved, "{\"grant_id\":\"g\x01\"}"},
		{TypePaymentApproved, `{"grant_id":"g1",}`},
		{TypePaymentApproved, `{"grant_id":"g1"`},
		{TypePaymentPrepared, `{"installment":1.0}`},
		{TypePaymentPrepared, `{"installment":1e0}`},
		{TypePaymentPrepared, `{"installment":01}`},
		{TypePaymentPrepared, `{"installment":99999999999999999999}`},
		{TypePaymentPrepared, `{"installment":"1"}`},
		{TypePaymentPrepared, `{"amount":"1.001"}`},
		{TypePaymentPrepared, `{"amount":12.5}`},
		{TypeTalentRegistered, `{"overseas_engineer":1}`},
		{TypeIdempotencyRecorded, `{"response":{"a":}}`},
		{TypeIdempotencyRecorded, `{"response":[1 2]}`},
		{TypeGrantApproved + ".v2", `{"installments":[{"n":1,"n":2}]}`},
		{TypeGrantApproved + ".v2", `{"installments":[{"n":1}],"installments":[]}`},
		{TypeBudgetReserved, `{"approval":{"grant_id":"a"},"approval":{"talent_id":"b"}}`},
		{"ProgramDefined", `{}`},
	} {
		if e, ok := decodeFast(c.typ, []byte(c.data)); ok {
			t.Errorf("%s %s: decoded as %#v; want the fast decoder to give up", c.typ, c.data, e)
		}
	}
}

// FuzzFastDecode checks that whatever the fast decoders accept,
// encoding/json decodes to the same value.
func FuzzFastDecode(f *testing.F) {
	types := make([]string, 0, len(slowTypes))
	for typ, samples := range fastSamples(f) {
		types = append(types, typ)
		for _, b := range samples {
			f.Add(typ, b)
		}
	}
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		if slowTypes[typ] == nil {
			typ = types[len(typ)%len(types)]
		}
		fast, ok := decodeFast(typ, data)
		if !ok {
			return
		}
		slow, err := slowDecode(typ, data)
		if err != nil {
			t.Fatalf("%s %q: fast decoder accepted what encoding/json refuses: %v", typ, data, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s %q:\nfast %#v\nslow %#v", typ, data, fast, slow)
		}
	})
}
