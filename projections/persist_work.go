package projections

import (
	"encoding/json"
	"fmt"

	"talentledger/domain"
	"talentledger/projections/viewstore"
)

// The work model on disk, one key for each thing that grows with the
// ledger, written when it changed:
//
//	g/<n>          the n-th grant applied for: its view, who entered it,
//	               whether an objection was upheld
//	p/<n>          the n-th payment prepared: its grant and ID
//	t/<id>         a talent's name and bank account
//	n/<program>    a program's notice days
//	r/<reference>  what the bank moved under a reference: released
//	               payments and recoveries, in the order recorded
//	s/<n>          the n-th bank statement reconciled, with its lines
//
// (n in 16 hex digits, so that keys sort in order). The queues, the
// payments register and statement matching scan every grant and payment,
// so Open reads the whole model back into memory; what statements matched
// is worked out again from the statements.
const workSchema = 1

// workDisk is what changed since the last Save. Its methods do nothing on
// a nil workDisk: the model then lives in memory only.
type workDisk struct {
	grants   map[*workGrant]bool
	talents  map[string]bool
	programs map[string]bool
	refs     map[string]bool
	// payments and statements are appended to, never changed: how many
	// of each are saved.
	payments, statements int
}

func (d *workDisk) grantChanged(g *workGrant) {
	if d != nil {
		d.grants[g] = true
	}
}

func (d *workDisk) talentChanged(id string) {
	if d != nil {
		d.talents[id] = true
	}
}

func (d *workDisk) programChanged(id string) {
	if d != nil {
		d.programs[id] = true
	}
}

func (d *workDisk) refChanged(ref string) {
	if d != nil {
		d.refs[ref] = true
	}
}

// workGrantStored is a grant as the work model stores it.
type workGrantStored struct {
	grantStored
	AppliedBy string `json:"applied_by"`
	Upheld    bool   `json:"upheld,omitempty"`
}

type workTalentStored struct {
	Name        string `json:"name"`
	BankAccount string `json:"bank_account,omitempty"`
	BankName    string `json:"bank_name,omitempty"`
}

// bankItemStored is a released payment or a recovery as stored, its
// amount in fen.
type bankItemStored struct {
	Kind    string `json:"kind"`
	Grant   string `json:"grant"`
	Payment string `json:"payment,omitempty"`
	Amount  int64  `json:"amount"`
}

// Schema implements Persistent.
func (w *Work) Schema() uint32 { return workSchema }

// Open implements Persistent: it reads the whole model.
func (w *Work) Open(vs *viewstore.Model) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := &workDisk{grants: map[*workGrant]bool{}, talents: map[string]bool{}, programs: map[string]bool{}, refs: map[string]bool{}}
	var bad error
	scan := func(prefix string, f func(k string, v []byte) error) error {
		err := vs.Scan([]byte(prefix), func(k, v []byte) bool {
			if err := f(string(k[len(prefix):]), v); err != nil {
				bad = fmt.Errorf("work: stored %s%s unreadable: %w", prefix, k[len(prefix):], err)
				return false
			}
			return true
		})
		if err != nil {
			return err
		}
		return bad
	}
	err := scan("n/", func(k string, v []byte) error {
		var days int
		err := json.Unmarshal(v, &days)
		w.notice[k] = days
		return err
	})
	if err == nil {
		err = scan("t/", func(k string, v []byte) error {
			var t workTalentStored
			err := json.Unmarshal(v, &t)
			w.talents[k] = &workTalent{name: t.Name, bankAccount: t.BankAccount, bankName: t.BankName}
			return err
		})
	}
	if err == nil {
		err = scan("g/", func(k string, v []byte) error {
			var s workGrantStored
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			view, err := s.restore()
			if err != nil {
				return err
			}
			if k != string(orderKey("", len(w.grants))) {
				return fmt.Errorf("grant %d missing", len(w.grants))
			}
			g := &workGrant{seq: len(w.grants), view: *view, appliedBy: s.AppliedBy, upheld: s.Upheld}
			w.grants = append(w.grants, g)
			w.byID[g.view.ID] = g
			return nil
		})
	}
	if err == nil {
		err = scan("p/", func(k string, v []byte) error {
			var ids [2]string
			if err := json.Unmarshal(v, &ids); err != nil {
				return err
			}
			g := w.byID[ids[0]]
			switch {
			case k != string(orderKey("", len(w.payments))):
				return fmt.Errorf("payment %d missing", len(w.payments))
			case g == nil || g.payment(ids[1]) == nil:
				return fmt.Errorf("payment %s of grant %s not found", ids[1], ids[0])
			}
			w.payments = append(w.payments, &workPayment{seq: len(w.payments), grant: g, id: ids[1]})
			return nil
		})
	}
	if err == nil {
		err = scan("r/", func(ref string, v []byte) error {
			var items []bankItemStored
			if err := json.Unmarshal(v, &items); err != nil {
				return err
			}
			for _, it := range items {
				g := w.byID[it.Grant]
				if g == nil {
					return fmt.Errorf("grant %s not found", it.Grant)
				}
				w.byRef[ref] = append(w.byRef[ref], &bankItem{kind: it.Kind, grant: g, paymentID: it.Payment, amount: it.Amount,
					key: matchKey(it.Kind, it.Payment, it.Grant, ref)})
			}
			return nil
		})
	}
	if err == nil {
		err = scan("s/", func(k string, v []byte) error {
			s := &domain.BankStatementReconciled{}
			if err := json.Unmarshal(v, s); err != nil {
				return err
			}
			if k != string(orderKey("", len(w.statements))) {
				return fmt.Errorf("statement %d missing", len(w.statements))
			}
			w.applyStatement(s)
			return nil
		})
	}
	if err != nil {
		return err
	}
	d.payments, d.statements = len(w.payments), len(w.statements)
	w.disk = d
	return nil
}

