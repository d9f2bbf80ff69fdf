package commands

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a terminal stand-in the timer goroutine may write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The last count of a burst reaches the screen: counts added within one
// interval of a frame are drawn by the timer, not left for the next add
// (which, between bulk batches, may be seconds away).
func TestProgressDrawsTheLastCountOfABurst(t *testing.T) {
	var (
		mu  sync.Mutex
		now = time.Unix(1_700_000_000, 0)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	stderr := &lockedBuffer{}
	streams := Streams{Err: stderr, Out: &bytes.Buffer{}, ProgressTTY: true, Now: clock}
	r := &runner{display: newDisplay(&streams)}
	r.streams = streams
	p := r.newProgress(100, "enroll")
	defer p.finish()
	advance(2 * time.Second) // past the delay before a bar appears
	p.Done()
	if !strings.Contains(stderr.String(), "1/100") {
		t.Fatalf("first frame missing: %q", stderr.String())
	}
	for range 4 {
		p.Done() // within the interval: throttled
	}
	advance(progressInterval)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), "5/100") {
		if time.Now().After(deadline) {
			t.Fatalf("the bar still shows an old count: %q", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
