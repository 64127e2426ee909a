package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"talentledger/domain"
	"talentledger/eventstore"
	"talentledger/eventstore/pebble"
	ledgerhttp "talentledger/http"
)

// TestMain lets a test run this binary as the talentledger command in a
// child process, so that it can be killed with SIGKILL.
func TestMain(m *testing.M) {
	if env := os.Getenv("TLTEST_FOLD_CHILD"); env != "" {
		os.Exit(foldChild(env))
	}
	if env := os.Getenv("TLTEST_CHILD_ARGS"); env != "" {
		var args []string
		if err := json.Unmarshal([]byte(env), &args); err != nil {
			panic(err)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, args, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	code := m.Run()
	removeDemoTemplate()
	os.Exit(code)
}

// child is `talentledger serve` running in a child process.
type child struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	log  *syncBuffer
	done chan struct{}
}

// startChild starts serve on dir and waits until it listens.
func startChild(t *testing.T, dir, principals string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	args, _ := json.Marshal([]string{"serve", "--no-encryption", "--data", dir, "--principals", principals, "--addr", "127.0.0.1:0", "--no-witness"})
	cmd.Env = append(os.Environ(), "TLTEST_CHILD_ARGS="+string(args))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{t: t, cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			c.log.Write(append(line, '\n'))
			var l struct{ Msg, Addr string }
			if json.Unmarshal(line, &l) == nil && l.Msg == "serving" {
				addr <- l.Addr
			}
		}
	}()
	select {
	case a := <-addr:
		c.base = "http://" + a
	case <-c.done:
		cmd.Wait()
		t.Fatalf("serve exited before listening:\n%s", c.log.String())
	case <-time.After(30 * time.Second):
		c.kill()
		t.Fatalf("serve did not listen within 30 s:\n%s", c.log.String())
	}
	return c
}

// kill ends the child with SIGKILL: no shutdown, no flush, no goodbye.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
	_ = c.cmd.Wait()
}

// waitReady waits until the read models have caught up with the log.
func (c *child) waitReady() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(c.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("the restarted server never became ready:\n%s", c.log.String())
}

// sentCommand is one command a client sent, with its Idempotency-Key, and
// what came back.
type sentCommand struct {
	kind, path, token, key, body string
	grant                        string // the grant it concerns, once known
	status                       int    // 0: no answer (the server died)
	id                           string // the ID it answered with
	position                     string // the log position it answered with
}

// crashClient talks to whichever child is running.
type crashClient struct {
	http *http.Client
	mu   sync.Mutex
	base string
}

func (cc *crashClient) setBase(b string) {
	cc.mu.Lock()
	cc.base = b
	cc.mu.Unlock()
	cc.http.CloseIdleConnections()
}

