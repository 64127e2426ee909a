package http

import (
	"net/http"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/projections"
)

func (s *Server) registerProgramRoutes() {
	s.handle("POST", "/v1/programs", []string{domain.RoleAdmin}, "define a subsidy program", s.command(s.handleProgramCreate),
		routeDoc{Request: programRequest{}, Response: created{}, Status: 201, Errors: []string{domain.ECONFLICT, domain.ENOTFOUND}})
	s.handle("GET", "/v1/programs", AnyRole, "list programs with their budgets (?as_of=, ?recorded_as_of=)", s.handleProgramList,
		routeDoc{Response: programListAnswer{}, Query: qPointTime})
	s.handle("GET", "/v1/programs/{id}", AnyRole, "one program with its budgets (?as_of=, ?recorded_as_of=)", s.handleProgramGet,
		routeDoc{Response: projections.ProgramView{}, Query: qPointTime, Errors: []string{domain.ENOTFOUND}})
	s.handle("POST", "/v1/programs/{id}/budgets", []string{domain.RoleApprover}, "appropriate a fiscal year's budget", s.command(s.handleBudgetAppropriate),
		routeDoc{Request: budgetRequest{}, Response: created{}, Status: 201, Errors: []string{domain.ENOTFOUND, domain.EINSUFFICIENTFUNDS, domain.EYEARCLOSED}})
	s.handle("GET", "/v1/programs/{id}/budgets/{fy}", AnyRole, "a budget's execution: appropriated, carried over, reserved, paid, available, forward commitments, execution rate (?as_of=, ?recorded_as_of=)", s.handleBudgetGet,
		routeDoc{Response: projections.BudgetView{}, Query: qPointTime, Errors: []string{domain.ENOTFOUND}})
	s.handle("POST", "/v1/programs/{id}/budgets/{fy}/close", []string{domain.RoleApprover}, "request a fiscal year's year-end close, naming the reservations to carry over", s.command(s.handleCloseRequest),
		routeDoc{Request: closeRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, domain.EYEARCLOSED}})
	s.handle("GET", "/v1/programs/{id}/budgets/{fy}/commitments", AnyRole, "the forward commitments to a fiscal year, in the order they are covered: the basis of its budget request (?as_of=, ?recorded_as_of=)", s.handleCommitments,
		routeDoc{Response: commitmentsAnswer{}, Query: qPointTime, Errors: []string{domain.ENOTFOUND}})
	s.handle("POST", "/v1/programs/{id}/budgets/{fy}/adjustments", []string{domain.RoleApprover}, "request a budget adjustment: increase, decrease, or transfer to another program's budget of the year", s.command(s.handleAdjustmentRequest),
		routeDoc{Request: adjustmentRequest{}, Response: created{}, Status: 201, Errors: []string{domain.ENOTFOUND, domain.EINSUFFICIENTFUNDS, domain.EYEARCLOSED}})
	s.handle("POST", "/v1/programs/{id}/budgets/{fy}/adjustments/{aid}/approve", []string{domain.RoleApprover}, "approve a budget adjustment (another approver)", s.command(s.handleAdjustmentApprove),
		routeDoc{Request: commandFields{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, domain.ESEGREGATION, domain.EINSUFFICIENTFUNDS, domain.EYEARCLOSED}})
	s.handle("POST", "/v1/programs/{id}/budgets/{fy}/close/confirm", []string{domain.RoleApprover}, "confirm a requested year-end close (another approver)", s.command(s.handleCloseConfirm),
		routeDoc{Request: commandFields{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, domain.ESEGREGATION, domain.EYEARCLOSED}})
}

type adjustmentRequest struct {
	commandFields
	// Kind is "increase", "decrease" or "transfer".
	Kind   string       `json:"kind"`
	Amount domain.Money `json:"amount"`
	// ToProgram is the program a transfer goes to.
	ToProgram string `json:"to_program,omitempty"`
}

func (s *Server) handleAdjustmentRequest(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req adjustmentRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	fy, err := pathInt(mux.Vars(r)["fy"], "fiscal year")
	if err != nil {
		return 0, nil, err
	}
	res, err := s.svc.RequestBudgetAdjustment(r.Context(), domain.AdjustBudget{Meta: req.meta(m), ProgramID: mux.Vars(r)["id"],
		FiscalYear: fy, Kind: req.Kind, Amount: req.Amount, ToProgram: req.ToProgram})
	return http.StatusCreated, answer(res), err
}

func (s *Server) handleAdjustmentApprove(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req commandFields
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	v := mux.Vars(r)
	fy, err := pathInt(v["fy"], "fiscal year")
	if err != nil {
		return 0, nil, err
	}
	res, err := s.svc.ApproveBudgetAdjustment(r.Context(), domain.AdjustBudget{Meta: req.meta(m), ProgramID: v["id"],
		FiscalYear: fy, AdjustmentID: v["aid"]})
	return http.StatusOK, answer(res), err
}

type closeRequest struct {
	commandFields
	// CarryOver lists the reservations carried over (结转) to the next
	// year, each with its reason; every other unpaid one lapses (结余).
	CarryOver []domain.CarryOver `json:"carry_over"`
}

