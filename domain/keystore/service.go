package keystore

// The key service: one process holds the key store and serves its
// operations over HTTPS to the ledger's servers, so that replicas on one
// EventStoreDB share one key store. Each request carries a bearer token
// (compared in constant time); every operation is a POST of a JSON object
// to /v1/keys/<operation>, answered with a JSON object; a talent's keys
// destroyed answer 410 {"code":"key_destroyed"}, a key the store does not
// hold 404 {"code":"no_key"}. A binding is synced before it is answered:
// a key handed out over the wire is bound on disk.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"talentledger/domain"
)

// MinTokenLength is the shortest bearer token the key service accepts.
const MinTokenLength = 32

// KeyRef names one of a talent's keys, as the log does.
type KeyRef struct {
	TalentID string `json:"talent_id"`
	KeyID    string `json:"key_id"`
}

// Missing counts the keys named that the store neither holds, bound to
// their talent, nor destroyed: keys the log names that this store cannot
// give.
func (s *Store) Missing(refs []KeyRef) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range refs {
		if s.dead[r.TalentID] || s.isDeadKey(r.KeyID) {
			continue
		}
		if k := s.keys[r.KeyID]; k == nil || k.owner != r.TalentID {
			n++
		}
	}
	return n
}

type (
	keyRequest struct {
		TalentID string   `json:"talent_id,omitempty"`
		KeyID    string   `json:"key_id,omitempty"`
		KeyIDs   []string `json:"key_ids,omitempty"`
		Create   bool     `json:"create,omitempty"`
		Rotate   bool     `json:"rotate,omitempty"`
		Keys     []KeyRef `json:"keys,omitempty"`
	}
	keyAnswer struct {
		KeyID   string   `json:"key_id,omitempty"`
		Key     []byte   `json:"key,omitempty"`
		KeyIDs  []string `json:"key_ids,omitempty"`
		Missing int      `json:"missing,omitempty"`
	}
	problem struct {
		Code    string `json:"code"`
		Message string `json:"message,omitempty"`
	}
)

