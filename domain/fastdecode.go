package domain

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// The events every grant's journey and every keyed command write are
// decoded on each replay, each cold start and after each append, so their
// decoding is on the hot path. encoding/json decodes them through
// reflection at several microseconds an event; the decoders below read the
// compact form encoding/json writes directly.
//
// They are strict: an object of the type's own keys, in any order, each at
// most once, whose values are strings without escapes or control
// characters, plain integers, booleans, amounts, or the nested values the
// type has (null only for a list). Anything else (white space, escapes,
// null elsewhere, an unknown or differently-cased key, a number with a
// fraction or an exponent, trailing bytes, invalid UTF-8, an amount
// ParseMoney refuses) makes them give up, and DecodeEvent decodes with
// encoding/json instead, so the result, and every error, is always what
// encoding/json gives. FuzzFastDecode checks that they agree.

// fastDecoders decode the frequent event types; see decodeFast.
var fastDecoders = map[string]func(r *jreader) Event{
	TypeGrantApplied: func(r *jreader) Event {
		e := &GrantApplied{}
		r.object(func(k []byte) bool {
			switch string(k) {
			case "grant_id":
				return r.field(0) && r.str(&e.GrantID)
			case "talent_id":
				return r.field(1) && r.str(&e.TalentID)
			case "program_id":
				return r.field(2) && r.str(&e.ProgramID)
			case "amount_requested":
				return r.field(3) && r.money(&e.AmountRequested)
			case "applied_on":
				return r.field(4) && r.str(&e.AppliedOn)
			}
			return false
		})
		return e
	},
	TypeGrantReviewed: func(r *jreader) Event {
		e := &GrantReviewed{}
		r.object(func(k []byte) bool {
			switch string(k) {
			case "grant_id":
				return r.field(0) && r.str(&e.GrantID)
			case "decision":
				return r.field(1) && r.str(&e.Decision)
			case "note":
				return r.field(2) && r.str(&e.Note)
			}
			return false
		})
		return e
	},
	TypePublicNoticeOpened: func(r *jreader) Event {
		e := &PublicNoticeOpened{}
		r.object(func(k []byte) bool {
			switch string(k) {
			case "grant_id":
				return r.field(0) && r.str(&e.GrantID)
			case "opened_on":
				return r.field(1) && r.str(&e.OpenedOn)
			}
			return false
		})
		return e
	},
	TypePublicNoticeClosed: func(r *jreader) Event {
		e := &PublicNoticeClosed{}
		r.object(func(k []byte) bool {
			switch string(k) {
			case "grant_id":
				return r.field(0) && r.str(&e.GrantID)
			case "closed_on":
				return r.field(1) && r.str(&e.ClosedOn)
			}
			return false
		})
		return e
	},
	TypeGrantApproved + ".v2": func(r *jreader) Event {
		e := &GrantApproved{}
		r.grantApproved(e)
		return e
	},
	TypeBudgetReserved: func(r *jreader) Event {
		e := &BudgetReserved{}
		r.object(func(k []byte) bool {
			switch string(k) {
			case "program_id":
				return r.field(0) && r.str(&e.ProgramID)
			case "fiscal_year":
				return r.field(1) && r.int(&e.FiscalYear)
			case "grant_id":
				return r.field(2) && r.str(&e.GrantID)
			case "talent_id":
				return r.field(3) && r.str(&e.TalentID)
			case "amount":
				return r.field(4) && r.money(&e.Amount)
			case "command_id":
				return r.field(5) && r.str(&e.CommandID)
			case "approval":
				if !r.field(6) {
					return false
				}
				outer := r.seen
				r.seen = 0
				r.grantApproved(&e.Approval)
				r.seen = outer
				return r.ok
			}
			return false
		})
		return e
	},
	TypeEntitlementReserved + ".v2": func(r *jreader) Event {
		e := &EntitlementReserved{}
		r.object(func(k []byte) bool {
			switch string(k) {
			case "talent_id":
				return r.field(0) && r.str(&e.TalentID)
			case "program_id":
				return r.field(1) && r.str(&e.ProgramID)
			case "kind":
				return r.field(2) && r.str(&e.Kind)
			case "grant_id":
				return r.field(3) && r.str(&e.GrantID)
			case "approval":
				if !r.field(4) {
					return false
				}
				outer := r.seen
				r.seen = 0
				r.grantApproved(&e.Approval)
				r.seen = outer
				return r.ok
			}
			return false
		})
		return e
	},
	TypePaymentPrepared: func(r *jreader) Event {
		e := &PaymentPrepared{}
		r.object(func(k []byte) bool {
			switch string(k) {
			case "grant_id":
				return r.field(0) && r.str(&e.GrantID)
			case "payment_id":
				return r.field(1) && r.str(&e.PaymentID)
			case "installment":
				return r.field(2) && r.int(&e.Installment)
			case "amount":
				return r.field(3) && r.money(&e.Amount)
			}
			return false
		})
		return e
	},
	TypePaymentApproved: func(r *jreader) Event {
		e := &PaymentApproved{}
		r.object(func(k []byte) bool {
			switch string(k) {
			case "grant_id":
				return r.field(0) && r.str(&e.GrantID)
			case "payment_id":
				return r.field(1) && r.str(&e.PaymentID)
			}
			return false
		})
		return e
	},
	TypePaymentReleased: func(r *jreader) Event {
		e := &PaymentReleased{}
		r.paymentReleased(e)
		return e
	},
	TypePaymentCharged: func(r *jreader) Event {
		e := &PaymentCharged{}
		r.object(func(k []byte) bool {
			switch string(k) {
			case "program_id":
				return r.field(0) && r.str(&e.ProgramID)
			case "fiscal_year":
				return r.field(1) && r.int(&e.FiscalYear)
			case "grant_id":
				return r.field(2) && r.str(&e.GrantID)
			case "talent_id":
				return r.field(3) && r.str(&e.TalentID)
			case "payment_id":
				return r.field(4) && r.str(&e.PaymentID)
			case "installment":
				return r.field(5) && r.int(&e.Installment)
			case "amount":
				return r.field(6) && r.money(&e.Amount)
			case "command_id":
				return r.field(7) && r.str(&e.CommandID)
			case "release":
				if !r.field(8) {
					return false
				}
				outer := r.seen
				r.paymentReleased(&e.Release)
				r.seen = outer
				return r.ok
			}
			return false
		})
		return e
	},
	TypeTalentKeyCreated: func(r *jreader) Event {
		e := &TalentKeyCreated{}
		r.object(func(k []byte) bool {
			switch string(k) {
			case "talent_id":
				return r.field(0) && r.str(&e.TalentID)
			case "key_id":
				return r.field(1) && r.str(&e.KeyID)
			}
			return false
		})
		return e
	},
	TypeTalentRegistered: func(r *jreader) Event {
		e := &TalentRegistered{}
		r.object(func(k []byte) bool {
			switch string(k) {
			case "talent_id":
				return r.field(0) && r.str(&e.TalentID)
			case "name":
				return r.field(1) && r.str(&e.Name)
			case "permit_category":
				return r.field(2) && r.str(&e.PermitCategory)
			case "tier":
				return r.field(3) && r.str(&e.Tier)
			case "employer":
				return r.field(4) && r.str(&e.Employer)
			case "overseas_engineer":
				return r.field(5) && r.bool(&e.OverseasEngineer)
			case "registered_on":
				return r.field(6) && r.str(&e.RegisteredOn)
			case "bank_account":
				return r.field(7) && r.str(&e.BankAccount)
			case "bank_name":
				return r.field(8) && r.str(&e.BankName)
			case "id_number":
				return r.field(9) && r.str(&e.IDNumber)
			case "date_of_birth":
				return r.field(10) && r.str(&e.DateOfBirth)
			case "phone":
				return r.field(11) && r.str(&e.Phone)
			case "email":
				return r.field(12) && r.str(&e.Email)
			case "address":
				return r.field(13) && r.str(&e.Address)
			}
			return false
		})
		return e
	},
	TypeIdempotencyRecorded: func(r *jreader) Event {
		e := &IdempotencyRecorded{}
		r.object(func(k []byte) bool {
			switch string(k) {
			case "key":
				return r.field(0) && r.str(&e.Key)
			case "request_hash":
				return r.field(1) && r.str(&e.RequestHash)
			case "status":
				return r.field(2) && r.int(&e.Status)
			case "response":
				return r.field(3) && r.raw(&e.Response)
			}
			return false
		})
		return e
	},
}

