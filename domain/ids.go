package domain

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
)

// ID rules. Generated IDs are a letter and 16 hex digits; program and fund
// IDs are chosen by people and are short slugs.
var (
	reGeneratedID = regexp.MustCompile(`^[a-z][0-9a-f]{16}$`)
	reSlug        = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
)

// Prefixes of generated IDs.
const (
	prefixGrant     = "g"
	prefixTalent    = "t"
	prefixObjection = "o"
)

// newID returns an ID with the prefix, derived from commandID and salt when
// commandID is set (so a retried command creates the same ID), else random.
func newID(prefix, commandID, salt string) string {
	var b [8]byte
	if commandID != "" {
		h := sha256.Sum256([]byte(commandID + "\x00" + salt))
		copy(b[:], h[:])
	} else if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func validGenerated(prefix, id string) bool {
	return reGeneratedID.MatchString(id) && id[:1] == prefix
}

// ValidSlug reports whether s is a valid program or fund ID.
func ValidSlug(s string) bool { return reSlug.MatchString(s) }

// Stream names.
func streamProgram(id string) string { return "program-" + id }
func streamBudget(program string, fy int) string {
	return "budget-" + program + "-" + strconv.Itoa(fy)
}
func streamTalent(id string) string { return "talent-" + id }
func streamGrant(id string) string  { return "grant-" + id }

// StreamGrant returns the stream of a grant.
func StreamGrant(id string) string { return streamGrant(id) }

// StreamTalent returns the stream of a talent.
func StreamTalent(id string) string { return streamTalent(id) }

// StreamBudget returns the stream of a program's budget for a fiscal year.
func StreamBudget(program string, fy int) string { return streamBudget(program, fy) }
