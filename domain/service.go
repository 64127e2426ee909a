package domain

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"talentledger/eventstore"
)

// Roles.
const (
	RoleAdmin       = "admin"
	RoleClerk       = "clerk"
	RoleReviewer    = "reviewer"
	RoleApprover    = "approver"
	RoleTreasurer   = "treasurer"
	RoleFundManager = "fund_manager"
	RoleAuditor     = "auditor"
)

// Roles lists every role.
var Roles = []string{RoleAdmin, RoleClerk, RoleReviewer, RoleApprover, RoleTreasurer, RoleFundManager, RoleAuditor}

// MaxTextLen bounds free-text fields (names, reasons, references).
const MaxTextLen = 500

// Actor is who issues a command, and in which role.
type Actor struct {
	Principal string
	Role      string
}

// CommandMeta is what every command carries besides its own fields.
type CommandMeta struct {
	Actor Actor
	// CommandID makes the command idempotent: the events it records, and
	// the IDs it creates, are derived from it. Empty means a random one.
	CommandID     string
	CorrelationID string
	CausationID   string
	Reason        string
	DocumentRef   string
	// EffectiveDate (YYYY-MM-DD) is the business date of the command;
	// empty means today in the city's time zone.
	EffectiveDate string
	// RequestHash, when set, identifies the request the command came in
	// (see eventstore.Metadata.RequestHash): every event it records
	// carries it, and a command whose events are already recorded under
	// another request hash is refused with EIDEMPOTENCYMISMATCH.
	RequestHash string
	// Outcome, when set, is told how the command was answered.
	Outcome *Outcome
}

// Outcome tells the caller how a command was answered: by appending its
// events, or from events a first run of it recorded. A command's steps
// may run in other goroutines (combined appends), so it is locked.
type Outcome struct {
	mu                        sync.Mutex
	replayed, wrote, unhashed bool
}

const (
	outcomeReplayed = iota
	outcomeWrote
	outcomeUnhashed
)

func (o *Outcome) set(what int) {
	if o == nil {
		return
	}
	o.mu.Lock()
	switch what {
	case outcomeReplayed:
		o.replayed = true
	case outcomeWrote:
		o.wrote = true
	case outcomeUnhashed:
		o.unhashed = true
	}
	o.mu.Unlock()
}

// Replayed reports whether the command was answered from the events an
// earlier run of it recorded, appending nothing.
func (o *Outcome) Replayed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.replayed && !o.wrote
}

// Unhashed reports whether the events found carry no request hash: a
// build that kept the first answer in an idempotency stream recorded
// them, and the answer is to be checked there.
func (o *Outcome) Unhashed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.unhashed
}

// Result answers a command: the ID of what it created or changed, and the
// global position of the last event it wrote (to pass as min_position).
type Result struct {
	ID       string              `json:"id"`
	Position eventstore.Position `json:"position"`
}

// meta is a validated CommandMeta with its recording time.
type meta struct {
	CommandMeta
	// date is the business date: the effective date, or today.
	date string
	// today is the date time controls are reckoned by: the server's date
	// in the city's time zone, or an imported command's historical date.
	today      string
	recordedAt time.Time
	// source is SourceImport for an imported command.
	source string
	// completedBy is set on a step that finishes what another command
	// decided (see eventstore.Metadata.CompletedBy); its dates were
	// checked when it was decided.
	completedBy string
	// settled is set once the command's decision is recorded in its first
	// stream: the steps that carry it out elsewhere are not refused for
	// their business date.
	settled bool
}

// secondary returns the metadata for a step of the command on a stream
// other than the one it decides on (a talent's entitlements, a budget):
// the step is dated by the server's date (an import's historical date),
// so that those shared streams' business dates never go backwards, while
// the decision keeps its business date.
func (m *meta) secondary() *meta {
	cp := *m
	cp.date = m.today
	cp.EffectiveDate = ""
	if m.source != "" {
		cp.EffectiveDate = m.today
	}
	return &cp
}

