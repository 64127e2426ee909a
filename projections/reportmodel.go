package projections

import (
	"sort"
	"sync"

	"talentledger/domain"
	"talentledger/eventstore"
)

// Reports, the report model, keeps what the finance bureau's reports need beyond
// the budget views: per program and fiscal year the reservations released
// and the clawbacks recovered, and every clawback with its date, for the
// receivables' ageing. It has its own lock and applies only the events it
// needs; its amounts are in fen.
type Reports struct {
	tally
	mu sync.RWMutex
	// program of each grant, and each talent's name.
	grantProgram map[string]string
	talentName   map[string]string
	released     map[budgetKey]int64
	recovered    map[budgetKey]int64
	clawbacks    map[string]*clawback
	clawOrder    []string
	// dirty holds what changed since the last Save once the model
	// persists (see persist_reports.go); nil while it lives in memory
	// only.
	dirty *reportsDirty
}

// clawback is a grant's clawback as the model keeps it, amounts in fen.
type clawback struct {
	talent, program, assessedOn string
	assessed, recovered, waived int64
}

// ClawbackRow is one grant's clawback: assessed, recovered, waived and
// outstanding, and how old the receivable is.
type ClawbackRow struct {
	GrantID     string       `json:"grant_id"`
	TalentID    string       `json:"talent_id"`
	TalentName  string       `json:"talent_name"`
	ProgramID   string       `json:"program_id"`
	AssessedOn  string       `json:"assessed_on"`
	Assessed    domain.Money `json:"assessed"`
	Recovered   domain.Money `json:"recovered"`
	Waived      domain.Money `json:"waived"`
	Outstanding domain.Money `json:"outstanding"`
	// AgeDays is the days from the assessment to the report's date, and
	// Bucket its ageing band: 0-90, 91-180, 181-365, over_365.
	AgeDays int    `json:"age_days"`
	Bucket  string `json:"bucket"`
}

// AgeingBuckets are the bands of the clawbacks' ageing, in order.
var AgeingBuckets = []string{"0-90", "91-180", "181-365", "over_365"}

func bucketOf(days int) string {
	switch {
	case days <= 90:
		return AgeingBuckets[0]
	case days <= 180:
		return AgeingBuckets[1]
	case days <= 365:
		return AgeingBuckets[2]
	}
	return AgeingBuckets[3]
}

// NewReports returns an empty report model.
func NewReports() *Reports {
	return &Reports{grantProgram: map[string]string{}, talentName: map[string]string{},
		released: map[budgetKey]int64{}, recovered: map[budgetKey]int64{}, clawbacks: map[string]*clawback{}}
}

// Name implements Model.
func (m *Reports) Name() string { return "reports" }

// Apply implements Model.
func (m *Reports) Apply(b Batch) {
	for i := range b.Changes {
		m.apply(b.Changes[i].Event, b.Changes[i].Payload)
	}
}

var _ Model = (*Reports)(nil)

func (m *Reports) apply(ev *eventstore.Event, payload domain.Event) {
	switch payload.(type) {
	case *domain.TalentRegistered, *domain.GrantApplied, *domain.BudgetReservationReleased,
		*domain.ClawbackAssessed, *domain.RecoveryReceived, *domain.RecoveryWaived:
	default:
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch e := payload.(type) {
	case *domain.TalentRegistered:
		m.talentName[e.TalentID] = e.Name
		m.dirty.talent(e.TalentID)
	case *domain.GrantApplied:
		m.grantProgram[e.GrantID] = e.ProgramID
		m.dirty.grant(e.GrantID)
	case *domain.BudgetReservationReleased:
		if e.Uncovered {
			// A forward commitment the year never covered: nothing of
			// its budget was reserved, so nothing is released.
			return
		}
		k := budgetKey{e.ProgramID, e.FiscalYear}
		m.released[k] = m.addM(m.released[k], e.Amount)
		m.dirty.budget(k)
	case *domain.ClawbackAssessed:
		c := m.clawbacks[e.GrantID]
		if c == nil {
			c = &clawback{talent: e.TalentID, program: m.grantProgram[e.GrantID], assessedOn: EffectiveDate(ev)}
			m.clawbacks[e.GrantID] = c
			m.clawOrder = append(m.clawOrder, e.GrantID)
		}
		c.assessed = m.addM(c.assessed, e.Amount)
		m.dirty.clawback(e.GrantID)
	case *domain.RecoveryReceived:
		k := budgetKey{m.grantProgram[e.GrantID], e.FiscalYear}
		m.recovered[k] = m.addM(m.recovered[k], e.Amount)
		m.dirty.budget(k)
		if c := m.clawbacks[e.GrantID]; c != nil {
			c.recovered = m.addM(c.recovered, e.Amount)
			m.dirty.clawback(e.GrantID)
		}
	case *domain.RecoveryWaived:
		if c := m.clawbacks[e.GrantID]; c != nil {
			c.waived = m.addM(c.waived, e.Amount)
			m.dirty.clawback(e.GrantID)
		}
	}
}

// BudgetExtras returns what a budget released and recovered.
func (m *Reports) BudgetExtras(program string, fy int) (released, recovered domain.Money) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	k := budgetKey{program, fy}
	return money(m.released[k]), money(m.recovered[k])
}

// Clawbacks lists the clawbacks with something outstanding (or every
// one, with all), oldest assessment first, aged to asOf.
func (m *Reports) Clawbacks(asOf string, all bool) []ClawbackRow {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []ClawbackRow{}
	for _, id := range m.clawOrder {
		x := m.clawbacks[id]
		c := ClawbackRow{GrantID: id, TalentID: x.talent, ProgramID: x.program, AssessedOn: x.assessedOn, Assessed: money(x.assessed),
			Recovered: money(x.recovered), Waived: money(x.waived)}
		c.Outstanding = c.Assessed.Sub(c.Recovered).Sub(c.Waived)
		if !all && c.Outstanding.Sign() <= 0 {
			continue
		}
		c.TalentName = m.talentName[c.TalentID]
		c.AgeDays = max(0, daysBetween(c.AssessedOn, asOf))
		c.Bucket = bucketOf(c.AgeDays)
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].AssessedOn < out[j].AssessedOn })
	return out
}
