package projections

import (
	"strings"
	"sync"
	"unicode"

	"talentledger/domain"
)

// TalentIndex is the read model that finds talents: by name and employer
// (case- and width-insensitive, so 王小明, ｗａｎｇ and WANG are found as
// typed), permit category, tier, overseas engineers and departures, in
// the order registered. It has its own lock and folds only the talents'
// events; the talents' totals come from the talents view.
type TalentIndex struct {
	mu      sync.RWMutex
	entries []*talentEntry
	byID    map[string]*talentEntry
	// dirty holds the talents changed since the last Save once the
	// index persists (see persist_work.go); nil while it lives in
	// memory only.
	dirty map[*talentEntry]bool
}

type talentEntry struct {
	seq                    int    // its place in entries
	id, name, employer     string // name and employer folded
	category, tier         string
	overseas               bool
	departed, registeredOn string
}

// NewTalentIndex returns an empty talent index.
func NewTalentIndex() *TalentIndex { return &TalentIndex{byID: map[string]*talentEntry{}} }

// Name implements Model.
func (x *TalentIndex) Name() string { return "talent_index" }

// Apply implements Model.
func (x *TalentIndex) Apply(b Batch) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range b.Changes {
		switch e := b.Changes[i].Payload.(type) {
		case *domain.TalentRegistered:
			t := &talentEntry{seq: len(x.entries), id: e.TalentID, name: Fold(e.Name), employer: Fold(e.Employer), category: e.PermitCategory,
				tier: e.Tier, overseas: e.OverseasEngineer, registeredOn: e.RegisteredOn}
			x.entries = append(x.entries, t)
			x.byID[e.TalentID] = t
			x.changed(t)
		case *domain.TalentDeparted:
			if t := x.byID[e.TalentID]; t != nil {
				t.departed = e.DepartureDate
				x.changed(t)
			}
		}
	}
}

// changed notes that t changed since the last Save. x.mu is held.
func (x *TalentIndex) changed(t *talentEntry) {
	if x.dirty != nil {
		x.dirty[t] = true
	}
}

// TalentFilter selects talents; zero fields match all. Name and Employer
// match any part of the name or employer, folded as Fold does.
type TalentFilter struct {
	Name, Employer               string
	PermitCategory, Tier         string
	Overseas, Departed           *bool
	RegisteredFrom, RegisteredTo string
	Offset, Limit                int
}

// Find returns the IDs of the talents that match f, in the order
// registered, from f.Offset, at most f.Limit, and how many match in all.
func (x *TalentIndex) Find(f TalentFilter) (ids []string, total int) {
	name, employer := Fold(f.Name), Fold(f.Employer)
	x.mu.RLock()
	defer x.mu.RUnlock()
	ids = []string{}
	for _, t := range x.entries {
		switch {
		case name != "" && !strings.Contains(t.name, name),
			employer != "" && !strings.Contains(t.employer, employer),
			f.PermitCategory != "" && t.category != f.PermitCategory,
			f.Tier != "" && t.tier != f.Tier,
			f.Overseas != nil && t.overseas != *f.Overseas,
			f.Departed != nil && (t.departed != "") != *f.Departed,
			f.RegisteredFrom != "" && t.registeredOn < f.RegisteredFrom,
			f.RegisteredTo != "" && t.registeredOn > f.RegisteredTo:
			continue
		}
		if total >= f.Offset && len(ids) < f.Limit {
			ids = append(ids, t.id)
		}
		total++
	}
	return ids, total
}

// Fold makes text comparable as a person types it: full-width forms
// become their ASCII letters and digits (ＷＡＮＧ → wang), the ideographic
// space a space, letters lower case, and runs of white space one space.
// Chinese characters are kept as they are.
func Fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E:
			r -= 0xFEE0
		case r == 0x3000:
			r = ' '
		}
		if unicode.IsSpace(r) {
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(unicode.ToLower(r))
	}
	return strings.TrimSuffix(b.String(), " ")
}
