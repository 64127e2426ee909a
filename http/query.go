package http

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/projections"
)

// Query parameters are checked before any handler runs: a parameter the
// route does not take, one given twice, an empty one, or one whose value is
// not of its kind is refused with 400, naming the parameter and what it
// allows, and nothing is read or written. A filter's values are matched
// case-insensitively and handed to the handler in their canonical form.
//
// The routes' parameters are the Query lists of their docs in the route
// table; what each one is
// (its kind, allowed values, description) is paramDoc's answer, which is
// also what the API description shows, so the two cannot drift.

// Codes of refused query parameters.
const (
	// EUNKNOWNPARAM: the route takes no parameter of that name.
	EUNKNOWNPARAM = domain.EUNKNOWNPARAM
	// EBADPARAM: the parameter's value is not one it allows; the code of
	// every invalid input, as for bodies.
	EBADPARAM = domain.EINVALID
)

// ParamKind is the type of a query parameter's value.
type ParamKind int

// Kinds of query parameters.
const (
	ParamString    ParamKind = iota // any text up to 200 characters
	ParamInt                        // a whole number from Min to Max
	ParamDate                       // YYYY-MM-DD
	ParamTimestamp                  // RFC 3339
	ParamPosition                   // a global log position
	ParamMoney                      // an amount with at most 2 decimals
	ParamEnum                       // one of Enum, case-insensitive
	ParamBool                       // true or false
)

// Param describes one query parameter.
type Param struct {
	Kind ParamKind
	// Enum lists a ParamEnum's values in their canonical form.
	Enum []string
	// Min and Max bound a ParamInt.
	Min, Max int
	Desc     string
}

// maxParamLen bounds a text parameter.
const maxParamLen = 200

// commonParams describes the parameters that mean the same on every
// route that takes them.
var commonParams = map[string]Param{
	"min_position":   {Kind: ParamPosition, Desc: "wait (bounded) until the read models have applied this log position, to read one's own writes"},
	"as_of":          {Kind: ParamDate, Desc: "the books as they stand at the end of this business date (YYYY-MM-DD): events effective on or before it"},
	"recorded_as_of": {Kind: ParamTimestamp, Desc: "the books as recorded by this instant (RFC 3339): events recorded at or before it"},
	"limit":          {Kind: ParamInt, Min: 1, Max: 1000, Desc: "the page size, 1 to 1000 (default 100)"},
	"offset":         {Kind: ParamInt, Min: 0, Max: 1 << 30, Desc: "how many matching items to skip"},
	"cursor":         {Kind: ParamString, Desc: "the next_cursor of the previous page; the other filters must be the same"},
	"program":        {Kind: ParamString, Desc: "a program's ID"},
	"talent":         {Kind: ParamString, Desc: "a talent's ID"},
	"grant":          {Kind: ParamString, Desc: "a grant's ID"},
	"fund":           {Kind: ParamString, Desc: "a fund's ID"},
	"sector":         {Kind: ParamString, Desc: "a sector"},
	"fiscal_year":    {Kind: ParamInt, Min: 2000, Max: 2100, Desc: "a fiscal year"},
	"min_amount":     {Kind: ParamMoney, Desc: "at least this amount (CNY)"},
	"max_amount":     {Kind: ParamMoney, Desc: "at most this amount (CNY)"},
	"tree_size":      {Kind: ParamInt, Min: 0, Max: 1 << 62, Desc: "the size of the tree the answer is drawn from (default: the latest)"},
	"position":       {Kind: ParamPosition, Desc: "the log position of the event"},
	"lang":           {Kind: ParamEnum, Enum: []string{"zh", "en"}, Desc: "the language of headers and labels (default zh)"},
}

