package projections

// SetSavedHook sets the hook run between a model's Save and its commit;
// the returned function clears it.
func SetSavedHook(f func(model string)) func() {
	testHookSaved = f
	return func() { testHookSaved = nil }
}