// checkDate refuses a business date before the latest one already in the
// stream e, unless the command's decision is already recorded.
func (m *meta) checkDate(e *entry) error {
	if m.settled || m.completedBy != "" || m.date >= e.lastDate {
		return nil
	}
	return Errorf(EDATEBEFORESTREAM, "effective_date %s is before %s, the latest business date already recorded in %s", m.date, e.lastDate, e.stream)
}

// SourceImport marks events entered by an offline import.
const SourceImport = "import"

func (m *meta) metadata() eventstore.Metadata {
	md := eventstore.Metadata{
		Principal:     m.Actor.Principal,
		Role:          m.Actor.Role,
		CorrelationID: m.CorrelationID,
		CausationID:   m.CausationID,
		RecordedAt:    m.recordedAt,
		EffectiveDate: m.EffectiveDate,
		Reason:        m.Reason,
		DocumentRef:   m.DocumentRef,
		Source:        m.source,
		CompletedBy:   m.completedBy,
		RequestHash:   m.RequestHash,
	}
	return md
}

// Service carries out commands. It is safe for concurrent use.
type Service struct {
	repo *repo
	now  func() time.Time
	log  *slog.Logger
	// maxBackdate is how many days before today an effective date may lie.
	maxBackdate int
	// importing marks a Service that enters history offline: its
	// commands are reckoned at their own dates (see WithImport).
	importing bool
	// enrollTTL is how long an enrollment code works (WithEnrollmentTTL).
	enrollTTL time.Duration
	// cipher seals personal fields; nil records them in plain text.
	cipher *Cipher
}

// DefaultMaxBackdate is how many days an effective date may lie in the past
// unless WithMaxBackdate says otherwise.
const DefaultMaxBackdate = 31

// Option configures a Service.
type Option func(*Service)

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithMaxBackdate sets how many days before the server's date a command's
// effective date may lie (default DefaultMaxBackdate).
func WithMaxBackdate(days int) Option { return func(s *Service) { s.maxBackdate = days } }

// WithImport makes a Service that enters history offline, the server
// stopped: every command must carry its historical date as its effective
// date, time controls (the public notice, due dates, the fiscal year) are
// reckoned at that date instead of the clock's, no backdating window
// applies, and every event is marked with source "import". Dates still
// never lie after the clock's today, nor go backwards within a stream.
func WithImport() Option { return func(s *Service) { s.importing = true } }

// WithCacheSize sets how many streams' states are cached (default 50,000).
func WithCacheSize(n int) Option { return func(s *Service) { s.repo.cache.size = n } }

// WithSoleWriter declares that this Service is the only writer of its
// store: nothing else appends to it, in this process or another. The
// embedded store's data directory is locked to one process, and a server
// writes only through its Service, so a server on the embedded store is
// its sole writer; a server on EventStoreDB, one of several, is not.
//
// A Service's cached stream states are then never stale, so after an
// append it folds the events it proposed instead of reading the stream
// back. (Without the option it must read back: another process could
// have written the same events first, with its own metadata and hashes,
// and the store would then acknowledge the append as a retry.)
func WithSoleWriter() Option { return func(s *Service) { s.repo.soleWriter = true } }

// WithCodec sets how the service reads and names stored events; the
// default is this build's Codec. Tests use it to play a newer build.
func WithCodec(c Codec) Option { return func(s *Service) { s.repo.codec = c } }

