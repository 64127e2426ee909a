package domain

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fuzz targets run their seed corpus (testdata/fuzz) in every test
// run; CI also fuzzes each for a few seconds (go test -fuzz).

// reMoney is ParseMoney's grammar, stated independently.
var reMoney = regexp.MustCompile(`^-?[0-9]+(\.[0-9]{1,2})?$`)

func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"0", "0.00", "600000.00", "-12.3", "1.005", "+1", "1e3", " 1", "1.", ".5", "10000000000000.00",
		"10000000000000.01", "", "-", "00001.10", "1_000", "１２", "9999999999999999999999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMoney(s)
		intDigits := len(strings.TrimPrefix(strings.SplitN(s, ".", 2)[0], "-"))
		want := reMoney.MatchString(s) && len(s) <= 40 && intDigits <= 30
		if (err == nil) != want {
			t.Fatalf("ParseMoney(%q) = %v, %v; want ok %v", s, m, err, want)
		}
		if err != nil {
			if ErrorCode(err) != EINVALID || !utf8.ValidString(ErrorMessage(err)) {
				t.Fatalf("ParseMoney(%q): error %v", s, err)
			}
			return
		}
		// Two decimals exactly, and the printed form parses to the same.
		if !m.Decimal().Equal(m.Decimal().Round(2)) {
			t.Fatalf("ParseMoney(%q) = %s: more than 2 decimals", s, m)
		}
		// (Up to ParseMoney's 40 characters: "…9.00" may be longer than
		// the input it came from.)
		if back, err := ParseMoney(m.String()); len(m.String()) <= 40 && (err != nil || back.Cmp(m) != 0) {
			t.Fatalf("ParseMoney(%q).String() = %q does not parse back: %v", s, m, err)
		}
		a, err := ParseAmount(s)
		inRange := m.Sign() > 0 && m.Cmp(MaxAmount) <= 0
		if (err == nil) != inRange || (err == nil && a.Cmp(m) != 0) {
			t.Fatalf("ParseAmount(%q) = %v, %v; ParseMoney %s, in range %v", s, a, err, m, inRange)
		}
	})
}

func FuzzMoneyJSON(f *testing.F) {
	for _, s := range []string{`"600000.00"`, `"-1.5"`, `600000`, `null`, `"1e3"`, `"\u0031.00"`, `""`, `"`, `{}`, `["1"]`, `"1.001"`, `true`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var direct Money
		derr := direct.UnmarshalJSON(b) // as a decoder might call it, on any bytes
		if derr != nil && ErrorCode(derr) != EINVALID {
			t.Fatalf("UnmarshalJSON(%q): %v is not invalid", b, derr)
		}
		var m Money
		if err := json.Unmarshal(b, &m); err != nil {
			return
		}
		if derr != nil {
			t.Fatalf("json.Unmarshal took %q that UnmarshalJSON refused: %v", b, derr)
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^"-?[0-9]+\.[0-9]{2}"$`).Match(out) {
			t.Fatalf("%q marshals as %s", b, out)
		}
		var back Money
		if err := json.Unmarshal(out, &back); err != nil || back.Cmp(m) != 0 {
			t.Fatalf("%s does not round-trip: %v %v", out, back, err)
		}
		if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
			return
		}
		// Only JSON strings are amounts: never a number.
		if b := bytes.TrimSpace(b); len(b) == 0 || b[0] != '"' {
			t.Fatalf("%q decoded as an amount", b)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add(TypeGrantApplied, []byte(`{"grant_id":"g0123456789abcdef","talent_id":"t0123456789abcdef","program_id":"housing","amount_requested":"600000.00","applied_on":"2024-01-03"}`))
	f.Add(TypeProgramDefined, []byte(`{"program_id":"housing","caps":{"A":"1.00"},"schedule":{"percentages":["40",30,"3e1"]}}`))
	f.Add(TypeGrantApproved, []byte(`{"installments":[{"n":1,"amount":"1.00"}],"award":"2.00","amount":"-1.00"}`))
	f.Add(TypePrincipalCreated, []byte(`{"principal_id":"wang.li","roles":["clerk"],"token_sha256":"00"}`))
	f.Add(TypeIdempotencyRecorded, []byte(`{"key":"k","status":201,"response":{"id":"x"}}`))
	f.Add(TypeFundEstablished, []byte(`{"concentration_limit_pct":"20"}`))
	f.Add("Unknown", []byte(`{}`))
	f.Add(TypeTalentRegistered, []byte(`{"name":1}`))
	f.Add(TypeBudgetReserved, []byte(`null`))
	f.Add(TypeRecoveryWaived, []byte(`{"amount":600000.00}`))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		e, err := DecodeEvent(typ, data)
		if err != nil {
			return
		}
		if e.EventType() != typ {
			t.Fatalf("DecodeEvent(%q) gave a %s", typ, e.EventType())
		}
		// What decodes encodes, and decodes again to the same.
		once, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("%s: marshal: %v", typ, err)
		}
		again, err := DecodeEvent(typ, once)
		if err != nil {
			t.Fatalf("%s: %s does not decode again: %v", typ, once, err)
		}
		twice, err := json.Marshal(again)
		if err != nil || !bytes.Equal(once, twice) {
			t.Fatalf("%s: not stable:\n%s\n%s", typ, once, twice)
		}
		_ = Postings(e) // never panics on a decodable event
	})
}

func TestTruncateCutsBetweenCharacters(t *testing.T) {
	for _, s := range []string{"長長長長長長長長長長長長長長長長長長長長", "aé" + "長長長長長長長長長長長長長長長長長長長長"} {
		for n := 0; n < len(s)+2; n++ {
			if got := truncate(s, n); !utf8.ValidString(got) {
				t.Fatalf("truncate(%q, %d) = %q", s, n, got)
			}
		}
	}
	_, err := ParseDate(strings.Repeat("長", 30))
	if msg := ErrorMessage(err); strings.Contains(msg, `\x`) {
		t.Errorf("message %q quotes a cut character", msg)
	}
}
