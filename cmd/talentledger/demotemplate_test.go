package main

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"talentledger/domain"
	"talentledger/eventstore/pebble"
)

// The demo's log, written once per test binary and copied into each test
// that needs a demo directory: loading the city-scale demo takes seconds
// (more under -race), and most tests only need its log, not its loading.
// Tests of the loading itself (TestDemoFigures, the sealed demo, the demo
// over EventStoreDB) still load it through the service.
var demoTemplate struct {
	once sync.Once
	dir  string
	err  error
}

// copyDemo writes the demo's log into dir, which must be empty or absent.
func copyDemo(t testing.TB, dir string) {
	t.Helper()
	demoTemplate.once.Do(func() {
		demoTemplate.dir, demoTemplate.err = buildDemoTemplate()
	})
	if demoTemplate.err != nil {
		t.Fatalf("demo template: %v", demoTemplate.err)
	}
	if err := os.CopyFS(dir, os.DirFS(demoTemplate.dir)); err != nil {
		t.Fatalf("copy the demo: %v", err)
	}
}

// buildDemoTemplate loads the demo into a new directory and closes it.
func buildDemoTemplate() (string, error) {
	root, err := os.MkdirTemp("", "talentledger-demo-")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "data")
	store, err := pebble.Open(dir)
	if err != nil {
		return "", err
	}
	if err := loadDemo(context.Background(), domain.NewService(store)); err != nil {
		store.Close()
		return "", err
	}
	if err := store.Close(); err != nil {
		return "", err
	}
	return dir, nil
}

// removeDemoTemplate removes the template when the tests are done.
func removeDemoTemplate() {
	if demoTemplate.dir != "" {
		os.RemoveAll(filepath.Dir(demoTemplate.dir))
	}
}
