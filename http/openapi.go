package http

import (
	"net/http"
	"regexp"
	"strings"
)

func (s *Server) registerExtraRoutes() {
	s.handle("GET", "/openapi.json", nil, "this API's description", s.handleOpenAPI)
}

var reParam = regexp.MustCompile(`\{([a-z]+)\}`)

// handleOpenAPI describes every route from the route table, so the document
// cannot drift from what is registered.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	paths := map[string]map[string]any{}
	for _, rt := range s.routes {
		ops := paths[rt.Path]
		if ops == nil {
			ops = map[string]any{}
			paths[rt.Path] = ops
		}
		op := map[string]any{"summary": rt.Summary}
		var params []any
		for _, m := range reParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]string{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		responses := map[string]any{"default": map[string]any{"description": "problem+json error with a stable code",
			"content": map[string]any{"application/problem+json": map[string]any{"schema": map[string]string{"$ref": "#/components/schemas/Problem"}}}}}
		if rt.Method == "POST" {
			responses["200"] = map[string]any{"description": "done: the id and the log position written"}
			op["parameters"] = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "schema": map[string]string{"type": "string"}})
		} else {
			responses["200"] = map[string]any{"description": "ok"}
		}
		op["responses"] = responses
		if rt.Roles != nil {
			op["security"] = []any{map[string]any{"bearer": []string{}}}
			op["x-roles"] = rt.Roles
		}
		ops[strings.ToLower(rt.Method)] = op
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info":    map[string]string{"title": "talentledger", "version": "1"},
		"paths":   paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]string{"type": "http", "scheme": "bearer"}},
			"schemas": map[string]any{"Problem": map[string]any{"type": "object", "properties": map[string]any{
				"type": map[string]string{"type": "string"}, "title": map[string]string{"type": "string"},
				"status": map[string]string{"type": "integer"}, "detail": map[string]string{"type": "string"},
				"code": map[string]string{"type": "string"}, "request_id": map[string]string{"type": "string"},
			}}},
		},
	}
	writeJSON(w, http.StatusOK, doc)
}