// Save implements Persistent.
func (w *Work) Save(b *viewstore.Batch) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.disk
	for g := range d.grants {
		v, err := json.Marshal(workGrantStored{grantStored: storedGrant(&g.view), AppliedBy: g.appliedBy, Upheld: g.upheld})
		if err != nil {
			return err
		}
		b.Set(orderKey("g/", g.seq), v)
	}
	for id := range d.talents {
		t := w.talents[id]
		v, err := json.Marshal(workTalentStored{Name: t.name, BankAccount: t.bankAccount, BankName: t.bankName})
		if err != nil {
			return err
		}
		b.Set([]byte("t/"+id), v)
	}
	for id := range d.programs {
		v, err := json.Marshal(w.notice[id])
		if err != nil {
			return err
		}
		b.Set([]byte("n/"+id), v)
	}
	for ref := range d.refs {
		items := make([]bankItemStored, len(w.byRef[ref]))
		for i, it := range w.byRef[ref] {
			items[i] = bankItemStored{Kind: it.kind, Grant: it.grant.view.ID, Payment: it.paymentID, Amount: it.amount}
		}
		v, err := json.Marshal(items)
		if err != nil {
			return err
		}
		b.Set([]byte("r/"+ref), v)
	}
	for ; d.payments < len(w.payments); d.payments++ {
		wp := w.payments[d.payments]
		v, err := json.Marshal([2]string{wp.grant.view.ID, wp.id})
		if err != nil {
			return err
		}
		b.Set(orderKey("p/", d.payments), v)
	}
	for ; d.statements < len(w.statements); d.statements++ {
		v, err := json.Marshal(w.statements[d.statements])
		if err != nil {
			return err
		}
		b.Set(orderKey("s/", d.statements), v)
	}
	clear(d.grants)
	clear(d.talents)
	clear(d.programs)
	clear(d.refs)
	return nil
}

// The talent index on disk: "e/<n>" (n in 16 hex digits) the n-th talent
// registered, its name and employer folded, category, tier, overseas,
// registration and departure; written when it changed, read back whole at
// start, since a search scans every talent.
const talentIndexSchema = 1

type talentEntryStored struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Employer     string `json:"employer"`
	Category     string `json:"category,omitempty"`
	Tier         string `json:"tier"`
	Overseas     bool   `json:"overseas,omitempty"`
	Departed     string `json:"departed,omitempty"`
	RegisteredOn string `json:"registered_on"`
}

// Schema implements Persistent.
func (x *TalentIndex) Schema() uint32 { return talentIndexSchema }

// Open implements Persistent: it reads the whole index.
func (x *TalentIndex) Open(vs *viewstore.Model) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	var bad error
	err := vs.Scan([]byte("e/"), func(k, v []byte) bool {
		var s talentEntryStored
		if err := json.Unmarshal(v, &s); err != nil {
			bad = fmt.Errorf("talent_index: stored talent unreadable: %w", err)
			return false
		}
		if string(k[2:]) != string(orderKey("", len(x.entries))) {
			bad = fmt.Errorf("talent_index: talent %d missing", len(x.entries))
			return false
		}
		t := &talentEntry{seq: len(x.entries), id: s.ID, name: s.Name, employer: s.Employer, category: s.Category, tier: s.Tier,
			overseas: s.Overseas, departed: s.Departed, registeredOn: s.RegisteredOn}
		x.entries = append(x.entries, t)
		x.byID[t.id] = t
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return err
	}
	x.dirty = map[*talentEntry]bool{}
	return nil
}

// Save implements Persistent.
func (x *TalentIndex) Save(b *viewstore.Batch) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for t := range x.dirty {
		v, err := json.Marshal(talentEntryStored{ID: t.id, Name: t.name, Employer: t.employer, Category: t.category, Tier: t.tier,
			Overseas: t.overseas, Departed: t.departed, RegisteredOn: t.registeredOn})
		if err != nil {
			return err
		}
		b.Set(orderKey("e/", t.seq), v)
	}
	clear(x.dirty)
	return nil
}

var (
	_ Persistent = (*Work)(nil)
	_ Persistent = (*TalentIndex)(nil)
)