// routeParams describes parameters whose meaning is the route's own, keyed
// "METHOD path name".
var routeParams = map[string]Param{
	"GET /v1/ledger/subsidiary control":       {Kind: ParamEnum, Enum: domain.ControlAccounts, Desc: "one control account's subsidiary ledger (default: every one)"},
	"GET /v1/ledger/subsidiary talent":        {Kind: ParamString, Desc: "a talent's accounts only"},
	"GET /v1/grants state":                    {Kind: ParamEnum, Enum: domain.GrantStates, Desc: "the grant's state"},
	"GET /v1/grants applied_from":             {Kind: ParamDate, Desc: "applied on or after this date"},
	"GET /v1/grants applied_to":               {Kind: ParamDate, Desc: "applied on or before this date"},
	"GET /v1/grants approved_from":            {Kind: ParamDate, Desc: "approved on or after this date"},
	"GET /v1/grants approved_to":              {Kind: ParamDate, Desc: "approved on or before this date"},
	"GET /v1/payments state":                  {Kind: ParamEnum, Enum: projections.PaymentStates, Desc: "the payment's state"},
	"GET /v1/payments due_from":               {Kind: ParamDate, Desc: "its installment due on or after this date"},
	"GET /v1/payments due_to":                 {Kind: ParamDate, Desc: "its installment due on or before this date"},
	"GET /v1/payments released_from":          {Kind: ParamDate, Desc: "released on or after this date"},
	"GET /v1/payments released_to":            {Kind: ParamDate, Desc: "released on or before this date"},
	"GET /v1/payments fiscal_year":            {Kind: ParamInt, Min: 2000, Max: 2100, Desc: "the year charged: the release's once released, else the installment's"},
	"GET /v1/installments state":              {Kind: ParamEnum, Enum: projections.InstallmentStates, Desc: "the installment's state"},
	"GET /v1/installments due_from":           {Kind: ParamDate, Desc: "due on or after this date"},
	"GET /v1/installments due_to":             {Kind: ParamDate, Desc: "due on or before this date"},
	"GET /v1/payments/bank-file batch":        {Kind: ParamString, Desc: "the release batch's name, as POST /v1/payments/batch-release answered it (required)"},
	"GET /v1/payments/bank-file columns":      {Kind: ParamString, Desc: "the columns, comma-separated, in order, from payee_name, account, bank, amount, reference, released_on, payment_id, program, grant, installment (default: the first five)"},
	"GET /v1/export/journal.csv lang":         {Kind: ParamEnum, Enum: []string{"en", "zh"}, Desc: "the header's language (default en, as the columns' names; zh: Chinese)"},
	"GET /v1/export/grants.csv lang":          {Kind: ParamEnum, Enum: []string{"en", "zh"}, Desc: "the header's language (default en, as the columns' names; zh: Chinese)"},
	"GET /v1/talents name":                    {Kind: ParamString, Desc: "any part of the name, case- and width-insensitive"},
	"GET /v1/talents employer":                {Kind: ParamString, Desc: "any part of the employer's name, case- and width-insensitive"},
	"GET /v1/talents permit_category":         {Kind: ParamEnum, Enum: domain.PermitCategories, Desc: "the foreign work permit category"},
	"GET /v1/talents tier":                    {Kind: ParamEnum, Enum: domain.Tiers, Desc: "the local talent tier"},
	"GET /v1/talents overseas_engineer":       {Kind: ParamBool, Desc: "provincial overseas engineers only (true) or none of them (false)"},
	"GET /v1/talents departed":                {Kind: ParamBool, Desc: "talents who have departed (true) or not (false)"},
	"GET /v1/talents registered_from":         {Kind: ParamDate, Desc: "registered on or after this date"},
	"GET /v1/talents registered_to":           {Kind: ParamDate, Desc: "registered on or before this date"},
	"GET /v1/projects status":                 {Kind: ParamEnum, Enum: investmentStates, Desc: "the investment's status"},
	"GET /v1/funds/{id}/projects status":      {Kind: ParamEnum, Enum: investmentStates, Desc: "the investment's status"},
	"GET /v1/audit/proofs/consistency from":   {Kind: ParamInt, Min: 0, Max: 1 << 62, Desc: "the older tree size"},
	"GET /v1/audit/proofs/consistency to":     {Kind: ParamInt, Min: 0, Max: 1 << 62, Desc: "the newer tree size"},
	"GET /v1/export/journal.csv from":         {Kind: ParamDate, Desc: "the first effective date (inclusive)"},
	"GET /v1/export/journal.csv to":           {Kind: ParamDate, Desc: "the last effective date (inclusive)"},
	"GET /v1/audit/proofs/inclusion position": {Kind: ParamPosition, Desc: "the log position of the event to prove"},
	"GET /v1/reports/payments.xlsx from":      {Kind: ParamDate, Desc: "the first release date of the period (inclusive; default: from the first payment)"},
	"GET /v1/reports/payments.xlsx to":        {Kind: ParamDate, Desc: "the last release date of the period (inclusive; default: the report's date, ?as_of= or today)"},
	"GET /v1/reports/payments.csv from":       {Kind: ParamDate, Desc: "the first release date of the period (inclusive; default: from the first payment)"},
	"GET /v1/reports/payments.csv to":         {Kind: ParamDate, Desc: "the last release date of the period (inclusive; default: the report's date, ?as_of= or today)"},
}

var investmentStates = []string{domain.InvestmentApprovedState, domain.InvestmentFundedState, domain.InvestmentExited, domain.InvestmentWrittenOff}

// paramDoc returns what the parameter name is on the route key
// ("METHOD path").
func paramDoc(key, name string) Param {
	if p, ok := routeParams[key+" "+name]; ok {
		return p
	}
	if p, ok := commonParams[name]; ok {
		return p
	}
	return Param{Kind: ParamString}
}

// ParamError is a refused query parameter. It is a domain error with code
// EUNKNOWNPARAM or EBADPARAM, and names the parameter and what it allows.
type ParamError struct {
	Err     *domain.Error
	Param   string
	Allowed []string
}

func (e *ParamError) Error() string { return e.Err.Error() }

// Unwrap exposes the domain error, so the code and message are found as
// for any other.
func (e *ParamError) Unwrap() error { return e.Err }

func paramErrorf(code, name string, allowed []string, format string, args ...any) *ParamError {
	return &ParamError{Err: &domain.Error{Code: code, Message: fmt.Sprintf(format, args...)}, Param: name, Allowed: allowed}
}

