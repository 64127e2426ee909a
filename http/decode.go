package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"talentledger/domain"
	"talentledger/eventstore"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 64 << 10

// readBody reads a bounded request body and checks its content type: JSON
// in UTF-8, the only encoding JSON has (RFC 8259), so a body declared in
// another charset is refused rather than read as if it were UTF-8.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return readBodyOf(w, r, "application/json", false, MaxBodyBytes)
}

// readBodyOf reads a body of media type mt (in UTF-8) of at most max
// bytes; required says the Content-Type must be given.
func readBodyOf(w http.ResponseWriter, r *http.Request, want string, required bool, max int64) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" && required {
		return nil, &domain.Error{Code: EUNSUPPORTEDMEDIA, Message: "send " + want + " (the Content-Type is required)"}
	}
	if ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != want {
			return nil, &domain.Error{Code: EUNSUPPORTEDMEDIA, Message: "send " + want}
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return nil, &domain.Error{Code: EUNSUPPORTEDMEDIA, Message: "send " + want + " in UTF-8 (charset=utf-8 or none)"}
		}
	}
	src := io.ReadCloser(r.Body)
	if a := admissionOf(r.Context()); a != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		// A principal's concurrent uploads are few, and each must keep up
		// the minimum rate (fairness.go).
		if a.principal != "" {
			if !a.s.shares.take(a.principal, placeUpload) {
				return nil, busy("you are sending as many request bodies at once as one principal may; retry shortly")
			}
			defer a.s.shares.give(a.principal, placeUpload)
		}
		src = struct {
			io.Reader
			io.Closer
		}{a.s.bodyReader(w, r), r.Body}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, src, max))
	if err != nil {
		var ne net.Error
		if errors.Is(err, errSlowBody) || (errors.As(err, &ne) && ne.Timeout()) {
			return nil, errSlowBody // the rate or the server's read timeout
		}
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, &domain.Error{Code: ETOOLARGE, Message: fmt.Sprintf("the body is larger than %d bytes", max), Err: err}
		}
		return nil, domain.Errorf(domain.EINVALID, "could not read the body")
	}
	return body, nil
}

// strict are the decoding rules of every request body, JSON v2's: member
// names match their field exactly (no case folding), a member given twice
// is refused (so a reader of the canonical key and the ledger never see
// different values), invalid UTF-8 and lone surrogates are refused, and so
// is any member no field takes.
var strict = jsonv2.JoinOptions(jsonv2.DefaultOptionsV2(), jsonv2.RejectUnknownMembers(true))

// decode parses a JSON body into v under the strict rules, then checks
// every string and list in it (checkSizes). A refusal names the field by
// its JSON pointer. An empty body decodes as {}.
func decode(body []byte, v any) error {
	trimmed := bytes.Trim(body, " \t\r\n")
	if len(trimmed) == 0 {
		body = []byte("{}")
	} else if trimmed[0] != '{' {
		return domain.Errorf(domain.EINVALID, "the body must hold one JSON object")
	}
	if err := jsonv2.Unmarshal(body, v, strict); err != nil {
		return decodeError(err)
	}
	return checkSizes(reflect.ValueOf(v), "")
}

// decodeError turns a JSON v2 error into an invalid error naming the
// field.
func decodeError(err error) error {
	var de *domain.Error
	var syn *jsontext.SyntacticError
	var sem *jsonv2.SemanticError
	switch {
	case errors.As(err, &syn):
		ptr := string(syn.JSONPointer)
		switch {
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			return fieldErrorf(ptr, "%s is given twice", quotePointer(ptr))
		case strings.Contains(syn.Err.Error(), "invalid UTF-8"):
			return fieldErrorf(ptr, "%s is not valid UTF-8", quotePointer(ptr))
		case strings.Contains(syn.Err.Error(), "surrogate"):
			return fieldErrorf(ptr, "%s has a lone surrogate", quotePointer(ptr))
		case errors.Is(syn.Err, io.ErrUnexpectedEOF):
			return domain.Errorf(domain.EINVALID, "malformed JSON: unexpected end")
		}
		return fieldErrorf(ptr, "malformed JSON at byte %d", syn.ByteOffset)
	case errors.As(err, &sem):
		ptr := string(sem.JSONPointer)
		switch {
		case errors.As(sem.Err, &de):
			e := *de
			if e.Field == "" {
				e.Field = ptr
			}
			return &e
		case errors.Is(sem.Err, jsonv2.ErrUnknownName):
			return fieldErrorf(ptr, "%s is not a field of this request (names are case-sensitive)", quotePointer(ptr))
		case sem.GoType != nil:
			return fieldErrorf(ptr, "%s must be %s", quotePointer(ptr), kindOf(sem.GoType))
		}
		return fieldErrorf(ptr, "%s is not valid here", quotePointer(ptr))
	case errors.As(err, &de):
		return de
	}
	return domain.Errorf(domain.EINVALID, "malformed JSON")
}

// fieldErrorf is an invalid error about the field at JSON pointer ptr.
func fieldErrorf(ptr, format string, args ...any) *domain.Error {
	e := domain.Errorf(domain.EINVALID, format, args...)
	e.Field = ptr
	return e
}

// quotePointer names a field in a message: its pointer, quoted and cut
// short, or "the body" for the whole.
func quotePointer(ptr string) string {
	if ptr == "" {
		return "the body"
	}
	if len(ptr) > 80 {
		ptr = ptr[:80]
		for len(ptr) > 0 && !utf8.ValidString(ptr) {
			ptr = ptr[:len(ptr)-1]
		}
		ptr += "…"
	}
	return strconv.Quote(ptr)
}

// kindOf says in words what a Go type takes in JSON.
func kindOf(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a " + t.String()
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
	n, ok := eventstore.ParseUint(s)
	if !ok || n > uint64(max) {
		return 0, domain.Errorf(domain.EINVALID, "%s must be a whole number from 0 to %d", name, max)
	}
	return int(n), nil
}

// pathInt parses an integer path variable.
func pathInt(s, name string) (int, error) {
	n, ok := eventstore.ParseUint(s)
	if !ok || n > 1_000_000 {
		return 0, domain.Errorf(domain.EINVALID, "%s must be a whole number", name)
	}
	return int(n), nil
}

// parsePosition parses a min_position value.
func parsePosition(s string) (eventstore.Position, error) {
	p, err := eventstore.ParsePosition(s)
	if err != nil {
		return p, domain.Errorf(domain.EINVALID, "min_position must be a log position such as 42")
	}
	return p, nil
}