func (s *Server) handleCloseRequest(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req closeRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	fy, err := pathInt(mux.Vars(r)["fy"], "fiscal year")
	if err != nil {
		return 0, nil, err
	}
	res, err := s.svc.RequestYearEndClose(r.Context(), domain.YearEndCommand{
		Meta: req.meta(m), ProgramID: mux.Vars(r)["id"], FiscalYear: fy, CarryOver: req.CarryOver})
	return http.StatusOK, answer(res), err
}

func (s *Server) handleCloseConfirm(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req commandFields
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	fy, err := pathInt(mux.Vars(r)["fy"], "fiscal year")
	if err != nil {
		return 0, nil, err
	}
	res, err := s.svc.ConfirmYearEndClose(r.Context(), domain.YearEndCommand{
		Meta: req.meta(m), ProgramID: mux.Vars(r)["id"], FiscalYear: fy})
	return http.StatusOK, answer(res), err
}

type programRequest struct {
	commandFields
	ID               string                  `json:"id"`
	Name             string                  `json:"name"`
	Kind             string                  `json:"kind"`
	Caps             map[string]domain.Money `json:"caps"`
	Schedule         domain.Schedule         `json:"schedule"`
	ServiceMonths    int                     `json:"service_months"`
	NoticeDays       int                     `json:"notice_days"`
	PermitCategories []string                `json:"permit_categories"`
	DeductKinds      []string                `json:"deduct_kinds"`
	FundingSource    string                  `json:"funding_source"`
	// Entitlement is what one talent may receive in a lifetime.
	Entitlement domain.Entitlement `json:"entitlement"`
	// RetentionMonths is how long a talent's personal data is kept after
	// a grant's last movement of money before it may be erased.
	RetentionMonths int `json:"retention_months"`
}

func (s *Server) handleProgramCreate(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req programRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.DefineProgram(r.Context(), domain.DefineProgram{
		Meta: req.meta(m), ProgramID: req.ID, Name: req.Name, Kind: req.Kind, Caps: req.Caps, Schedule: req.Schedule,
		ServiceMonths: req.ServiceMonths, NoticeDays: req.NoticeDays, PermitCategories: req.PermitCategories,
		DeductKinds: req.DeductKinds, FundingSource: req.FundingSource, Entitlement: req.Entitlement,
		RetentionMonths: req.RetentionMonths,
	})
	return http.StatusCreated, answer(res), err
}

func (s *Server) handleProgramList(w http.ResponseWriter, r *http.Request) {
	v, pt, ok := s.budgetQuery(w, r, "", 0)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, stamp(map[string]any{"programs": v.Programs(), "position": v.Position().String()}, pt))
}

func (s *Server) handleProgramGet(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	v, _, ok := s.budgetQuery(w, r, id, 0)
	if !ok {
		return
	}
	p, ok := v.Program(id)
	if !ok {
		s.Error(w, r, domain.Errorf(domain.ENOTFOUND, "program %q not found", clip(id)))
		return
	}
	writeJSON(w, http.StatusOK, p)
}

type budgetRequest struct {
	commandFields
	FiscalYear int          `json:"fiscal_year"`
	Amount     domain.Money `json:"amount"`
}

func (s *Server) handleBudgetAppropriate(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
	var req budgetRequest
	if err := decode(body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.AppropriateBudget(r.Context(), domain.AppropriateBudget{
		Meta: req.meta(m), ProgramID: mux.Vars(r)["id"], FiscalYear: req.FiscalYear, Amount: req.Amount})
	return http.StatusCreated, answer(res), err
}

func (s *Server) handleBudgetGet(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	fy, err := pathInt(v["fy"], "fiscal year")
	if err != nil {
		s.Error(w, r, err)
		return
	}
	models, _, ok := s.budgetQuery(w, r, v["id"], fy)
	if !ok {
		return
	}
	b, ok := models.Budget(v["id"], fy)
	if !ok {
		s.Error(w, r, domain.Errorf(domain.ENOTFOUND, "no budget for program %q in %d", clip(v["id"]), fy))
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) handleCommitments(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	fy, err := pathInt(v["fy"], "fiscal year")
	if err != nil {
		s.Error(w, r, err)
		return
	}
	models, _, ok := s.query(w, r)
	if !ok {
		return
	}
	if _, ok := models.Program(v["id"]); !ok {
		s.Error(w, r, domain.Errorf(domain.ENOTFOUND, "program %q not found", clip(v["id"])))
		return
	}
	b, _ := models.Budget(v["id"], fy)
	writeJSON(w, http.StatusOK, commitmentsAnswer{ProgramID: v["id"], FiscalYear: fy, Budget: b, Commitments: models.Commitments(v["id"], fy)})
}

// commitmentsAnswer is a fiscal year's forward commitments with its
// budget's figures.
type commitmentsAnswer struct {
	ProgramID   string                       `json:"program_id"`
	FiscalYear  int                          `json:"fiscal_year"`
	Budget      projections.BudgetView       `json:"budget"`
	Commitments []projections.CommitmentView `json:"commitments"`
}

// clip shortens an echoed identifier so error messages stay small.
func clip(s string) string {
	if len(s) <= 60 {
		return s
	}
	n := 60
	for n > 0 && !utf8.RuneStart(s[n]) {
		n-- // never cut inside a character
	}
	return s[:n] + "…"
}
