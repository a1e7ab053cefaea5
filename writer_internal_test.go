package lomond

// locked reports whether the write lock is taken: for tests that must wait
// until a send holds it.
func (w *writer) locked() bool { return w.lock != nil && len(w.lock) == 1 }
