package http_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestStrictBodies sends the ambiguous bodies an attacker would: each is
// refused with the status and code promised, names the field at fault by
// its JSON pointer, and appends nothing. Before JSON v2 decoding, the
// case-folded duplicate recorded the last amount, invalid UTF-8 was stored
// as U+FFFD, NEL and a blank name passed, and a UTF-16 body was read as
// UTF-8.
func TestStrictBodies(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(housingProgram("housing"), "30000000.00")
	talent := e.registerTalent("Sophie Martin", "B")
	grant := `"talent_id": "` + talent + `", "program_id": "housing", "document_ref": "PHRS-APP-1"`

	cases := []struct {
		name, path, body, contentType string
		status                        int
		pointer                       string
	}{
		{"duplicate key, other case", "/v1/grants", `{` + grant + `, "amount_requested": "100.00", "AMOUNT_REQUESTED": "55555.00"}`, "", 400, "/AMOUNT_REQUESTED"},
		{"duplicate key", "/v1/grants", `{` + grant + `, "amount_requested": "100.00", "amount_requested": "55555.00"}`, "", 400, "/amount_requested"},
		{"key in another case alone", "/v1/grants", `{` + grant + `, "Amount_Requested": "100.00"}`, "", 400, "/Amount_Requested"},
		{"duplicate key in a map", "/v1/programs", `{"id": "rent", "name": "Rent", "kind": "rent", "caps": {"A": "1.00", "A": "9.00"}, "schedule": {"monthly_amount": "1.00", "months": 3}}`, "", 400, "/caps/A"},
		{"raw 0xFF", "/v1/talents", "{\"name\": \"Lars\xff\", \"tier\": \"A\", \"employer\": \"X\"}", "", 400, "/name"},
		{"overlong encoding", "/v1/talents", "{\"name\": \"Lars\xc0\xaf\", \"tier\": \"A\", \"employer\": \"X\"}", "", 400, "/name"},
		{"lone surrogate", "/v1/talents", `{"name": "Lars\ud800", "tier": "A", "employer": "X"}`, "", 400, "/name"},
		{"NEL (C1 control)", "/v1/talents", `{"name": "Lars\u0085Nilsson", "tier": "A", "employer": "X"}`, "", 400, "/name"},
		{"C1 control, raw", "/v1/talents", "{\"name\": \"Lars\u009bNilsson\", \"tier\": \"A\", \"employer\": \"X\"}", "", 400, "/name"},
		{"C0 control", "/v1/talents", `{"name": "Lars\u001b[2J", "tier": "A", "employer": "X"}`, "", 400, "/name"},
		{"non-character U+FFFE", "/v1/talents", `{"name": "Lars\ufffe", "tier": "A", "employer": "X"}`, "", 400, "/name"},
		{"non-character U+FDD0", "/v1/talents", `{"name": "Lars", "tier": "A", "employer": "X\ufdd0"}`, "", 400, "/employer"},
		{"non-character U+10FFFF", "/v1/talents", `{"name": "Lars\udbff\udfff", "tier": "A", "employer": "X"}`, "", 400, "/name"},
		{"name of three spaces", "/v1/talents", `{"name": "   ", "tier": "A", "employer": "X"}`, "", 400, "/name"},
		{"blank reason", "/v1/talents", `{"name": "Lars", "tier": "A", "employer": "X", "reason": " \t "}`, "", 400, "/reason"},
		{"empty name", "/v1/talents", `{"name": "", "tier": "A", "employer": "X"}`, "", 400, "/name"},
		{"control in a list", "/v1/programs", `{"id": "rent", "name": "Rent", "kind": "rent", "caps": {"A": "1.00"}, "schedule": {"monthly_amount": "1.00", "months": 3}, "permit_categories": ["a", "b\u0007"]}`, "", 400, "/permit_categories/1"},
		{"wrong type", "/v1/talents", `{"name": "Lars", "tier": "A", "employer": "X", "overseas_engineer": "yes"}`, "", 400, "/overseas_engineer"},
		{"charset=utf-16", "/v1/talents", `{"name": "Lars", "tier": "A", "employer": "X"}`, "application/json; charset=utf-16", 415, ""},
		{"charset=latin1", "/v1/talents", `{"name": "Lars", "tier": "A", "employer": "X"}`, "application/json; charset=latin1", 415, ""},
		{"charset=iso-8859-1", "/v1/talents", `{"name": "Lars", "tier": "A", "employer": "X"}`, "application/json;charset=ISO-8859-1", 415, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.lastPosition()
			r, err := e.send("POST", c.path, request{token: e.tokens[clerk1], body: []byte(c.body), contentType: c.contentType})
			if c.path == "/v1/programs" {
				r, err = e.send("POST", c.path, request{token: e.tokens[admin], body: []byte(c.body), contentType: c.contentType})
			}
			if err != nil {
				t.Fatal(err)
			}
			code := "invalid"
			if c.status == http.StatusUnsupportedMediaType {
				code = "unsupported_media_type"
			}
			wantProblem(t, r, c.status, code)
			var p struct {
				Pointer string `json:"pointer"`
			}
			if err := json.Unmarshal(r.body, &p); err != nil || p.Pointer != c.pointer {
				t.Errorf("%s: pointer %q, want %q", r, p.Pointer, c.pointer)
			}
			if after := e.lastPosition(); after != before {
				t.Errorf("the log moved from %s to %s", before, after)
			}
		})
	}

	// The same bodies, written plainly, are taken: the refusals above are
	// about the encoding, not the content.
	for _, rq := range []request{
		{token: e.tokens[clerk1], body: []byte(`{"name": "Lars Nilsson", "tier": "A", "employer": "X"}`), contentType: "application/json; charset=utf-8"},
		{token: e.tokens[clerk1], body: []byte(`{"name": "Lars Nilsson", "tier": "A", "employer": "X"}`), contentType: "application/json; charset=\"UTF-8\""},
		{token: e.tokens[clerk1], body: []byte(`{"name": "Ünal Çelik 李雷 \ud83d\ude00", "tier": "A", "employer": "X"}`)},
	} {
		r, err := e.send("POST", "/v1/talents", rq)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusCreated {
			t.Errorf("%s: want 201", r)
		}
	}
}

// TestStrictNumbers: a number in a path or a query has one spelling,
// digits only; a sign, a leading zero or a space is refused, never read
// as the number it resembles.
func TestStrictNumbers(t *testing.T) {
	e := newTestServer(t)
	e.setupProgram(housingProgram("housing"), "30000000.00")
	for _, path := range []string{
		"/v1/programs?min_position=+5", "/v1/programs?min_position=-0", "/v1/programs?min_position=05",
		"/v1/programs?min_position=%205", "/v1/grants?limit=+5", "/v1/grants?limit=05", "/v1/grants?offset=-0",
		"/v1/programs/housing/budgets/+2024", "/v1/programs/housing/budgets/02024",
	} {
		r, err := e.send("GET", path, request{token: e.tokens[auditor]})
		if err != nil {
			t.Fatal(err)
		}
		wantProblem(t, r, http.StatusBadRequest, "invalid")
	}
	// The budget is read at the position its appropriation was answered
	// with, so the read models have folded it.
	budget := "/v1/programs/housing/budgets/2024?min_position=" + e.minPosition().String()
	for _, path := range []string{"/v1/grants?limit=5&offset=0", "/v1/programs?min_position=0", budget} {
		r, err := e.send("GET", path, request{token: e.tokens[auditor]})
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusOK {
			t.Errorf("%s: want 200", r)
		}
	}
}