// decodeFast decodes data as typ with a fast decoder, reporting false when
// there is none for typ or it gave up.
func decodeFast(typ string, data []byte) (Event, bool) {
	d := fastDecoders[typ]
	if d == nil {
		return nil, false
	}
	r := &jreader{b: data, ok: true}
	e := d(r)
	if !r.ok || r.i != len(r.b) {
		return nil, false
	}
	return e, true
}

// jreader reads strict compact JSON; ok turns false, for good, at the
// first thing it does not accept.
type jreader struct {
	b    []byte
	i    int
	ok   bool
	seen uint64 // fields of the current object already read
}

func (r *jreader) fail() bool {
	r.ok = false
	return false
}

// field marks field n of the current object read, failing on a repeat.
func (r *jreader) field(n uint) bool {
	if r.seen&(1<<n) != 0 {
		return r.fail()
	}
	r.seen |= 1 << n
	return true
}

func (r *jreader) next(c byte) bool {
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return r.fail()
}

// object reads {"key":value,...}, calling value for each key with r at
// the value; value reads it and reports whether it could.
func (r *jreader) object(value func(key []byte) bool) {
	if !r.next('{') {
		return
	}
	r.seen = 0
	if r.i < len(r.b) && r.b[r.i] == '}' {
		r.i++
		return
	}
	for r.ok {
		k, ok := r.strBytes()
		if !ok || !r.next(':') || !value(k) {
			r.fail()
			return
		}
		if r.i >= len(r.b) {
			r.fail()
			return
		}
		switch r.b[r.i] {
		case ',':
			r.i++
		case '}':
			r.i++
			return
		default:
			r.fail()
			return
		}
	}
}

