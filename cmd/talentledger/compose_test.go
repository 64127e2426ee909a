package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"gopkg.in/yaml.v3"
)

// The repository's deployment files, from this package's directory.
var (
	composePath    = filepath.Join("..", "..", "docker-compose.yml")
	dockerfilePath = filepath.Join("..", "..", "Dockerfile")
	readmePath     = filepath.Join("..", "..", "README.md")
)

// What docker-compose.yml and the README promise: the cluster's nodes with
// the port each listens on, publishes and advertises to clients, and the
// API replicas with the port each publishes.
var (
	composeNodes    = []struct{ name, port string }{{"node1", "2113"}, {"node2", "2114"}, {"node3", "2115"}}
	composeReplicas = []struct{ name, port string }{{"ledger1", "8081"}, {"ledger2", "8082"}}
)

// composeService is the part of a compose service the tests read.
type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Ports       []string          `yaml:"ports"`
	Environment map[string]string `yaml:"environment"`
	Secrets     []string          `yaml:"secrets"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Entrypoint []string `yaml:"entrypoint"`
	Command    []string `yaml:"command"`
}

func loadCompose(t *testing.T) (services map[string]composeService, secrets map[string]string) {
	t.Helper()
	b, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]composeService `yaml:"services"`
		Secrets  map[string]struct {
			File string `yaml:"file"`
		} `yaml:"secrets"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	secrets = map[string]string{}
	for name, s := range f.Secrets {
		secrets[name] = s.File
	}
	return f.Services, secrets
}

// TestComposeCluster checks that docker-compose.yml parses and that its
// three nodes agree with one another and with what clients are told: each
// listens on its own port, publishes it unchanged on loopback, advertises
// its service name and that port to clients (so the same connection string
// works inside the compose network and, with a hosts entry, on the host),
// and seeds its gossip with the other two.
func TestComposeCluster(t *testing.T) {
	services, _ := loadCompose(t)
	internal := map[string]string{} // node → the address other nodes gossip with
	for _, n := range composeNodes {
		s, ok := services[n.name]
		if !ok {
			t.Fatalf("no service %s", n.name)
		}
		env := s.Environment
		internal[n.name] = net.JoinHostPort(env["EVENTSTORE_NODE_HOST_ADVERTISE_AS"], env["EVENTSTORE_NODE_PORT"])
	}
	for _, n := range composeNodes {
		s := services[n.name]
		env := s.Environment
		if !strings.HasPrefix(s.Image, "eventstore/eventstore:") && !strings.HasPrefix(s.Image, "docker.kurrent.io/") {
			t.Errorf("%s: image %q is neither EventStoreDB nor KurrentDB", n.name, s.Image)
		}
		for key, want := range map[string]string{
			"EVENTSTORE_CLUSTER_SIZE":                "3",
			"EVENTSTORE_NODE_PORT":                   n.port,
			"EVENTSTORE_ADVERTISE_HOST_TO_CLIENT_AS": n.name,
			"EVENTSTORE_RUN_PROJECTIONS":             "None",
		} {
			if got := env[key]; got != want {
				t.Errorf("%s: %s = %q, want %q", n.name, key, got, want)
			}
		}
		if p, ok := env["EVENTSTORE_ADVERTISE_NODE_PORT_TO_CLIENT_AS"]; ok && p != n.port {
			t.Errorf("%s advertises port %s to clients but listens on %s", n.name, p, n.port)
		}
		if want := []string{"127.0.0.1:" + n.port + ":" + n.port}; !slices.Equal(s.Ports, want) {
			t.Errorf("%s: ports %v, want %v", n.name, s.Ports, want)
		}
		var wantSeeds []string
		for _, o := range composeNodes {
			if o.name != n.name {
				wantSeeds = append(wantSeeds, internal[o.name])
			}
		}
		seeds := strings.Split(env["EVENTSTORE_GOSSIP_SEED"], ",")
		slices.Sort(seeds)
		if !slices.Equal(seeds, wantSeeds) {
			t.Errorf("%s: gossip seeds %v, want the other nodes %v", n.name, seeds, wantSeeds)
		}
		if hc := strings.Join(s.Healthcheck.Test, " "); !strings.Contains(hc, "/health/live") {
			t.Errorf("%s: health check %q does not probe /health/live", n.name, hc)
		}
	}
}

