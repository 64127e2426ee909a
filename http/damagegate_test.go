package http_test

import (
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"

	"talentledger/domain"
	"talentledger/projections"
	"talentledger/projections/projectionstest"
)

// The first query to meet damage in the views store must not answer what
// it read around it: the read models stop, and that query too is answered
// 503, not with the rows it could still read.
func TestFirstQueryMeetingDamageIsNotServed(t *testing.T) {
	dir := t.TempDir()
	views := filepath.Join(dir, "views")
	e := newTestServer(t, inDir(dir), withViews(views))
	e.setupProgram(quickProgram("transit", "5000.00"), "100000.00")
	var grants []string
	for _, name := range []string{"Ada", "Bo"} {
		grants = append(grants, e.approvedGrant(e.registerTalent(name, "C"), "transit", "5000.00"))
	}
	for _, g := range grants {
		e.pay(g, 1, "2024-02-06", clerk1, approver1, treasurer1)
	}
	var page struct {
		Total int `json:"total"`
	}
	page = decodeAs[struct {
		Total int `json:"total"`
	}](t, e.as(auditor).get("/v1/payments"))
	if page.Total != 2 {
		t.Fatalf("before the damage the register lists %d payments, want 2", page.Total)
	}
	e.close()

	// Damage every stored payment record of the work model.
	schema := projections.New(nil, slog.New(slog.NewTextHandler(io.Discard, nil))).Work().Schema()
	if projectionstest.DamageRecords(t, views, "work", schema, "p/") == 0 {
		t.Fatal("no payment record in the work model's store")
	}

	e2 := newTestServer(t, inDir(dir), withViews(views))
	if err := e2.proj.Stopped(); err != nil {
		t.Fatalf("the damage was found before any query (%v): this test no longer reaches the first query", err)
	}
	wantProblem(t, e2.as(auditor).get("/v1/payments"), http.StatusServiceUnavailable, domain.EUNAVAILABLE)
	wantProblem(t, e2.as(auditor).get("/v1/payments"), http.StatusServiceUnavailable, domain.EUNAVAILABLE)
}