// routeQuery lists the query parameters of a route: its doc's Query, and
// min_position on every query of the API, which every one honours (the
// guard waits when its handler does not).
func routeQuery(rt Route) []string {
	q := rt.doc.Query
	if rt.Method == "GET" && strings.HasPrefix(rt.Path, "/v1/") && !slices.Contains(q, "min_position") {
		q = append([]string{"min_position"}, q...)
	}
	return q
}

// checkQuery checks the request's query against the route's parameters
// and returns it with filter values in canonical form.
func checkQuery(rt Route, q url.Values) (url.Values, error) {
	key := rt.Method + " " + rt.Path
	allowed := routeQuery(rt)
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	sort.Strings(names) // the same request is refused for the same reason
	out := make(url.Values, len(q))
	for _, name := range names {
		vs := q[name]
		if !slices.Contains(allowed, name) {
			shown := name
			if len(shown) > 40 {
				shown = shown[:40] + "…"
			}
			shown = strings.ToValidUTF8(shown, "?")
			if len(allowed) == 0 {
				return nil, paramErrorf(EUNKNOWNPARAM, shown, []string{}, "this endpoint takes no query parameter; %q is not one", shown)
			}
			return nil, paramErrorf(EUNKNOWNPARAM, shown, allowed, "%q is not a parameter of this endpoint; it takes %s", shown, strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return nil, paramErrorf(EBADPARAM, name, nil, "%s is given %d times; give it once", name, len(vs))
		}
		v, err := checkParam(name, paramDoc(key, name), vs[0])
		if err != nil {
			return nil, err
		}
		out[name] = []string{v}
	}
	return out, nil
}

// checkParam checks one value and returns its canonical form.
func checkParam(name string, p Param, v string) (string, error) {
	bad := func(want string, allowed []string) error {
		shown := v
		if len(shown) > 40 {
			shown = shown[:40] + "…"
		}
		if !utf8.ValidString(shown) {
			shown = strings.ToValidUTF8(shown, "?")
		}
		return paramErrorf(EBADPARAM, name, allowed, "%s=%q: %s must be %s", name, shown, name, want)
	}
	if v == "" {
		return "", bad("given a value (or left out)", p.Enum)
	}
	switch p.Kind {
	case ParamString:
		if len(v) > maxParamLen || domain.TextProblem(v) != "" {
			return "", bad(fmt.Sprintf("printable text of at most %d bytes", maxParamLen), nil)
		}
	case ParamInt:
		n, ok := eventstore.ParseUint(v)
		if !ok || n < uint64(p.Min) || n > uint64(p.Max) {
			return "", bad(fmt.Sprintf("a whole number from %d to %d", p.Min, p.Max), nil)
		}
	case ParamDate:
		if _, err := domain.ParseDate(v); err != nil {
			return "", bad("a date like 2024-03-01 between 2000 and 2100", nil)
		}
	case ParamTimestamp:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || t.Year() < 2000 || t.Year() > 2100 {
			return "", bad("an RFC 3339 time like 2024-03-01T18:00:00+08:00", nil)
		}
	case ParamPosition:
		if _, err := eventstore.ParsePosition(v); err != nil {
			return "", bad("a log position such as 42", nil)
		}
	case ParamMoney:
		if m, err := domain.ParseMoney(v); err != nil || m.Sign() < 0 {
			return "", bad("an amount such as 1000.00, not negative, with at most 2 decimals", nil)
		}
	case ParamBool:
		switch strings.ToLower(v) {
		case "true", "false":
			return strings.ToLower(v), nil
		}
		return "", bad("true or false", []string{"true", "false"})
	case ParamEnum:
		for _, e := range p.Enum {
			if strings.EqualFold(e, v) {
				return e, nil
			}
		}
		return "", bad("one of "+strings.Join(p.Enum, ", "), p.Enum)
	}
	return v, nil
}

// strictQuery refuses a request whose query the route does not take, and
// otherwise hands the handler the query in canonical form. It reports
// whether the request may go on.
func (s *Server) strictQuery(w http.ResponseWriter, r *http.Request, rt Route) (*http.Request, bool) {
	if r.URL.RawQuery == "" {
		return r, true
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.Error(w, r, paramErrorf(EBADPARAM, "", nil, "the query string is malformed"))
		return r, false
	}
	canon, err := checkQuery(rt, q)
	if err != nil {
		s.Error(w, r, err)
		return r, false
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.RawQuery = canon.Encode()
	r2.URL = &u
	return r2, true
}

// paramSchema is a parameter's JSON Schema in the API description.
func paramSchema(p Param) map[string]any {
	switch p.Kind {
	case ParamInt:
		return map[string]any{"type": "integer", "minimum": p.Min, "maximum": p.Max}
	case ParamDate:
		return map[string]any{"type": "string", "format": "date"}
	case ParamTimestamp:
		return map[string]any{"type": "string", "format": "date-time"}
	case ParamPosition:
		return schemaPosition
	case ParamMoney:
		return schemaMoney
	case ParamEnum:
		return map[string]any{"type": "string", "enum": p.Enum}
	case ParamBool:
		return map[string]any{"type": "boolean"}
	}
	return map[string]any{"type": "string", "maxLength": maxParamLen}
}
