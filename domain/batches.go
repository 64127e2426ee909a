package domain

import "sync"

// batches holds, by key, the requests waiting to be carried out together:
// the first to arrive runs a batch of every request waiting, and whoever
// arrived meanwhile runs the next, so that no caller waits for others'
// batches after its own. combine.go and atomic.go batch through it.
type batches[R waiting] struct {
	mu     sync.Mutex
	queues map[string]*batchQueue[R]
}

// waiting is a request in a batch: done is closed once it is answered;
// lead, when it is to run the next batch itself.
type waiting interface {
	chans() (done, lead chan struct{})
}

type batchQueue[R any] struct {
	pending []R
	// running is set while a request runs the key's batches.
	running bool
}

// join queues req under key and returns once it is answered, by another
// request's batch or by a batch of its own, which run carries out. run
// returns finish, or nil: the key's next batch may start as soon as run
// returns, and finish, called after that, completes what run began; the
// two must answer every request of the batch.
func (b *batches[R]) join(key string, req R, run func(batch []R) (finish func())) {
	done, lead := req.chans()
	b.mu.Lock()
	if b.queues == nil {
		b.queues = map[string]*batchQueue[R]{}
	}
	q := b.queues[key]
	if q == nil {
		q = &batchQueue[R]{}
		b.queues[key] = q
	}
	q.pending = append(q.pending, req)
	leader := !q.running
	q.running = true
	b.mu.Unlock()
	if !leader {
		select {
		case <-done:
			return
		case <-lead:
		}
	}
	b.mu.Lock()
	batch := q.pending
	q.pending = nil
	b.mu.Unlock()
	finish := run(batch)
	b.mu.Lock()
	if len(q.pending) > 0 {
		_, next := q.pending[0].chans()
		close(next)
	} else {
		q.running = false
		delete(b.queues, key)
	}
	b.mu.Unlock()
	if finish != nil {
		finish()
	}
	<-done
}
