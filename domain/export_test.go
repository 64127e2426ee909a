package domain

// Hooks for the tests of package domain_test, which compare the
// aggregates with the read models folded from the same events.

// Sample is one sample event and the stream it goes to.
type Sample struct {
	Stream string
	Event  Event
}

// Samples returns one sample of every event type, in the catalogue's
// order.
func Samples() []Sample {
	var out []Sample
	for _, s := range sampleList() {
		out = append(out, Sample{s.stream, s.event})
	}
	return out
}

// FoldGrant folds a grant stream's events as the grant aggregate does and
// returns the grant's state and each payment's, by payment ID.
func FoldGrant(evs []Event) (string, map[string]string) {
	g := newGrant().(*grant)
	for _, e := range evs {
		g.apply(e)
	}
	payments := map[string]string{}
	for id, p := range g.payments {
		payments[id] = p.state
	}
	return g.state, payments
}

// FoldFund folds a fund stream's events as the fund aggregate does and
// returns each investment's state, by investment ID.
func FoldFund(evs []Event) map[string]string {
	f := newFund().(*fund)
	for _, e := range evs {
		f.apply(e)
	}
	out := map[string]string{}
	for id, inv := range f.investments {
		out[id] = inv.state
	}
	return out
}

// FoldPrincipal folds a principal stream's events as the principal
// aggregate does and returns its access.
func FoldPrincipal(evs []Event) PrincipalAccess {
	p := newPrincipal().(*principal)
	for _, e := range evs {
		p.apply(e)
	}
	return p.PrincipalAccess
}
