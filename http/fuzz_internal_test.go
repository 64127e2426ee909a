package http

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"sort"
	"testing"
	"unicode/utf8"

	"talentledger/domain"
)

// requestTypes are the body types of every command, from the route table.
func requestTypes() []reflect.Type {
	seen := map[reflect.Type]bool{}
	var out []reflect.Type
	docs := map[string]routeDoc{}
	keys := []string{}
	for _, rt := range New(Config{}).routes {
		docs[rt.Method+" "+rt.Path] = rt.doc
		keys = append(keys, rt.Method+" "+rt.Path)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if p := docs[k].Request; p != nil && !seen[reflect.TypeOf(p)] {
			seen[reflect.TypeOf(p)] = true
			out = append(out, reflect.TypeOf(p))
		}
	}
	return out
}

// FuzzDecode decodes any body into every command's request type: the
// answer is a decoded request within the size limits or an invalid
// error with a short, valid message; never a panic, never another code.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{}`, ``, `null`, `{"name":"Lars","tier":"A","employer":"X"}`, `{"amount":"1.00"}`, `{"amount":1}`,
		`{"caps":{"A":"1.00"},"schedule":{"percentages":[40,"30",30]}}`, `{"roles":["clerk","admin"]}`, `{"award":null}`,
		`{"stake_pct":"1e400"}`, `{"concentration_limit_pct":-1}`, `{"reason":"\u0000"}`, `{"x":1}`, `{} {}`, `[1]`, `{"name":"\xff"}`,
		`{"amount":"1.00","AMOUNT":"2.00"}`, `{"amount":"1.00","amount":"2.00"}`, `{"name":"\ud800"}`, `{"name":"\u0085"}`,
		`{"name":"\ufdd0"}`, `{"name":"   "}`, "{\"name\":\"\xc0\xaf\"}",
		`{"roles":[` + string(bytes.Repeat([]byte(`"a",`), 120)) + `"a"]}`} {
		f.Add([]byte(s))
	}
	types := requestTypes()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, typ := range types {
			v := reflect.New(typ).Interface()
			err := decode(body, v)
			if err != nil {
				if code := domain.ErrorCode(err); code != domain.EINVALID {
					t.Fatalf("%s: %q: code %s (%v)", typ, body, code, err)
				}
				if msg := domain.ErrorMessage(err); !utf8.ValidString(msg) || len(msg) > 400 {
					t.Fatalf("%s: message %q", typ, msg)
				}
				continue
			}
			if err := checkSizes(reflect.ValueOf(v), ""); err != nil {
				t.Fatalf("%s: decoded past the limits: %v", typ, err)
			}
			// What decodes, encodes and decodes again.
			out, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s: marshal %+v: %v", typ, v, err)
			}
			if err := decode(out, reflect.New(typ).Interface()); err != nil {
				t.Fatalf("%s: %s decoded from %q does not decode again: %v", typ, out, body, err)
			}
		}
	})
}

// FuzzIdempotencyKey checks the handling of Idempotency-Key: the keys
// accepted are exactly 1–200 printable ASCII characters; a key's command
// ID is 128 bits in hex, fixed for a principal and key, and another
// principal's differs; a request's hash ignores insignificant white space
// in the body but not the path.
func FuzzIdempotencyKey(f *testing.F) {
	f.Add("clerk1", "k", []byte(`{"a": 1}`))
	f.Add("clerk1", "", []byte(``))
	f.Add("a", "idem key with spaces", []byte(`{"a":[1, 2]}`))
	f.Add("wang.li", "ключ", []byte(`not json`))
	f.Add("x", string(bytes.Repeat([]byte("k"), 201)), []byte(`{}`))
	f.Fuzz(func(t *testing.T, principal, key string, body []byte) {
		want := len(key) >= 1 && len(key) <= 200
		for i := 0; i < len(key); i++ {
			want = want && key[i] >= 0x21 && key[i] <= 0x7e
		}
		if got := validIdempotencyKey(key); got != want {
			t.Fatalf("validIdempotencyKey(%q) = %v, want %v", key, got, want)
		}
		id := domain.IdempotencyCommandID(principal, key)
		if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
			t.Fatalf("command ID %q", id)
		}
		if domain.IdempotencyCommandID(principal, key) != id {
			t.Fatal("the command ID changed")
		}
		if domain.ValidPrincipalID(principal) && domain.IdempotencyCommandID(principal+"x", key) == id {
			t.Fatalf("principals %q and %q share a command ID for %q", principal, principal+"x", key)
		}
		r := httptest.NewRequest("POST", "/v1/talents", nil)
		h := requestHash(r, body)
		if json.Valid(body) {
			var spaced bytes.Buffer
			if err := json.Indent(&spaced, body, " ", "\t"); err == nil && requestHash(r, spaced.Bytes()) != h {
				t.Fatalf("white space changed the hash of %q", body)
			}
		}
		if requestHash(httptest.NewRequest("POST", "/v1/grants", nil), body) == h {
			t.Fatal("the path does not count in the hash")
		}
	})
}
