package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// MaxAmount bounds every amount accepted as input: at most 10^13 CNY.
var MaxAmount = Money{decimal.New(1, 13)}

// Money is an amount of CNY with exactly two decimal places. It marshals to
// a JSON string such as "600000.00". Balances may be negative; amounts taken
// as input never are (see ParseAmount).
type Money struct{ d decimal.Decimal }

// Zero is 0.00.
var Zero = Money{}

// Yuan returns n whole yuan.
func Yuan(n int64) Money { return Money{decimal.NewFromInt(n)} }

// ParseMoney parses a plain decimal with an optional leading minus and at
// most two decimal places: "600000", "600000.5", "-12.30". Exponents, plus
// signs, spaces and more than two decimals are refused.
func ParseMoney(s string) (Money, error) {
	digits := s
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if digits == "" || len(s) > 40 {
		return Zero, Errorf(EINVALID, "amount %q is not a decimal like \"1234.50\"", s)
	}
	intPart, frac, hasDot := cutByte(digits, '.')
	if intPart == "" || !allDigits(intPart) || (hasDot && (frac == "" || !allDigits(frac))) {
		return Zero, Errorf(EINVALID, "amount %q is not a decimal like \"1234.50\"", s)
	}
	if len(frac) > 2 {
		return Zero, Errorf(EINVALID, "amount %q has more than 2 decimal places", s)
	}
	if len(intPart) > 30 {
		// Far beyond any amount or balance, and short enough that what it
		// prints always parses back.
		return Zero, Errorf(EINVALID, "amount %q is too large", truncate(s, 40))
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return Zero, Errorf(EINVALID, "amount %q is not a decimal", s)
	}
	return Money{d}, nil
}

// ParseAmount parses an input amount: ParseMoney's rules, and the amount
// must be greater than zero and at most MaxAmount.
func ParseAmount(s string) (Money, error) {
	m, err := ParseMoney(s)
	if err != nil {
		return Zero, err
	}
	if err := m.CheckAmount("amount"); err != nil {
		return Zero, err
	}
	return m, nil
}

// CheckAmount reports an EINVALID error unless 0 < m ≤ MaxAmount; field
// names the amount in the message.
func (m Money) CheckAmount(field string) error {
	if m.Sign() <= 0 {
		return Errorf(EINVALID, "%s must be greater than zero", field)
	}
	if m.Cmp(MaxAmount) > 0 {
		return Errorf(EINVALID, "%s must be at most %s", field, MaxAmount)
	}
	return nil
}

func cutByte(s string, c byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String returns the amount with exactly two decimals.
func (m Money) String() string { return m.d.StringFixed(2) }

// Decimal returns the underlying decimal.
func (m Money) Decimal() decimal.Decimal { return m.d }

// Fen returns m in fen, hundredths of a yuan, and true; or false when m
// has more than two decimals or does not fit an int64 in fen (no amount of
// the ledger comes near: MaxAmount is 10^15 fen). It allocates nothing for
// such amounts.
func (m Money) Fen() (int64, bool) {
	exp := m.d.Exponent()
	if n := m.d.NumDigits(); exp < -2 || n > 19 || (n == 19 && !m.d.Coefficient().IsInt64()) {
		return 0, false
	}
	v := m.d.CoefficientInt64()
	for ; exp > -2; exp-- {
		if v > math.MaxInt64/10 || v < math.MinInt64/10 {
			return 0, false
		}
		v *= 10
	}
	return v, true
}

// FromFen returns the amount of f fen.
func FromFen(f int64) Money { return Money{decimal.New(f, -2)} }

// Add returns m + n.
func (m Money) Add(n Money) Money { return Money{m.d.Add(n.d)} }

// Sub returns m − n.
func (m Money) Sub(n Money) Money { return Money{m.d.Sub(n.d)} }

// Neg returns −m.
func (m Money) Neg() Money { return Money{m.d.Neg()} }

// Cmp compares m and n: -1, 0 or +1.
func (m Money) Cmp(n Money) int { return m.d.Cmp(n.d) }

// Sign returns -1, 0 or +1.
func (m Money) Sign() int { return m.d.Sign() }

// IsZero reports whether m is zero.
func (m Money) IsZero() bool { return m.d.IsZero() }

// Min returns the smaller of m and n.
func (m Money) Min(n Money) Money {
	if m.Cmp(n) <= 0 {
		return m
	}
	return n
}

// Max returns the larger of m and n.
func (m Money) Max(n Money) Money {
	if m.Cmp(n) >= 0 {
		return m
	}
	return n
}

// MulRatio returns m × num ÷ den rounded half away from zero to two
// decimals. The division is done last so that exact results stay exact.
func (m Money) MulRatio(num, den int64) Money {
	if den == 0 {
		panic("domain: MulRatio by zero")
	}
	p := m.d.Mul(decimal.NewFromInt(num))
	return Money{p.DivRound(decimal.NewFromInt(den), 2)}
}

// Percent returns m × pct ÷ 100, rounded to two decimals.
func (m Money) Percent(pct decimal.Decimal) Money {
	return Money{m.d.Mul(pct).DivRound(decimal.NewFromInt(100), 2)}
}

// MarshalJSON writes the amount as a JSON string with two decimals.
func (m Money) MarshalJSON() ([]byte, error) {
	return []byte(`"` + m.String() + `"`), nil
}

// UnmarshalJSON reads an amount from a JSON string under ParseMoney's rules.
// JSON numbers are refused so that no amount ever passes through a float.
func (m *Money) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return Errorf(EINVALID, "amount must be a string like \"1234.50\", got %s", truncate(string(b), 40))
	}
	v, err := ParseMoney(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut before a character, never inside one, so that a message quoting
	// input stays valid UTF-8.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

var _ fmt.Stringer = Money{}