// NewHandler returns the key service over s, which answers only requests
// bearing token.
func NewHandler(s *Store, token string) (http.Handler, error) {
	if len(token) < MinTokenLength {
		return nil, fmt.Errorf("keystore: the key service's token must have at least %d characters", MinTokenLength)
	}
	want := sha256.Sum256([]byte(token))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	op := func(name string, f func(keyRequest) (keyAnswer, error)) {
		mux.HandleFunc("POST /v1/keys/"+name, func(w http.ResponseWriter, r *http.Request) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			got := sha256.Sum256([]byte(tok))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !ok {
				answer(w, http.StatusUnauthorized, problem{Code: "unauthenticated", Message: "no token, or not the key service's"})
				return
			}
			var req keyRequest
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil || dec.More() {
				answer(w, http.StatusBadRequest, problem{Code: "invalid", Message: "the body must be one JSON object of the operation's fields"})
				return
			}
			out, err := f(req)
			switch {
			case errors.Is(err, domain.ErrKeyDestroyed):
				answer(w, http.StatusGone, problem{Code: "key_destroyed"})
			case errors.Is(err, domain.ErrNoKey):
				answer(w, http.StatusNotFound, problem{Code: "no_key"})
			case errors.Is(err, errBadID):
				answer(w, http.StatusBadRequest, problem{Code: "invalid", Message: err.Error()})
			case err != nil:
				answer(w, http.StatusInternalServerError, problem{Code: "internal", Message: "the key store failed; see the key service's log"})
			default:
				answer(w, http.StatusOK, out)
			}
		})
	}
	op("data-key", func(q keyRequest) (keyAnswer, error) {
		if err := checkIDs(q.TalentID); err != nil {
			return keyAnswer{}, err
		}
		id, k, err := s.DataKey(q.TalentID, q.Create)
		if err == nil && q.Create {
			err = s.Sync()
		}
		return keyAnswer{KeyID: id, Key: k}, err
	})
	op("bind", func(q keyRequest) (keyAnswer, error) {
		if err := checkIDs(q.TalentID); err != nil {
			return keyAnswer{}, err
		}
		id, k, err := s.BindKey(q.TalentID, q.Rotate)
		if err == nil {
			// Bound on disk before it leaves: a key service that
			// crashes loses no binding a server was given.
			err = s.Sync()
		}
		return keyAnswer{KeyID: id, Key: k}, err
	})
	op("get", func(q keyRequest) (keyAnswer, error) {
		if err := checkIDs(q.TalentID, q.KeyID); err != nil {
			return keyAnswer{}, err
		}
		k, err := s.Key(q.TalentID, q.KeyID)
		return keyAnswer{Key: k}, err
	})
	op("destroy", func(q keyRequest) (keyAnswer, error) {
		if err := checkIDs(append([]string{q.TalentID}, q.KeyIDs...)...); err != nil {
			return keyAnswer{}, err
		}
		return keyAnswer{}, s.Destroy(q.TalentID, q.KeyIDs...)
	})
	op("orphans", func(keyRequest) (keyAnswer, error) {
		return keyAnswer{KeyIDs: s.Orphans()}, nil
	})
	op("bind-orphan", func(q keyRequest) (keyAnswer, error) {
		if err := checkIDs(q.TalentID, q.KeyID); err != nil {
			return keyAnswer{}, err
		}
		return keyAnswer{}, s.BindOrphan(q.TalentID, q.KeyID)
	})
	op("retire-orphans", func(q keyRequest) (keyAnswer, error) {
		if err := checkIDs(q.KeyIDs...); err != nil {
			return keyAnswer{}, err
		}
		return keyAnswer{}, s.RetireOrphans(q.KeyIDs)
	})
	op("missing", func(q keyRequest) (keyAnswer, error) {
		return keyAnswer{Missing: s.Missing(q.Keys)}, nil
	})
	op("check", func(keyRequest) (keyAnswer, error) { return keyAnswer{}, nil })
	return mux, nil
}

var errBadID = errors.New("keystore: a talent or key ID is malformed")

func checkIDs(ids ...string) error {
	for _, id := range ids {
		if !reTalent.MatchString(id) {
			return errBadID
		}
	}
	return nil
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Client is a domain.KeyStore served by a key service.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

var (
	_ domain.KeyStore   = (*Client)(nil)
	_ domain.OrphanKeys = (*Client)(nil)
)

// ClientTimeout bounds each call to the key service.
const ClientTimeout = 10 * time.Second

// NewClient returns a client of the key service at rawURL (https://, or
// http:// to a loopback address only), presenting token; tlsConfig, when
// not nil, is used for HTTPS (its RootCAs the service's CA).
func NewClient(rawURL, token string, tlsConfig *tls.Config) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("the key service's URL must be https://HOST:PORT")
	}
	switch u.Scheme {
	case "https":
	case "http":
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("the key service's URL must be https:// (plain http:// only to a loopback address)")
		}
	default:
		return nil, fmt.Errorf("the key service's URL must be https://HOST:PORT")
	}
	if len(token) < MinTokenLength {
		return nil, fmt.Errorf("the key service's token must have at least %d characters", MinTokenLength)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConfig
	tr.MaxIdleConnsPerHost = 64
	return &Client{base: u.Scheme + "://" + u.Host, token: token, hc: &http.Client{Transport: tr, Timeout: ClientTimeout}}, nil
}

// unavailable is the error of a key service that cannot answer: the
// command that needs a key is refused, 503, and may be tried again.
func unavailable(format string, args ...any) error {
	return &domain.Error{Code: domain.EUNAVAILABLE, Message: "the key service cannot give the talent's data key now: " + fmt.Sprintf(format, args...)}
}

