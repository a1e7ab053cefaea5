package lomond

func (w *writer) locked() bool { return w.held.Load() }
