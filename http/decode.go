package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"

	"talentledger/domain"
	"talentledger/eventstore"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 64 << 10

// readBody reads a bounded request body and checks its content type.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, &domain.Error{Code: EUNSUPPORTEDMEDIA, Message: "send application/json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, &domain.Error{Code: ETOOLARGE, Message: fmt.Sprintf("the body is larger than %d bytes", MaxBodyBytes), Err: err}
		}
		return nil, domain.Errorf(domain.EINVALID, "could not read the body")
	}
	return body, nil
}

// decode parses a JSON body into v: unknown fields, trailing data and wrong
// types are refused with a message that names the problem. An empty body
// decodes as {}.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return domain.Errorf(domain.EINVALID, "the body must hold one JSON object")
	}
	return checkSizes(reflect.ValueOf(v), "")
}

func decodeError(err error) error {
	var de *domain.Error
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &de):
		return de
	case errors.As(err, &syn):
		return domain.Errorf(domain.EINVALID, "malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return domain.Errorf(domain.EINVALID, "field %q must be %s", typ.Field, typ.Type.String())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return domain.Errorf(domain.EINVALID, "malformed JSON: unexpected end")
	}
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	// encoding/json reports unknown fields as `json: unknown field "x"`.
	return domain.Errorf(domain.EINVALID, "%s", msg)
}

// writeJSON writes v with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// queryInt parses an optional non-negative integer query parameter.
func queryInt(r *http.Request, name string, def, max int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > max {
		return 0, domain.Errorf(domain.EINVALID, "%s must be a whole number from 0 to %d", name, max)
	}
	return n, nil
}

// pathInt parses an integer path variable.
func pathInt(s, name string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1_000_000 {
		return 0, domain.Errorf(domain.EINVALID, "%s must be a whole number", name)
	}
	return n, nil
}

// parsePosition parses a min_position value.
func parsePosition(s string) (eventstore.Position, error) {
	p, err := eventstore.ParsePosition(s)
	if err != nil {
		return p, domain.Errorf(domain.EINVALID, "min_position must be a log position such as 42")
	}
	return p, nil
}