// TestComposeReplicas checks the API replicas: built from the Dockerfile,
// each on its own published port, pointed at all three nodes under the
// addresses they advertise, with the principals file and the audit key as
// secrets, and a health check on /readyz at the port serve listens on.
func TestComposeReplicas(t *testing.T) {
	services, secrets := loadCompose(t)
	var advertised []string
	for _, n := range composeNodes {
		advertised = append(advertised, n.name+":"+n.port)
	}
	for _, r := range composeReplicas {
		s, ok := services[r.name]
		if !ok {
			t.Fatalf("no service %s", r.name)
		}
		if s.Build == nil || s.Build.Context != "." || s.Build.Dockerfile != "Dockerfile" {
			t.Errorf("%s: build %+v, want the repository's Dockerfile", r.name, s.Build)
		}
		env := s.Environment

		store := env["TALENTLEDGER_STORE"]
		cfg, err := esdbclient.ParseConnectionString(store)
		if err != nil {
			t.Errorf("%s: TALENTLEDGER_STORE %q: %v", r.name, store, err)
		} else {
			var seeds []string
			for _, s := range cfg.GossipSeeds {
				seeds = append(seeds, s.String())
			}
			if !slices.Equal(seeds, advertised) {
				t.Errorf("%s: connection string names %v, want every node as advertised: %v", r.name, seeds, advertised)
			}
		}

		_, listen, err := net.SplitHostPort(env["TALENTLEDGER_ADDR"])
		if err != nil {
			t.Errorf("%s: TALENTLEDGER_ADDR %q: %v", r.name, env["TALENTLEDGER_ADDR"], err)
		}
		if want := []string{fmt.Sprintf("127.0.0.1:%s:%s", r.port, listen)}; !slices.Equal(s.Ports, want) {
			t.Errorf("%s: ports %v, want %v", r.name, s.Ports, want)
		}
		if hc := strings.Join(s.Healthcheck.Test, " "); !strings.Contains(hc, "127.0.0.1:"+listen+"/readyz") {
			t.Errorf("%s: health check %q does not probe /readyz on port %s", r.name, hc, listen)
		}

		// Personal data needs a key store: the replicas share the key
		// service, and never read the master key.
		if got := env["TALENTLEDGER_KEY_SERVICE"]; got != "https://keys:7443" {
			t.Errorf("%s: TALENTLEDGER_KEY_SERVICE = %q, want the key service over TLS", r.name, got)
		}
		for _, k := range []string{"TALENTLEDGER_MASTER_KEY", "TALENTLEDGER_NO_ENCRYPTION", "TALENTLEDGER_KEYSTORE"} {
			if v, ok := env[k]; ok {
				t.Errorf("%s: %s = %q beside the key service", r.name, k, v)
			}
		}
		if _, ok := s.DependsOn["keys"]; !ok {
			t.Errorf("%s does not wait for the key service", r.name)
		}
		for _, c := range []struct{ env, secret string }{
			{"TALENTLEDGER_PRINCIPALS", "principals"},
			{"TALENTLEDGER_AUDIT_KEY", "audit_key"},
			{"TALENTLEDGER_KEY_SERVICE_TOKEN", "key_service_token"},
			{"TALENTLEDGER_KEY_SERVICE_CA", "key_service_ca"},
		} {
			if got, want := env[c.env], "/run/secrets/"+c.secret; got != want {
				t.Errorf("%s: %s = %q, want %q", r.name, c.env, got, want)
			}
			if !slices.Contains(s.Secrets, c.secret) {
				t.Errorf("%s: secret %s not mounted", r.name, c.secret)
			}
			if secrets[c.secret] == "" {
				t.Errorf("no file for the secret %s", c.secret)
			}
		}
		for _, n := range composeNodes {
			if _, ok := s.DependsOn[n.name]; !ok {
				t.Errorf("%s does not wait for %s", r.name, n.name)
			}
		}
	}
}