// strBytes reads a string without escapes or control characters and
// returns its bytes, which alias the input.
func (r *jreader) strBytes() ([]byte, bool) {
	if !r.next('"') {
		return nil, false
	}
	start := r.i
	ascii := true
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			s := r.b[start:r.i]
			r.i++
			if !ascii && !utf8.Valid(s) {
				return nil, r.fail()
			}
			return s, true
		case c == '\\' || c < 0x20:
			return nil, r.fail()
		case c >= 0x80:
			ascii = false
		}
		r.i++
	}
	return nil, r.fail()
}

func (r *jreader) str(dst *string) bool {
	s, ok := r.strBytes()
	if ok {
		*dst = string(s)
	}
	return ok
}

func (r *jreader) money(dst *Money) bool {
	s, ok := r.strBytes()
	if !ok {
		return false
	}
	m, err := ParseMoney(string(s))
	if err != nil {
		return r.fail()
	}
	*dst = m
	return true
}

// int reads a plain integer: an optional minus, then 0 or digits not
// starting with 0.
func (r *jreader) int(dst *int) bool {
	start := r.i
	if r.i < len(r.b) && r.b[r.i] == '-' {
		r.i++
	}
	digits := r.i
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	if r.i == digits || (r.b[digits] == '0' && r.i-digits > 1) {
		return r.fail()
	}
	if r.i < len(r.b) && (r.b[r.i] == '.' || r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		return r.fail()
	}
	n, err := strconv.ParseInt(string(r.b[start:r.i]), 10, strconv.IntSize)
	if err != nil {
		return r.fail()
	}
	*dst = int(n)
	return true
}

func (r *jreader) bool(dst *bool) bool {
	switch {
	case len(r.b)-r.i >= 4 && string(r.b[r.i:r.i+4]) == "true":
		r.i += 4
		*dst = true
	case len(r.b)-r.i >= 5 && string(r.b[r.i:r.i+5]) == "false":
		r.i += 5
		*dst = false
	default:
		return r.fail()
	}
	return true
}

// null reads a null if there is one; encoding/json decodes it into a slice
// as nil.
func (r *jreader) null() bool {
	if len(r.b)-r.i >= 4 && string(r.b[r.i:r.i+4]) == "null" {
		r.i += 4
		return true
	}
	return false
}

// array reads [elem,...], calling elem for each element.
func (r *jreader) array(elem func() bool) bool {
	if !r.next('[') {
		return false
	}
	if r.i < len(r.b) && r.b[r.i] == ']' {
		r.i++
		return true
	}
	for {
		if !elem() || r.i >= len(r.b) {
			return r.fail()
		}
		switch r.b[r.i] {
		case ',':
			r.i++
		case ']':
			r.i++
			return true
		default:
			return r.fail()
		}
	}
}

// raw reads any JSON value and keeps a copy of its bytes, as encoding/json
// does for a json.RawMessage.
func (r *jreader) raw(dst *json.RawMessage) bool {
	start := r.i
	if !r.skip(0) {
		return false
	}
	v := r.b[start:r.i]
	if !json.Valid(v) {
		return r.fail()
	}
	*dst = append(json.RawMessage(nil), v...)
	return true
}

