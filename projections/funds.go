package projections

func (p *Projector) initFunds() {}
