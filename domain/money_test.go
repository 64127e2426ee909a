package domain

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

func TestParseMoneyAccepts(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"600000", "600000.00"},
		{"600000.5", "600000.50"},
		{"600000.50", "600000.50"},
		{"0", "0.00"},
		{"0.01", "0.01"},
		{"-12.30", "-12.30"},
		{"10000000000000", "10000000000000.00"},
	} {
		got, err := ParseMoney(tc.in)
		if err != nil {
			t.Errorf("ParseMoney(%q): %v", tc.in, err)
			continue
		}
		if got.String() != tc.want {
			t.Errorf("ParseMoney(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestParseMoneyRefuses(t *testing.T) {
	for _, in := range []string{
		"", "-", "1.234", "0.001", "1e5", "1E5", "+1", " 1", "1 ", "1,000", "1_000",
		".5", "5.", "1.2.3", "--1", "0x10", "NaN", "Inf", "１", "1.-5", strings.Repeat("9", 41),
	} {
		if m, err := ParseMoney(in); err == nil {
			t.Errorf("ParseMoney(%q) = %s, want an error", in, m)
		} else if ErrorCode(err) != EINVALID {
			t.Errorf("ParseMoney(%q) error code = %q, want %q", in, ErrorCode(err), EINVALID)
		}
	}
}

func TestParseAmount(t *testing.T) {
	for _, in := range []string{"600000", "600000.5", "600000.50", "0.01", "10000000000000", "10000000000000.00"} {
		got, err := ParseAmount(in)
		if err != nil {
			t.Errorf("ParseAmount(%q): %v", in, err)
			continue
		}
		if want, _ := ParseMoney(in); got.Cmp(want) != 0 {
			t.Errorf("ParseAmount(%q) = %s, want %s", in, got, want)
		}
	}
	for _, in := range []string{
		"", "-1", "-0.01", "0", "0.00", "-0", "1.234", "1e5", "+1", " 1", "1,000",
		"10000000000000.01", "10000000000001", "99999999999999999",
	} {
		if m, err := ParseAmount(in); err == nil {
			t.Errorf("ParseAmount(%q) = %s, want an error", in, m)
		} else if ErrorCode(err) != EINVALID {
			t.Errorf("ParseAmount(%q) error code = %q, want %q", in, ErrorCode(err), EINVALID)
		}
	}
}

func TestMoneyJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"600000", `"600000.00"`},
		{"600000.5", `"600000.50"`},
		{"0", `"0.00"`},
		{"-3", `"-3.00"`},
	} {
		b, err := json.Marshal(money(t, tc.in))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("Marshal(%s) = %s, want %s", tc.in, b, tc.want)
		}
	}
	// Inside a struct, and the zero value.
	b, err := json.Marshal(struct {
		A Money `json:"a"`
		Z Money `json:"z"`
	}{A: Yuan(5)})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":"5.00","z":"0.00"}`; string(b) != want {
		t.Errorf("Marshal(struct) = %s, want %s", b, want)
	}

	var m Money
	if err := json.Unmarshal([]byte(`"600000.5"`), &m); err != nil {
		t.Fatalf("Unmarshal string: %v", err)
	}
	wantMoney(t, "unmarshalled", m, "600000.50")

	for _, in := range []string{`5`, `5.00`, `600000`, `"1e5"`, `"1.234"`, `" 1"`, `true`, `{}`, `["1"]`} {
		var m Money
		err := json.Unmarshal([]byte(in), &m)
		if err == nil {
			t.Errorf("Unmarshal(%s) = %s, want an error", in, m)
			continue
		}
		if code := ErrorCode(err); code != EINVALID {
			t.Errorf("Unmarshal(%s) error code = %q, want %q", in, code, EINVALID)
		}
	}
	// A JSON number inside a document is refused too.
	var doc struct {
		Amount Money `json:"amount"`
	}
	if err := json.Unmarshal([]byte(`{"amount": 600000}`), &doc); err == nil {
		t.Errorf(`Unmarshal({"amount": 600000}) = %s, want an error`, doc.Amount)
	}
}

