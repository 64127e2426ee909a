package http

import (
	"net/http"
	"testing"

	"talentledger/domain"
)

// TestEveryCodeHasAStatus checks the one list of error codes: each code
// once, with a meaning, and answered with an error status, so a code can
// never fall through to a 500 unless it means one.
func TestEveryCodeHasAStatus(t *testing.T) {
	if len(domain.Codes) < 10 {
		t.Fatalf("only %d error codes listed", len(domain.Codes))
	}
	seen := map[string]bool{}
	for _, c := range domain.Codes {
		if seen[c.Code] {
			t.Errorf("%q is listed twice", c.Code)
		}
		seen[c.Code] = true
		if c.Meaning == "" {
			t.Errorf("%q has no meaning", c.Code)
		}
		if c.Status < 400 || c.Status > 599 || http.StatusText(c.Status) == "" {
			t.Errorf("%q answers with status %d", c.Code, c.Status)
		}
		if codes[c.Code] != c.Status {
			t.Errorf("%q: the status table says %d, the list %d", c.Code, codes[c.Code], c.Status)
		}
		if (c.Status == http.StatusInternalServerError) != (c.Code == domain.EINTERNAL) {
			t.Errorf("%q answers with %d: only %q is a 500", c.Code, c.Status, domain.EINTERNAL)
		}
	}
	if len(codes) != len(domain.Codes) {
		t.Errorf("the status table has %d codes, the list %d", len(codes), len(domain.Codes))
	}
}

// TestRoutesAnswerOnlyListedCodes checks that every code a route is
// documented to answer is in the list.
func TestRoutesAnswerOnlyListedCodes(t *testing.T) {
	for _, rt := range New(Config{}).routes {
		k := rt.Method + " " + rt.Path
		for _, c := range rt.doc.Errors {
			if _, ok := codes[c]; !ok {
				t.Errorf("%s answers %q, which is not in domain.Codes", k, c)
			}
		}
	}
}
