package http

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"

	"talentledger/domain"
	"talentledger/projections"
)

func (s *Server) registerPaymentRoutes() {
	s.handle("GET", "/v1/payments/{id}", AnyRole, "one payment", s.handlePaymentGet,
		routeDoc{Response: projections.PaymentView{}, Query: qPointTime, Errors: []string{domain.ENOTFOUND}})
	s.handle("POST", "/v1/payments/{id}/approve", []string{domain.RoleApprover}, "approve a prepared payment", s.pathCommand(s.paymentCommand(s.svc.ApprovePayment)),
		routeDoc{Request: paymentRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, domain.ESEGREGATION}})
	s.handle("POST", "/v1/payments/{id}/release", []string{domain.RoleTreasurer}, "release an approved payment to the bank", s.pathCommand(s.paymentCommand(s.svc.ReleasePayment)),
		routeDoc{Request: paymentRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, domain.ESEGREGATION, domain.ENOTRESERVED, domain.EYEARCLOSED}})
	s.handle("POST", "/v1/payments/{id}/fail", []string{domain.RoleTreasurer}, "record that the bank did not pay", s.pathCommand(s.paymentCommand(s.svc.FailPayment)),
		routeDoc{Request: paymentRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT}})
	s.handle("POST", "/v1/payments/{id}/reverse", []string{domain.RoleTreasurer}, "reverse a released payment", s.pathCommand(s.paymentCommand(s.svc.ReversePayment)),
		routeDoc{Request: paymentRequest{}, Response: created{}, Errors: []string{domain.ENOTFOUND, domain.ECONFLICT, domain.ESEGREGATION, domain.EYEARCLOSED}})
}

type paymentRequest struct {
	commandFields
	BankReference string `json:"bank_reference"`
}

func (s *Server) paymentCommand(run func(ctx context.Context, c domain.PaymentCommand) (domain.Result, error)) commandFunc {
	return func(r *http.Request, body []byte, m domain.CommandMeta) (int, any, error) {
		var req paymentRequest
		if err := decode(body, &req); err != nil {
			return 0, nil, err
		}
		res, err := run(r.Context(), domain.PaymentCommand{Meta: req.meta(m), PaymentID: mux.Vars(r)["id"],
			BankReference: req.BankReference, Reason: req.Reason})
		return http.StatusOK, answer(res), err
	}
}

func (s *Server) handlePaymentGet(w http.ResponseWriter, r *http.Request) {
	v, _, ok := s.query(w, r)
	if !ok {
		return
	}
	id := mux.Vars(r)["id"]
	if grantID, _, ok := domain.ParsePaymentID(id); ok {
		if g, ok := v.Grant(grantID); ok {
			for _, p := range g.Payments {
				if p.ID == id {
					writeJSON(w, http.StatusOK, p)
					return
				}
			}
		}
	}
	s.Error(w, r, domain.Errorf(domain.ENOTFOUND, "payment %q not found", clip(id)))
}
