package projections

// SetSavedHook sets the hook run between a model's Save and its commit;
// the returned function clears it.
func SetSavedHook(f func(model string)) func() {
	testHookSaved = func(model string) error { f(model); return nil }
	return func() { testHookSaved = nil }
}

// SetCommitHook sets a hook run between a model's Save and its commit
// whose error fails the commit; the returned function clears it.
func SetCommitHook(f func(model string) error) func() {
	testHookSaved = f
	return func() { testHookSaved = nil }
}
