package http_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	ledgerhttp "talentledger/http"
)

// syncBuffer is a buffer the server's goroutines may write while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// TestLogsCarryNoSecrets captures every log line of a few requests and
// checks that no token, body or query content reaches the log, while each
// request line says who asked for what and how it ended.
func TestLogsCarryNoSecrets(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newTestServer(t, withLogger(log))

	const (
		name     = "Quokka Secretname"
		employer = "Undisclosed Employer 7c1f"
		docRef   = "DOC-PRIVATE-0042"
		passport = "E99887766"
		query    = "querymarker31337"
		idNumber = "330482199001019876"
		account  = "6222020200198765432"
		phone    = "13977776666"
	)
	badToken := "leaked-" + ledgerhttp.NewToken()

	type sent struct {
		r         *response
		principal string
		route     string
	}
	var reqs []sent
	do := func(principal, route string, r *response) {
		reqs = append(reqs, sent{r, principal, route})
	}

	r := e.as(clerk1).post("/v1/talents", map[string]any{"name": name, "tier": "B", "employer": employer, "document_ref": docRef,
		"id_number": idNumber, "bank_account": account, "phone": phone}, "idem-private-1")
	if r.status != http.StatusCreated {
		t.Fatalf("%s: want 201", r)
	}
	talent := decodeAs[answer](t, r).ID
	do(clerk1, "POST /v1/talents", r)

	r, err := e.send("POST", "/v1/talents", request{token: badToken, body: []byte(`{"name": "` + name + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, r, http.StatusUnauthorized, "unauthenticated")
	do("", "POST /v1/talents", r)

	r = e.as(clerk1).post("/v1/talents", `{"name": "`+name+`", "tier": "B", "employer": "X", "passport": "`+passport+`"}`)
	wantProblem(t, r, http.StatusBadRequest, "invalid")
	do(clerk1, "POST /v1/talents", r)

	r = e.as(auditor).get("/v1/talents/" + talent)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), name) {
		t.Fatalf("%s: want 200 with the talent's name", r)
	}
	do(auditor, "GET /v1/talents/{id}", r)

	r = e.as(clerk1).post("/v1/talents", map[string]any{"name": name, "tier": "B", "employer": employer, "id_number": "bad\u0000" + idNumber})
	wantProblem(t, r, http.StatusBadRequest, "invalid")
	do(clerk1, "POST /v1/talents", r)

	r = e.as(auditor).post("/v1/talents/"+talent+"/unmask", map[string]any{"reason": "checking " + name})
	if r.status != http.StatusOK || !strings.Contains(string(r.body), account) {
		t.Fatalf("%s: want 200 with the account", r)
	}
	do(auditor, "POST /v1/talents/{id}/unmask", r)

	r = e.as(approver1).get("/v1/grants?talent=" + query)
	if r.status != http.StatusOK {
		t.Fatalf("%s: want 200", r)
	}
	do(approver1, "GET /v1/grants", r)

	r = e.as(auditor).post("/v1/grants", map[string]any{"talent_id": talent, "document_ref": docRef})
	wantProblem(t, r, http.StatusForbidden, "forbidden")
	do(auditor, "POST /v1/grants", r)

	r = e.anonymous().do("GET", "/nowhere/"+query, nil, nil)
	wantProblem(t, r, http.StatusNotFound, "not_found")
	do("", "unmatched", r)

	// Closing waits for the requests in flight, so every line is written.
	e.close()
	out := buf.Bytes()
	if len(out) == 0 {
		t.Fatal("nothing was logged")
	}
	secrets := []string{badToken, name, employer, docRef, passport, query, idNumber, account, phone}
	for _, tok := range e.tokens {
		secrets = append(secrets, tok, ledgerhttp.HashToken(tok))
	}
	for _, s := range secrets {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("the log holds %q", s)
		}
	}

	lines := map[string]map[string]any{} // request ID → request line
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if line["msg"] != "request" {
			continue
		}
		for _, k := range []string{"request_id", "principal", "route", "status", "method"} {
			if _, ok := line[k]; !ok {
				t.Errorf("request line without %s: %s", k, sc.Text())
			}
		}
		id, _ := line["request_id"].(string)
		lines[id] = line
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, q := range reqs {
		id := q.r.header.Get("X-Request-ID")
		line, ok := lines[id]
		if !ok {
			t.Errorf("%s: no request line with request_id %q", q.r, id)
			continue
		}
		if line["principal"] != q.principal || line["route"] != q.route || line["status"] != float64(q.r.status) {
			t.Errorf("%s: logged principal %v route %v status %v, want %q %q %d",
				q.r, line["principal"], line["route"], line["status"], q.principal, q.route, q.r.status)
		}
	}
}