// skip moves past one value, roughly: raw checks what it skipped with
// json.Valid.
func (r *jreader) skip(depth int) bool {
	if r.i >= len(r.b) || depth > 64 {
		return r.fail()
	}
	switch c := r.b[r.i]; {
	case c == '"':
		r.i++
		for r.i < len(r.b) {
			switch r.b[r.i] {
			case '\\':
				r.i += 2
				continue
			case '"':
				r.i++
				return true
			}
			r.i++
		}
		return r.fail()
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		r.i++
		for r.i < len(r.b) && r.b[r.i] != end {
			if !r.skip(depth + 1) {
				return false
			}
			if r.i < len(r.b) && (r.b[r.i] == ',' || r.b[r.i] == ':') {
				r.i++
			}
		}
		return r.next(end)
	default:
		start := r.i
		for r.i < len(r.b) {
			switch r.b[r.i] {
			case ',', '}', ']', ':':
				return r.i > start || r.fail()
			}
			r.i++
		}
		return r.i > start || r.fail()
	}
}

// paymentReleased reads a PaymentReleased object into e.
func (r *jreader) paymentReleased(e *PaymentReleased) {
	r.object(func(k []byte) bool {
		switch string(k) {
		case "grant_id":
			return r.field(0) && r.str(&e.GrantID)
		case "payment_id":
			return r.field(1) && r.str(&e.PaymentID)
		case "installment":
			return r.field(2) && r.int(&e.Installment)
		case "talent_id":
			return r.field(3) && r.str(&e.TalentID)
		case "program_id":
			return r.field(4) && r.str(&e.ProgramID)
		case "fiscal_year":
			return r.field(5) && r.int(&e.FiscalYear)
		case "amount":
			return r.field(6) && r.money(&e.Amount)
		case "bank_reference":
			return r.field(7) && r.str(&e.BankReference)
		case "released_on":
			return r.field(8) && r.str(&e.ReleasedOn)
		}
		return false
	})
}

// yearShare reads a YearShare object into y.
func (r *jreader) yearShare(y *YearShare) {
	r.object(func(k []byte) bool {
		switch string(k) {
		case "fiscal_year":
			return r.field(0) && r.int(&y.FiscalYear)
		case "amount":
			return r.field(1) && r.money(&y.Amount)
		case "installments":
			if !r.field(2) {
				return false
			}
			if r.null() {
				y.Installments = nil
				return true
			}
			y.Installments = []int{}
			return r.array(func() bool {
				var n int
				if !r.int(&n) {
					return false
				}
				y.Installments = append(y.Installments, n)
				return true
			})
		}
		return false
	})
}

// grantApproved reads a GrantApproved object into e.
func (r *jreader) grantApproved(e *GrantApproved) {
	r.object(func(k []byte) bool {
		switch string(k) {
		case "grant_id":
			return r.field(0) && r.str(&e.GrantID)
		case "talent_id":
			return r.field(1) && r.str(&e.TalentID)
		case "program_id":
			return r.field(2) && r.str(&e.ProgramID)
		case "award":
			return r.field(3) && r.money(&e.Award)
		case "deduction":
			return r.field(4) && r.money(&e.Deduction)
		case "deducted_from":
			if !r.field(5) {
				return false
			}
			if r.null() {
				e.DeductedFrom = nil
				return true
			}
			e.DeductedFrom = []string{}
			return r.array(func() bool {
				var s string
				if !r.str(&s) {
					return false
				}
				e.DeductedFrom = append(e.DeductedFrom, s)
				return true
			})
		case "amount":
			return r.field(6) && r.money(&e.Amount)
		case "fiscal_year":
			return r.field(7) && r.int(&e.FiscalYear)
		case "installments":
			if !r.field(8) {
				return false
			}
			if r.null() {
				e.Installments = nil
				return true
			}
			e.Installments = []Installment{}
			return r.array(func() bool {
				outer := r.seen
				var in Installment
				r.object(func(k []byte) bool {
					switch string(k) {
					case "n":
						return r.field(0) && r.int(&in.N)
					case "amount":
						return r.field(1) && r.money(&in.Amount)
					case "due_date":
						return r.field(2) && r.str(&in.DueDate)
					}
					return false
				})
				r.seen = outer
				e.Installments = append(e.Installments, in)
				return r.ok
			})
		case "service_months":
			return r.field(9) && r.int(&e.ServiceMonths)
		case "service_start":
			return r.field(10) && r.str(&e.ServiceStart)
		case "approved_on":
			return r.field(11) && r.str(&e.ApprovedOn)
		case "command_id":
			return r.field(12) && r.str(&e.CommandID)
		case "years":
			if !r.field(13) {
				return false
			}
			if r.null() {
				e.Years = nil
				return true
			}
			e.Years = []YearShare{}
			return r.array(func() bool {
				outer := r.seen
				var y YearShare
				r.yearShare(&y)
				r.seen = outer
				e.Years = append(e.Years, y)
				return r.ok
			})
		}
		return false
	})
}
