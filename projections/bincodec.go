package projections

import (
	"encoding/binary"
	"errors"
	"hash/maphash"

	"talentledger/domain"
)

// The stored form of the records the models write most often (a grant's
// installments and payments, the work queues' entries): fields one after
// the other, strings as a length and bytes, numbers as varints, without
// reflection. A record starts with its format's version byte.

var errShortRecord = errors.New("stored record truncated or of another format")

type enc struct{ b []byte }

func (e *enc) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *enc) int(n int64) { e.b = binary.AppendVarint(e.b, n) }

func (e *enc) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) str() string {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || uint64(len(d.b)-k) < n {
		d.fail()
		return ""
	}
	s := string(d.b[k : k+int(n)])
	d.b = d.b[k+int(n):]
	return s
}

func (d *dec) int() int64 {
	n, k := binary.Varint(d.b)
	if k <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return n
}

func (d *dec) bool() bool {
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail()
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

// done reports the first error, or one when bytes are left over.
func (d *dec) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return d.err
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = errShortRecord
	}
	d.b = nil
}

// The installment's and the payment's stored forms, version 1.
const recordV1 = 1

func (e *enc) installment(in *InstallmentView) {
	e.int(int64(in.N))
	e.int(in.fen)
	e.str(in.DueDate)
	e.str(in.State)
	e.str(in.PaymentID)
	e.int(int64(in.FiscalYear))
}

func (d *dec) installment(in *InstallmentView) {
	in.N = int(d.int())
	in.fen = d.int()
	in.DueDate = d.str()
	in.State = d.str()
	in.PaymentID = d.str()
	in.FiscalYear = int(d.int())
}

func (e *enc) payment(p *PaymentView) {
	e.str(p.ID)
	e.str(p.GrantID)
	e.int(int64(p.Installment))
	e.int(p.fen)
	e.str(p.State)
	e.str(p.PreparedBy)
	e.str(p.ApprovedBy)
	e.str(p.ReleasedBy)
	e.str(p.BankReference)
	e.str(p.ReleasedOn)
	e.int(int64(p.FiscalYear))
	e.str(p.Reason)
}

func (d *dec) payment(p *PaymentView) {
	p.ID = d.str()
	p.GrantID = d.str()
	p.Installment = int(d.int())
	p.fen = d.int()
	p.State = d.str()
	p.PreparedBy = d.str()
	p.ApprovedBy = d.str()
	p.ReleasedBy = d.str()
	p.BankReference = d.str()
	p.ReleasedOn = d.str()
	p.FiscalYear = int(d.int())
	p.Reason = d.str()
}

// recordSeed hashes stored records, so that a record is written again only
// when its bytes changed. It is fixed for the process: hashes are kept in
// memory only, never stored.
var recordSeed = maphash.MakeSeed()

func recordHash(b []byte) uint64 { return maphash.Bytes(recordSeed, b) }

// rowMarks notes which of a grant's installments and payments changed
// since it was last saved, so that saving it encodes those rows only: a
// payment's event changes the payment and its installment; any other
// event of the grant may change any row.
type rowMarks struct {
	all        bool
	inst, pays []int // indexes in Installments and Payments
}

// note marks what payload, just folded into g, changed.
func (r *rowMarks) note(g *GrantView, payload domain.Event) {
	if r.all {
		return
	}
	id := ""
	switch e := payload.(type) {
	case *domain.PaymentPrepared:
		id = e.PaymentID
	case *domain.PaymentApproved:
		id = e.PaymentID
	case *domain.PaymentReleased:
		id = e.PaymentID
	case *domain.PaymentFailed:
		id = e.PaymentID
	case *domain.PaymentReversed:
		id = e.PaymentID
		r.inst = append(r.inst, e.Installment-1)
	}
	k := -1
	if id != "" {
		for i := range g.Payments {
			if g.Payments[i].ID == id {
				k = i
			}
		}
	}
	if k < 0 {
		r.all = true
		return
	}
	r.pays = append(r.pays, k)
	r.inst = append(r.inst, g.Payments[k].Installment-1)
}

// each calls inst and pay with the marked rows that exist, then clears
// the marks.
func (r *rowMarks) each(nInst, nPays int, inst, pay func(int)) {
	if r.all {
		for i := range nInst {
			inst(i)
		}
		for k := range nPays {
			pay(k)
		}
	} else {
		for _, i := range r.inst {
			if i >= 0 && i < nInst {
				inst(i)
			}
		}
		for _, k := range r.pays {
			if k >= 0 && k < nPays {
				pay(k)
			}
		}
	}
	r.all, r.inst, r.pays = false, r.inst[:0], r.pays[:0]
}

// saveHash records row i's hash h among hashes and reports whether it
// differs from the one saved.
func saveHash(hashes *[]uint64, i int, h uint64) bool {
	for len(*hashes) <= i {
		*hashes = append(*hashes, 0)
	}
	if (*hashes)[i] == h {
		return false
	}
	(*hashes)[i] = h
	return true
}