func (cc *crashClient) send(method, path, token, key, body string) (int, []byte, error) {
	cc.mu.Lock()
	base := cc.base
	cc.mu.Unlock()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := cc.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

// do sends a command and records it.
func (cc *crashClient) do(c *sentCommand) {
	status, b, err := cc.send("POST", c.path, c.token, c.key, c.body)
	if err != nil {
		c.status = 0
		return
	}
	c.status = status
	var v struct{ ID, Position string }
	if json.Unmarshal(b, &v) == nil {
		c.id, c.position = v.ID, v.Position
	}
}

// TestCrashUnderLoad kills the server with SIGKILL while clients send
// commands with Idempotency-Keys, at several points (under load, twice,
// and while the restarted server is still catching up), then restarts it
// on the same directory and checks that every acknowledged command is
// there, that retrying the unacknowledged ones applies each exactly once,
// that the books balance with no budget or fund overdrawn, and that the
// read models the server keeps live agree with those a restart rebuilds
// from the log.
func TestCrashUnderLoad(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	tokens := map[string]string{}
	for _, id := range []string{"admin", "clerk", "reviewer", "approver", "treasurer", "fund_manager", "auditor"} {
		tokens[id] = ledgerhttp.NewToken()
	}
	principals := writePrincipals(t, dir, tokens)
	cc := &crashClient{http: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}

	srv := startChild(t, data, principals)
	cc.setBase(srv.base)
	setup := func(role, path, body string) string {
		t.Helper()
		status, b, err := cc.send("POST", path, tokens[role], "", body)
		if err != nil || status/100 != 2 {
			t.Fatalf("setup POST %s: %d %s %v", path, status, b, err)
		}
		var v struct{ ID string }
		json.Unmarshal(b, &v)
		return v.ID
	}
	fy := benchFiscalYear()
	setup("admin", "/v1/programs", `{"id":"crash","name":"Crash-test transport subsidy","kind":"transport","caps":{"B":"1000.00"},"schedule":{"percentages":["100"]}}`)
	// Enough for 60 grants: the clients run out, and approvals then race
	// for the last of it.
	setup("approver", "/v1/programs/crash/budgets", fmt.Sprintf(`{"fiscal_year":%d,"amount":"60000.00"}`, fy))
	var talents []string
	for i := range 6 {
		talents = append(talents, setup("clerk", "/v1/talents", fmt.Sprintf(`{"name":"Crash Talent %d","tier":"B","employer":"Pinghu Optics"}`, i)))
	}
	setup("fund_manager", "/v1/funds", `{"id":"crashfund","name":"Crash-test fund","fund_type":"direct_investment","target":"1000000.00","term_years":10,"manager":"Pinghu Capital"}`)
	setup("fund_manager", "/v1/funds/crashfund/commitments", `{"lp":"City","amount":"200000.00"}`)
	setup("fund_manager", "/v1/funds/crashfund/paid-in", `{"lp":"City","amount":"100000.00"}`)
	inv := setup("fund_manager", "/v1/funds/crashfund/investments", `{"committee_ref":"IC-1","project":"Optics line","company":"Pinghu Optics","sector":"semiconductors","amount":"500000.00","stake_pct":"10"}`)

	var mu sync.Mutex
	var sent []*sentCommand
	record := func(c *sentCommand) {
		mu.Lock()
		sent = append(sent, c)
		mu.Unlock()
	}
	seq := 0
	key := func(client int) string {
		mu.Lock()
		defer mu.Unlock()
		seq++
		return fmt.Sprintf("crash-%d-%d", client, seq)
	}

	// grantClient takes grants through their journey until the server
	// stops answering; a command without an answer ends its grant.
	grantClient := func(id int) {
		for {
			c := &sentCommand{kind: "apply", path: "/v1/grants", token: tokens["clerk"], key: key(id),
				body: fmt.Sprintf(`{"talent_id":%q,"program_id":"crash","amount_requested":"1000.00","document_ref":"APP-%d"}`, talents[id%len(talents)], id)}
			cc.do(c)
			record(c)
			if c.status == 0 {
				return
			}
			if c.status/100 != 2 {
				continue
			}
			g := c.id
			c.grant = g
			steps := []struct{ kind, path, role, body string }{
				{"review", "/v1/grants/" + g + "/review", "reviewer", `{"decision":"approve"}`},
				{"notice_open", "/v1/grants/" + g + "/notice", "reviewer", `{}`},
				{"notice_close", "/v1/grants/" + g + "/notice/close", "reviewer", `{}`},
				{"approve", "/v1/grants/" + g + "/approve", "approver", `{}`},
				{"payment_prepare", "/v1/grants/" + g + "/installments/1/payments", "clerk", `{}`},
			}
			ok := true
			for _, s := range steps {
				c := &sentCommand{kind: s.kind, path: s.path, token: tokens[s.role], key: key(id), body: s.body, grant: g}
				cc.do(c)
				record(c)
				if c.status == 0 {
					return
				}
				if c.status/100 != 2 {
					ok = false
					break
				}
				if s.kind == "payment_prepare" {
					for _, p := range []struct{ kind, verb, role, body string }{
						{"payment_approve", "approve", "approver", `{}`},
						{"payment_release", "release", "treasurer", `{"bank_reference":"BANK-` + c.id + `"}`},
					} {
						pc := &sentCommand{kind: p.kind, path: "/v1/payments/" + c.id + "/" + p.verb, token: tokens[p.role], key: key(id), body: p.body, grant: g}
						cc.do(pc)
						record(pc)
						if pc.status == 0 {
							return
						}
						if pc.status/100 != 2 {
							ok = false
							break
						}
					}
				}
				if !ok {
					break
				}
			}
		}
	}
	fundClient := func(id int) {
		for {
			c := &sentCommand{kind: "tranche", path: "/v1/funds/crashfund/investments/" + inv + "/tranches", token: tokens["fund_manager"],
				key: key(id), body: `{"amount":"7000.00"}`}
			cc.do(c)
			record(c)
			if c.status/100 != 2 {
				// No answer, or the cash has run out.
				return
			}
		}
	}
	load := func(killAfter time.Duration) {
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() { grantClient(i) })
		}
		// Two fund clients race for the fund's cash.
		wg.Go(func() { fundClient(100) })
		wg.Go(func() { fundClient(101) })
		time.Sleep(killAfter)
		srv.kill()
		wg.Wait()
	}

	// Kill points: twice under load, then during the catch-up after a
	// restart, before the read models are ready.
	load(700 * time.Millisecond)
	srv = startChild(t, data, principals)
	cc.setBase(srv.base)
	load(400 * time.Millisecond)
	srv = startChild(t, data, principals)
	srv.kill()
	srv = startChild(t, data, principals)
	cc.setBase(srv.base)
	srv.waitReady()

	// Every acknowledged command is there.
	unanswered := 0
	var cut []string
	byKind := map[string]int{}
	for _, c := range sent {
		if c.status == 0 {
			unanswered++
			cut = append(cut, c.kind)
		}
		if c.status/100 == 2 {
			byKind[c.kind]++
		}
	}
	t.Logf("%d commands sent, %d without an answer (%v); acknowledged: %v", len(sent), unanswered, cut, byKind)
	if unanswered == 0 || byKind["approve"] == 0 || byKind["payment_release"] == 0 || byKind["tranche"] == 0 {
		t.Fatalf("the load did not reach every kind of command before the kills (acknowledged %v, %d unanswered)", byKind, unanswered)
	}
	// grant reads a grant once the read models have folded the log up to
	// at (a command's answer), so that a command just retried is read as
	// its own write.
	grant := func(id, at string) grantState {
		t.Helper()
		var g grantState
		path := "/v1/grants/" + id
		if at != "" {
			path += "?min_position=" + at
		}
		status, b, err := cc.send("GET", path, tokens["auditor"], "", "")
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET grant %s: %d %s %v", id, status, b, err)
		}
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatal(err)
		}
		return g
	}
	for _, c := range sent {
		if c.status/100 == 2 && c.kind != "tranche" {
			checkPresent(t, c, grant(grantOfCommand(c), ""))
		}
	}

	// Retrying the unanswered commands with their keys applies each once;
	// retrying answered ones gives the same answer and applies nothing.
	for _, c := range sent {
		if c.status != 0 {
			continue
		}
		cc.do(c)
		if c.status == 0 {
			t.Fatalf("retry of %s %s got no answer", c.kind, c.path)
		}
		if c.status/100 == 2 {
			byKind[c.kind]++
			if c.kind != "tranche" {
				checkPresent(t, c, grant(grantOfCommand(c), c.position))
			}
		}
	}
	for i, c := range sent {
		if c.status/100 != 2 || i%5 != 0 {
			continue
		}
		first := c.id
		status, b, _ := cc.send("POST", c.path, c.token, c.key, c.body)
		var v struct{ ID string }
		json.Unmarshal(b, &v)
		if status != c.status || v.ID != first {
			t.Errorf("retry of acknowledged %s %s: %d %s, first answer %d %s", c.kind, c.path, status, v.ID, c.status, first)
		}
	}

	// The books balance and nothing is overdrawn.
	var tb struct {
		Total      string
		Violations []string
	}
	getInto(t, cc, tokens["auditor"], "/v1/ledger/balances", &tb)
	if tb.Total != "0.00" || len(tb.Violations) != 0 {
		t.Errorf("trial balance total %s, violations %v", tb.Total, tb.Violations)
	}
	var budget struct{ Available, Reserved, Paid string }
	getInto(t, cc, tokens["auditor"], fmt.Sprintf("/v1/programs/crash/budgets/%d", fy), &budget)
	if strings.HasPrefix(budget.Available, "-") || strings.HasPrefix(budget.Reserved, "-") {
		t.Errorf("budget overdrawn: %+v", budget)
	}
	if want := fmt.Sprintf("%d.00", byKind["payment_release"]*1000); budget.Paid != want {
		t.Errorf("budget paid %s, want %s for %d releases", budget.Paid, want, byKind["payment_release"])
	}
	var fund struct {
		IdleCash string `json:"idle_cash"`
		Invested string
	}
	getInto(t, cc, tokens["auditor"], "/v1/funds/crashfund", &fund)
	if strings.HasPrefix(fund.IdleCash, "-") {
		t.Errorf("fund overdrawn: idle cash %s", fund.IdleCash)
	}

	// The live read models (fed since the restart, retries included) agree
	// with those another restart rebuilds from the log alone.
	views := []string{"/v1/ledger/balances", fmt.Sprintf("/v1/programs/crash/budgets/%d", fy), "/v1/grants?program=crash&limit=1000",
		"/v1/funds/crashfund", "/v1/funds/crashfund/projects"}
	for _, id := range talents {
		views = append(views, "/v1/talents/"+id)
	}
	snapshot := func() map[string]string {
		out := map[string]string{}
		for _, v := range views {
			status, b, err := cc.send("GET", v, tokens["auditor"], "", "")
			if err != nil || status != http.StatusOK {
				t.Fatalf("GET %s: %d %v", v, status, err)
			}
			out[v] = string(b)
		}
		return out
	}
	live := snapshot()
	srv.kill()
	srv = startChild(t, data, principals)
	cc.setBase(srv.base)
	srv.waitReady()
	rebuilt := snapshot()
	srv.kill()
	for _, v := range views {
		if live[v] != rebuilt[v] {
			t.Errorf("GET %s differs after a rebuild:\nlive:    %s\nrebuilt: %s", v, live[v], rebuilt[v])
		}
	}

	// Count the events: each command answered 2xx applied its events once,
	// and kept its answer once: in its events' request hash, or, for a
	// tranche (its fund is named in the path, but funds keep their answers
	// apart), in its idempotency stream.
	store, err := pebble.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	counts, hashed := map[string]int{}, map[string]int{}
	it := store.ReadAll(context.Background(), eventstore.Start)
	for it.Next() {
		name, _, ok := domain.ParseEventType(it.Event().Type)
		if !ok {
			name = it.Event().Type
		}
		counts[name]++ // every version of a type
		if it.Event().Metadata.RequestHash != "" {
			hashed[name]++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	it.Close()
	for kind, typ := range map[string]string{
		"apply": domain.TypeGrantApplied, "review": domain.TypeGrantReviewed, "notice_open": domain.TypePublicNoticeOpened,
		"notice_close": domain.TypePublicNoticeClosed, "approve": domain.TypeGrantApproved, "payment_prepare": domain.TypePaymentPrepared,
		"payment_approve": domain.TypePaymentApproved, "payment_release": domain.TypePaymentReleased, "tranche": domain.TypeInvestmentFunded,
	} {
		if counts[typ] != byKind[kind] {
			t.Errorf("%d %s events for %d %s commands answered 2xx", counts[typ], typ, byKind[kind], kind)
		}
		if kind != "tranche" && hashed[typ] != byKind[kind] {
			t.Errorf("%d %s events with a request hash for %d %s commands answered 2xx", hashed[typ], typ, byKind[kind], kind)
		}
	}
	if counts[domain.TypeBudgetReserved] != byKind["approve"] || counts[domain.TypeBudgetReservationReleased] != 0 {
		t.Errorf("%d reservations and %d releases for %d approvals", counts[domain.TypeBudgetReserved], counts[domain.TypeBudgetReservationReleased], byKind["approve"])
	}
	if counts[domain.TypeIdempotencyRecorded] != byKind["tranche"] {
		t.Errorf("%d answers recorded for %d tranches answered 2xx", counts[domain.TypeIdempotencyRecorded], byKind["tranche"])
	}
}

// grantState is what the crash test reads of a grant.
type grantState struct {
	State  string
	Review *struct{ Decision string }
	Notice *struct {
		ClosedOn string `json:"closed_on"`
	}
	Payments []struct{ ID, State string }
}

func grantOfCommand(c *sentCommand) string {
	if c.kind == "apply" {
		return c.id
	}
	return c.grant
}

// checkPresent checks that what an acknowledged command did shows in its
// grant.
func checkPresent(t *testing.T, c *sentCommand, g grantState) {
	t.Helper()
	payment := func() string {
		for _, p := range g.Payments {
			if strings.Contains(c.path, "/"+p.ID+"/") || p.ID == c.id {
				return p.State
			}
		}
		return ""
	}
	ok := true
	switch c.kind {
	case "tranche", "apply":
	case "review":
		ok = g.Review != nil
	case "notice_open":
		ok = g.Notice != nil
	case "notice_close":
		ok = g.Notice != nil && g.Notice.ClosedOn != ""
	case "approve":
		ok = g.State == domain.GrantStateApproved || g.State == domain.GrantStateCompleted
	case "payment_prepare":
		ok = payment() != ""
	case "payment_approve":
		ok = payment() == domain.PaymentStateApproved || payment() == domain.PaymentStateReleased
	case "payment_release":
		ok = payment() == domain.PaymentStateReleased
	}
	if !ok {
		t.Errorf("acknowledged %s %s is missing: grant %+v", c.kind, c.path, g)
	}
}

func getInto(t *testing.T, cc *crashClient, token, path string, v any) {
	t.Helper()
	status, b, err := cc.send("GET", path, token, "", "")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s: %d %s %v", path, status, b, err)
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}