// The key service the replicas share runs keystore serve over TLS, with
// the master key and every file it names mounted as secrets.
func TestComposeKeyService(t *testing.T) {
	services, secrets := loadCompose(t)
	k, ok := services["keys"]
	if !ok {
		t.Fatal("no service keys")
	}
	if !slices.Equal(k.Entrypoint, []string{"/usr/local/bin/talentledger", "keystore", "serve"}) {
		t.Errorf("keys: entrypoint %v, want keystore serve", k.Entrypoint)
	}
	args := map[string]string{}
	for i := 0; i+1 < len(k.Command); i += 2 {
		args[k.Command[i]] = k.Command[i+1]
	}
	for _, c := range []struct{ flag, secret string }{
		{"--master-key", "master_key"}, {"--token", "key_service_token"},
		{"--tls-cert", "key_service_cert"}, {"--tls-key", "key_service_key"},
	} {
		if got, want := args[c.flag], "/run/secrets/"+c.secret; got != want {
			t.Errorf("keys: %s %q, want %q", c.flag, got, want)
		}
		if !slices.Contains(k.Secrets, c.secret) || secrets[c.secret] == "" {
			t.Errorf("keys: secret %s not mounted or without a file", c.secret)
		}
	}
	if _, port, err := net.SplitHostPort(args["--listen"]); err != nil || port != "7443" {
		t.Errorf("keys: --listen %q, want port 7443", args["--listen"])
	}
	if args["--keys"] == "" || slices.Contains(k.Command, "--insecure-loopback") {
		t.Errorf("keys: command %v: want a key store directory and TLS", k.Command)
	}
}

// TestDockerfile checks what the compose file and the README rely on: the
// image runs serve as an unprivileged user, listens where the replicas
// publish, and its build cannot pick up secrets.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	var user, entrypoint, expose string
	froms := 0
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "FROM":
			froms++
		case "USER":
			user = fields[1]
		case "ENTRYPOINT":
			entrypoint = strings.Join(fields[1:], " ")
		case "EXPOSE":
			expose = fields[1]
		}
	}
	if froms < 2 {
		t.Errorf("%d FROM lines: want a multi-stage build", froms)
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0:") || user == "0" {
		t.Errorf("USER %q: want an unprivileged user", user)
	}
	if entrypoint != `["/usr/local/bin/talentledger", "serve"]` {
		t.Errorf("ENTRYPOINT %s, want talentledger serve", entrypoint)
	}
	if expose != "8080" || !strings.Contains(string(b), "TALENTLEDGER_ADDR=0.0.0.0:8080") {
		t.Errorf("EXPOSE %q: want serve listening on 0.0.0.0:8080", expose)
	}
	if !strings.Contains(string(b), "CGO_ENABLED=0") {
		t.Error("the build does not disable cgo")
	}
	ignore, err := os.ReadFile(filepath.Join("..", "..", ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pattern := range []string{"**/secrets/", "**/*.pem", "**/principals*.json", "**/data/"} {
		if !slices.Contains(strings.Split(string(ignore), "\n"), pattern) {
			t.Errorf(".dockerignore does not exclude %s", pattern)
		}
	}
}

// TestReadmeNamesComposeServices checks that the README's section on
// EventStoreDB names what docker-compose.yml runs, under the same names and
// ports, and the connection string the replicas use.
func TestReadmeNamesComposeServices(t *testing.T) {
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	const heading = "\n## Running on EventStoreDB\n"
	i := strings.Index(readme, heading)
	if i < 0 {
		t.Fatalf("README.md has no %q section", strings.TrimSpace(heading))
	}
	section := readme[i+len(heading):]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	services, _ := loadCompose(t)
	want := []string{services["ledger1"].Environment["TALENTLEDGER_STORE"], "/readyz", "127.0.0.1 node1 node2 node3"}
	for _, n := range composeNodes {
		want = append(want, "`"+n.name+"`", n.port)
	}
	for _, r := range composeReplicas {
		want = append(want, "`"+r.name+"`", "127.0.0.1:"+r.port)
	}
	for _, w := range want {
		if !strings.Contains(section, w) {
			t.Errorf("the README's EventStoreDB section does not mention %q", w)
		}
	}
}
