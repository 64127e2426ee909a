package domain

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// eventTypeConstants returns the value of every exported string constant
// named Type… in the package's non-test sources, so that a new event type
// cannot be added without a decoder.
func eventTypeConstants(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	out := map[string]string{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, sp := range gd.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if !strings.HasPrefix(id.Name, "Type") || !id.IsExported() || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						out[id.Name] = v
					}
				}
			}
		}
	}
	return out
}

func TestDecodeEveryEventType(t *testing.T) {
	consts := eventTypeConstants(t)
	// The lifecycle's types at least must be there.
	for _, typ := range []string{TypeProgramDefined, TypeBudgetAppropriated, TypeBudgetReserved,
		TypeBudgetReservationReleased, TypeTalentRegistered, TypeTalentDeparted, TypeGrantApplied,
		TypeGrantReviewed, TypePublicNoticeOpened, TypeObjectionRaised, TypeObjectionResolved,
		TypePublicNoticeClosed, TypeGrantApproved, TypeGrantRejected, TypePaymentPrepared,
		TypePaymentApproved, TypePaymentReleased, TypePaymentFailed, TypePaymentReversed,
		TypeGrantTerminated, TypeClawbackAssessed, TypeRecoveryReceived, TypeRecoveryWaived} {
		found := false
		for _, v := range consts {
			found = found || v == typ
		}
		if !found {
			t.Errorf("constant for %s not found in the sources", typ)
		}
	}
	seen := map[string]string{}
	for name, typ := range consts {
		if other, dup := seen[typ]; dup {
			t.Errorf("%s and %s both name %q", name, other, typ)
		}
		seen[typ] = name
		e, err := DecodeEvent(typ, []byte(`{}`))
		if err != nil {
			t.Errorf("DecodeEvent(%s = %q): %v", name, typ, err)
			continue
		}
		if got := e.EventType(); got != typ {
			t.Errorf("DecodeEvent(%q) gives a %T whose EventType is %q", typ, e, got)
		}
		// A payload survives a round trip.
		raw, err := json.Marshal(e)
		if err != nil {
			t.Errorf("marshal %s: %v", typ, err)
			continue
		}
		if _, err := DecodeEvent(typ, raw); err != nil {
			t.Errorf("round trip of %s: %v", typ, err)
		}
	}
}

func TestDecodeEventRefuses(t *testing.T) {
	for _, typ := range []string{"", "Unknown", "grantapproved", "GrantApproved ", "*domain.GrantApproved", "$GrantApproved"} {
		if e, err := DecodeEvent(typ, []byte(`{}`)); err == nil {
			t.Errorf("DecodeEvent(%q) = %T, want an error", typ, e)
		}
	}
	// Malformed data, and an amount as a JSON number, are refused.
	for _, data := range []string{`not json`, `{"amount": 5}`, `{"amount": "1.234"}`, `[]`} {
		if e, err := DecodeEvent(TypeBudgetAppropriated, []byte(data)); err == nil {
			t.Errorf("DecodeEvent(BudgetAppropriated, %s) = %+v, want an error", data, e)
		}
	}
}

func TestDecodeEventRoundTrip(t *testing.T) {
	in := &GrantApproved{GrantID: "g0123456789abcdef", TalentID: "t0123456789abcdef", ProgramID: "housing",
		Award: money(t, "600000"), Deduction: Zero, Amount: money(t, "600000"), FiscalYear: 2024,
		Installments: []Installment{{1, money(t, "240000"), "2024-01-15"}}, ServiceMonths: 60,
		ServiceStart: "2024-01-15", ApprovedOn: "2024-01-15", CommandID: "c1"}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"award":"600000.00"`) {
		t.Errorf("award not a two-decimal string: %s", raw)
	}
	e, err := DecodeEvent(TypeGrantApproved, raw)
	if err != nil {
		t.Fatal(err)
	}
	out := e.(*GrantApproved)
	if out.GrantID != in.GrantID || out.Amount.Cmp(in.Amount) != 0 || out.Installments[0].DueDate != "2024-01-15" {
		t.Errorf("round trip = %+v, want %+v", out, in)
	}
}