func (c *Client) call(ctx context.Context, op string, q keyRequest) (keyAnswer, error) {
	body, err := json.Marshal(q)
	if err != nil {
		return keyAnswer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/keys/"+op, bytes.NewReader(body))
	if err != nil {
		return keyAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return keyAnswer{}, unavailable("%v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return keyAnswer{}, unavailable("%v", err)
	}
	if resp.StatusCode != http.StatusOK {
		var p problem
		_ = json.Unmarshal(b, &p)
		switch {
		case resp.StatusCode == http.StatusGone && p.Code == "key_destroyed":
			return keyAnswer{}, domain.ErrKeyDestroyed
		case resp.StatusCode == http.StatusNotFound && p.Code == "no_key":
			return keyAnswer{}, domain.ErrNoKey
		case resp.StatusCode == http.StatusUnauthorized:
			return keyAnswer{}, unavailable("it refused this server's token")
		case resp.StatusCode == http.StatusBadRequest:
			return keyAnswer{}, fmt.Errorf("keystore: the key service refused a request: %s", p.Message)
		}
		return keyAnswer{}, unavailable("it answered %d", resp.StatusCode)
	}
	var a keyAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return keyAnswer{}, unavailable("its answer is not JSON")
	}
	return a, nil
}

func (c *Client) key(op string, q keyRequest) (string, []byte, error) {
	a, err := c.call(context.Background(), op, q)
	if err != nil {
		return "", nil, err
	}
	if len(a.Key) != 32 || op != "get" && !reTalent.MatchString(a.KeyID) {
		return "", nil, unavailable("its answer holds no key")
	}
	return a.KeyID, a.Key, nil
}

// Check makes sure the key service answers and takes the token.
func (c *Client) Check(ctx context.Context) error {
	_, err := c.call(ctx, "check", keyRequest{})
	return err
}

// DataKey implements domain.KeyStore.
func (c *Client) DataKey(talentID string, create bool) (string, []byte, error) {
	return c.key("data-key", keyRequest{TalentID: talentID, Create: create})
}

// BindKey implements domain.KeyStore; the binding is on the service's
// disk when it returns.
func (c *Client) BindKey(talentID string, rotate bool) (string, []byte, error) {
	return c.key("bind", keyRequest{TalentID: talentID, Rotate: rotate})
}

// Key implements domain.KeyStore.
func (c *Client) Key(talentID, keyID string) ([]byte, error) {
	_, k, err := c.key("get", keyRequest{TalentID: talentID, KeyID: keyID})
	return k, err
}

// Destroy implements domain.KeyStore.
func (c *Client) Destroy(talentID string, keyIDs ...string) error {
	_, err := c.call(context.Background(), "destroy", keyRequest{TalentID: talentID, KeyIDs: keyIDs})
	return err
}

// Orphans implements domain.OrphanKeys; it lists none when the service
// cannot be reached (they are looked for again at the next start).
func (c *Client) Orphans() []string {
	a, err := c.call(context.Background(), "orphans", keyRequest{})
	if err != nil {
		return nil
	}
	return a.KeyIDs
}

// BindOrphan implements domain.OrphanKeys.
func (c *Client) BindOrphan(talentID, keyID string) error {
	_, err := c.call(context.Background(), "bind-orphan", keyRequest{TalentID: talentID, KeyID: keyID})
	return err
}

// RetireOrphans implements domain.OrphanKeys.
func (c *Client) RetireOrphans(keyIDs []string) error {
	_, err := c.call(context.Background(), "retire-orphans", keyRequest{KeyIDs: keyIDs})
	return err
}

// MissingKeys counts the keys named that the service cannot give.
func (c *Client) MissingKeys(ctx context.Context, refs []KeyRef) (int, error) {
	a, err := c.call(ctx, "missing", keyRequest{Keys: refs})
	return a.Missing, err
}

// MissingKeys counts the keys named that the store cannot give.
func (s *Store) MissingKeys(_ context.Context, refs []KeyRef) (int, error) {
	return s.Missing(refs), nil
}