// NewService returns a Service over store.
func NewService(store eventstore.Store, opts ...Option) *Service {
	s := &Service{repo: newRepo(store, 50_000), now: time.Now, log: slog.Default(), maxBackdate: DefaultMaxBackdate}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Today returns the server's date in the city's time zone, by the
// service's clock: the date every time control is reckoned by.
func (s *Service) Today() string { return Today(s.now()) }

// Now is the server's clock: the instant events are recorded at.
func (s *Service) Now() time.Time { return s.now() }

// Store returns the event store the service writes to.
func (s *Service) Store() eventstore.Store { return s.repo.store }

// newMeta validates a command's metadata and checks the actor's role is one
// of roles.
func (s *Service) newMeta(cm CommandMeta, roles ...string) (*meta, error) {
	if cm.Actor.Principal == "" || !contains(Roles, cm.Actor.Role) {
		return nil, Errorf(EUNAUTHENTICATED, "no principal")
	}
	if len(roles) > 0 && !contains(roles, cm.Actor.Role) {
		return nil, Errorf(EFORBIDDEN, "role %s may not do this", cm.Actor.Role)
	}
	for _, f := range []struct{ name, v string }{
		{"reason", cm.Reason}, {"document_ref", cm.DocumentRef},
		{"correlation id", cm.CorrelationID}, {"causation id", cm.CausationID},
	} {
		if err := checkText(f.name, f.v, false); err != nil {
			return nil, err
		}
	}
	now := s.now()
	m := &meta{CommandMeta: cm, recordedAt: now.UTC().Truncate(time.Microsecond), today: Today(now)}
	if m.CommandID == "" {
		m.CommandID = randomHex(16)
	}
	m.date = m.today
	if s.importing && cm.EffectiveDate == "" {
		return nil, Errorf(EINVALID, "an imported command needs its historical date as effective_date")
	}
	if cm.EffectiveDate == "" {
		return m, nil
	}
	if _, err := ParseDate(cm.EffectiveDate); err != nil {
		return nil, err
	}
	switch {
	case cm.EffectiveDate > m.today:
		return nil, Errorf(EDATEFUTURE, "effective_date %s is after today, %s", cm.EffectiveDate, m.today)
	case s.importing:
		m.today, m.source = cm.EffectiveDate, SourceImport
	case cm.EffectiveDate < AddDays(m.today, -s.maxBackdate):
		return nil, Errorf(EBACKDATE, "effective_date %s is more than %d days before today, %s; older history enters by import", cm.EffectiveDate, s.maxBackdate, m.today)
	}
	m.date = cm.EffectiveDate
	return m, nil
}

// checkText validates a free-text field: present (not blank) when
// required, never blank when given, at most MaxTextLen characters, and
// plain text under TextProblem's rules. The error names the field.
func checkText(field, v string, required bool) error {
	fail := func(format string, args ...any) error {
		e := Errorf(EINVALID, format, args...)
		if !strings.Contains(field, " ") {
			e.Field = "/" + field
		}
		return e
	}
	if strings.TrimSpace(v) == "" {
		switch {
		case required:
			return fail("%s is required", field)
		case v != "":
			return fail("%s is blank", field)
		}
		return nil
	}
	if p := TextProblem(v); p != "" {
		return fail("%s %s", field, p)
	}
	if utf8.RuneCountInString(v) > MaxTextLen {
		return fail("%s is longer than %d characters", field, MaxTextLen)
	}
	return nil
}

// TextProblem says what keeps s from being plain text, or returns "" when
// nothing does. Plain text is valid UTF-8 (so no lone surrogate) without a
// C0 or C1 control character (U+0000–U+001F, U+007F–U+009F, which include
// NEL, U+0085) and without a non-character (U+FDD0–U+FDEF and the last two
// code points of every plane, U+FFFE, U+FFFF, U+1FFFE, …).
func TextProblem(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		switch {
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			return fmt.Sprintf("has a control character (U+%04X)", r)
		case (r >= 0xfdd0 && r <= 0xfdef) || r&0xfffe == 0xfffe:
			return fmt.Sprintf("has a non-character (U+%04X)", r)
		}
	}
	return ""
}

func result(id string, res eventstore.AppendResult) Result {
	return Result{ID: id, Position: res.Position}
}