func TestMulRatio(t *testing.T) {
	for _, tc := range []struct {
		m        string
		num, den int64
		want     string
	}{
		{"600000", 20, 60, "200000.00"},
		{"600000", 60, 60, "600000.00"},
		{"600000", 0, 60, "0.00"},
		{"420000", 1, 3, "140000.00"},
		{"100000", 1, 3, "33333.33"},
		{"100000", 2, 3, "66666.67"},
		{"0.05", 1, 2, "0.03"},   // half away from zero
		{"-0.05", 1, 2, "-0.03"}, // half away from zero
		{"0.01", 1, 3, "0.00"},
		{"10000000000000", 59, 60, "9833333333333.33"},
	} {
		got := money(t, tc.m).MulRatio(tc.num, tc.den)
		if got.String() != tc.want {
			t.Errorf("%s × %d ÷ %d = %s, want %s", tc.m, tc.num, tc.den, got, tc.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MulRatio by zero did not panic")
		}
	}()
	Yuan(1).MulRatio(1, 0)
}

func TestMoneyArithmetic(t *testing.T) {
	a, b := money(t, "240000"), money(t, "180000.01")
	wantMoney(t, "Add", a.Add(b), "420000.01")
	wantMoney(t, "Sub", a.Sub(b), "59999.99")
	wantMoney(t, "Neg", a.Neg(), "-240000.00")
	wantMoney(t, "Min", a.Min(b), "180000.01")
	wantMoney(t, "Max", a.Max(b), "240000.00")
	if a.Cmp(b) != 1 || b.Cmp(a) != -1 || a.Cmp(money(t, "240000.00")) != 0 {
		t.Errorf("Cmp is wrong")
	}
	if !Zero.IsZero() || Yuan(1).IsZero() || Zero.Sign() != 0 || a.Neg().Sign() != -1 {
		t.Errorf("IsZero/Sign are wrong")
	}
	wantMoney(t, "Percent 33.33", money(t, "1000.01").Percent(decs(t, "33.33")[0]), "333.30")
	if err := Zero.CheckAmount("x"); ErrorCode(err) != EINVALID {
		t.Errorf("CheckAmount(0) = %v, want invalid", err)
	}
	if err := MaxAmount.CheckAmount("x"); err != nil {
		t.Errorf("CheckAmount(MaxAmount) = %v, want nil", err)
	}
	if err := MaxAmount.Add(money(t, "0.01")).CheckAmount("x"); ErrorCode(err) != EINVALID {
		t.Errorf("CheckAmount(MaxAmount+0.01) = %v, want invalid", err)
	}
}

func TestFenRoundTrips(t *testing.T) {
	for _, s := range []string{"0", "0.00", "0.01", "-0.01", "600000", "600000.5", "-12.30", "10000000000000", "92233720368547758.07", "-92233720368547758.08"} {
		m, err := ParseMoney(s)
		if err != nil {
			t.Fatal(err)
		}
		f, ok := m.Fen()
		if !ok {
			t.Errorf("%s: no fen", s)
			continue
		}
		if back := FromFen(f); back.Cmp(m) != 0 || back.String() != m.String() {
			t.Errorf("%s: %d fen gives back %s", s, f, back)
		}
	}
	for _, s := range []string{"92233720368547758.08", "-92233720368547758.09", "100000000000000000000"} {
		m, _ := ParseMoney(s)
		if f, ok := m.Fen(); ok {
			t.Errorf("%s: %d fen, want no fit", s, f)
		}
	}
	if f, ok := Yuan(3).MulRatio(1, 3).Fen(); !ok || f != 100 {
		t.Errorf("1.00 = %d fen, %v", f, ok)
	}
	if _, ok := (Money{decimal.New(1, -3)}).Fen(); ok {
		t.Error("0.001 has fen")
	}
}
