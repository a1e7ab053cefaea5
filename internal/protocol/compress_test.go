package protocol

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"math/rand"
	"sync"
	"testing"
)

// deflateTestMessages are messages of every kind: empty, tiny, text,
// repetitive, random, over one stored block (64 KiB) and over the window.
func deflateTestMessages() [][]byte {
	rng := rand.New(rand.NewSource(10))
	text := jsonText(rng, 1024)
	return [][]byte{
		nil,
		[]byte("Hello"),
		text,
		text, // the same again: takeover makes it tiny
		bytes.Repeat([]byte("abc"), 200),
		jsonText(rng, 300),
		randomBytes(rng, 3000),
		jsonText(rng, 100<<10),
		randomBytes(rng, 70<<10),
		text,
	}
}

// stdlibInflate decodes a session's payloads independently of Inflater: a
// plain compress/flate reader per message over payload+tail, with the
// previous output as dictionary when the sender took over its context.
func stdlibInflate(t *testing.T, payloads [][]byte, takeover bool) [][]byte {
	t.Helper()
	var out [][]byte
	var window []byte
	for i, p := range payloads {
		var dict []byte
		if takeover {
			dict = window
		}
		r := flate.NewReaderDict(io.MultiReader(bytes.NewReader(p), bytes.NewReader(syncTail)), dict)
		got, err := io.ReadAll(r)
		if err != io.ErrUnexpectedEOF { // the stream goes on: no final block
			t.Fatalf("message %d: compress/flate read ended with %v", i, err)
		}
		out = append(out, got)
		window = append(window, got...)
		window = window[max(0, len(window)-32768):]
	}
	return out
}

// TestDeflateRoundTrip compresses a session of messages with every kind of
// parameters and level, and decodes it three ways: Inflater, a plain
// compress/flate reader, and refInflate (which also checks how far back the
// back-references reach).
func TestDeflateRoundTrip(t *testing.T) {
	msgs := deflateTestMessages()
	params := []DeflateParams{
		{},
		{ClientNoContextTakeover: true},
		{ClientMaxWindowBits: 9},
		{ClientMaxWindowBits: 8, ClientNoContextTakeover: true},
		{ClientMaxWindowBits: 12},
		{ClientMaxWindowBits: 15},
	}
	levels := []int{DefaultDeflateLevel, flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, 2, flate.DefaultCompression, flate.BestCompression}
	for _, p := range params {
		for _, level := range levels {
			t.Run(fmt.Sprintf("%s/level=%d", p, level), func(t *testing.T) {
				d := NewDeflater(p, level)
				takeover := !p.ClientNoContextTakeover && deflateWindowBits(p.ClientMaxWindowBits) == 15
				window := 1 << deflateWindowBits(p.ClientMaxWindowBits)
				var payloads [][]byte
				prefix := []byte("prefix")
				for _, m := range msgs {
					out := d.Deflate(bytes.Clone(prefix), m)
					if !bytes.HasPrefix(out, prefix) {
						t.Fatalf("Deflate overwrote dst")
					}
					payloads = append(payloads, out[len(prefix):])
				}

				// The receiver as the server would configure it.
				f := NewInflater(DeflateParams{ServerNoContextTakeover: !takeover, ServerMaxWindowBits: p.ClientMaxWindowBits})
				for i, pl := range payloads {
					got, err := f.Inflate(nil, pl, -1)
					if err != nil || !bytes.Equal(got, msgs[i]) {
						t.Fatalf("Inflater, message %d: got %d bytes, %v; want %d", i, len(got), err, len(msgs[i]))
					}
				}
				for i, got := range stdlibInflate(t, payloads, takeover) {
					if !bytes.Equal(got, msgs[i]) {
						t.Fatalf("compress/flate, message %d: got %d bytes, want %d", i, len(got), len(msgs[i]))
					}
				}

				// Back-references stay within the agreed window; without
				// takeover, within the message.
				var hist []byte
				for i, pl := range payloads {
					var dict []byte
					if takeover {
						dict = hist
					}
					res := refInflate(dict, append(bytes.Clone(pl), syncTail...), -1)
					if res.end != refClean || !bytes.Equal(res.out, msgs[i]) {
						t.Fatalf("refInflate, message %d: %v %s, %d bytes", i, res.end, res.detail, len(res.out))
					}
					if res.maxDist > window {
						t.Fatalf("message %d: back-reference %d bytes back, window %d", i, res.maxDist, window)
					}
					if window < 32768 && len(msgs[i]) > window && res.maxDist != 0 {
						t.Fatalf("message %d (%d bytes) over a %d-byte window: back-reference %d, want HuffmanOnly", i, len(msgs[i]), window, res.maxDist)
					}
					hist = append(hist, msgs[i]...)
				}
			})
		}
	}
}

// TestDeflateTakeoverSmaller: with context takeover a message repeating the
// previous one compresses to a fraction of it; without, to the same size.
func TestDeflateTakeoverSmaller(t *testing.T) {
	msg := jsonText(rand.New(rand.NewSource(11)), 1024)
	for _, level := range []int{DefaultDeflateLevel, flate.BestSpeed, flate.BestCompression} {
		sizes := func(p DeflateParams) (first, second int) {
			d := NewDeflater(p, level)
			return len(d.Deflate(nil, msg)), len(d.Deflate(nil, msg))
		}
		f1, s1 := sizes(DeflateParams{})
		f2, s2 := sizes(DeflateParams{ClientNoContextTakeover: true})
		if f1 >= len(msg)/2 || f2 >= len(msg)/2 {
			t.Fatalf("level %d: first message: %d and %d bytes of %d", level, f1, f2, len(msg))
		}
		if s1 > f1/4 {
			t.Errorf("level %d, takeover: second message %d bytes, first %d: want a back-reference to the first", level, s1, f1)
		}
		if s2 != f2 {
			t.Errorf("level %d, no takeover: second message %d bytes, first %d: want the same", level, s2, f2)
		}
	}
}

// TestDeflateWindowBits: with client_max_window_bits=9 a message of at most
// 512 bytes is still compressed with back-references (within itself), a
// longer one with Huffman coding only.
func TestDeflateWindowBits(t *testing.T) {
	d := NewDeflater(DeflateParams{ClientMaxWindowBits: 9}, DefaultDeflateLevel)
	short := bytes.Repeat([]byte("websocket "), 52)[:512]
	long := bytes.Repeat([]byte("websocket "), 100)
	for i := 0; i < 2; i++ { // the second time, nothing is taken over
		p := d.Deflate(nil, short)
		res := refInflate(nil, append(p, syncTail...), -1)
		if res.end != refClean || !bytes.Equal(res.out, short) || res.maxDist == 0 || res.maxDist > len(short) {
			t.Fatalf("short: %v, max distance %d", res.end, res.maxDist)
		}
		if len(p) > 64 {
			t.Errorf("short: %d bytes compressed to %d", len(short), len(p))
		}
		p = d.Deflate(nil, long)
		res = refInflate(nil, append(p, syncTail...), -1)
		if res.end != refClean || !bytes.Equal(res.out, long) || res.maxDist != 0 {
			t.Fatalf("long: %v, max distance %d", res.end, res.maxDist)
		}
		if len(p) >= len(long) {
			t.Errorf("long: %d bytes compressed to %d", len(long), len(p))
		}
	}
}

func TestDeflateEmpty(t *testing.T) {
	for _, p := range []DeflateParams{{}, {ClientNoContextTakeover: true}, {ClientMaxWindowBits: 9}} {
		if got := NewDeflater(p, DefaultDeflateLevel).Deflate(nil, nil); !bytes.Equal(got, []byte{0x00}) {
			t.Errorf("%s: empty message compressed to %x, want 00", p, got)
		}
	}
}

// TestDeflateReset: after Reset the next message refers to nothing before it.
func TestDeflateReset(t *testing.T) {
	msg := jsonText(rand.New(rand.NewSource(12)), 2000)
	d := NewDeflater(DeflateParams{}, DefaultDeflateLevel)
	d.Deflate(nil, msg)
	if d.w == nil {
		t.Fatal("no writer kept with context takeover")
	}
	d.Reset()
	if d.w != nil {
		t.Fatal("Reset kept the writer")
	}
	p := d.Deflate(nil, msg)
	if res := refInflate(nil, append(p, syncTail...), -1); res.end != refClean || !bytes.Equal(res.out, msg) {
		t.Fatalf("after Reset the message does not decode on its own: %v %s", res.end, res.detail)
	}
	d.Reset()
	d.Reset() // twice is fine
}

// TestDeflateLazy: no writer before the first message, and none kept
// without context takeover.
func TestDeflateLazy(t *testing.T) {
	for _, p := range []DeflateParams{{}, {ClientNoContextTakeover: true}, {ClientMaxWindowBits: 10}} {
		d := NewDeflater(p, DefaultDeflateLevel)
		if d.w != nil {
			t.Fatalf("%s: writer allocated before the first message", p)
		}
		d.Deflate(nil, []byte("hello hello hello hello"))
		takeover := p == DeflateParams{}
		if (d.w != nil) != takeover {
			t.Errorf("%s: writer kept = %v, want %v", p, d.w != nil, takeover)
		}
	}
	f := NewInflater(DeflateParams{})
	if f.window != nil {
		t.Fatal("Inflater window allocated before the first message")
	}
}

func TestNewDeflaterLevel(t *testing.T) {
	takeover, fresh := DeflateParams{}, DeflateParams{ClientNoContextTakeover: true}
	small := DeflateParams{ClientMaxWindowBits: 10}
	for _, tt := range []struct {
		p        DeflateParams
		in, want int
	}{
		{takeover, DefaultDeflateLevel, 2},
		{fresh, DefaultDeflateLevel, flate.BestSpeed},
		{small, DefaultDeflateLevel, flate.BestSpeed},
		{takeover, -3, 2},
		{fresh, 10, flate.BestSpeed},
		{takeover, flate.HuffmanOnly, flate.HuffmanOnly},
		{fresh, flate.DefaultCompression, flate.DefaultCompression},
		{takeover, 0, 0},
		{fresh, 9, 9},
	} {
		if got := NewDeflater(tt.p, tt.in).level; got != tt.want {
			t.Errorf("%s, level %d: got %d, want %d", tt.p, tt.in, got, tt.want)
		}
	}
}

// TestDeflateAllocs: compressing into a buffer with room allocates nothing
// once the writer exists (takeover) or the pool is warm.
func TestDeflateAllocs(t *testing.T) {
	skipIfPoolsDrop(t)
	msg := jsonText(rand.New(rand.NewSource(13)), 1024)
	for _, p := range []DeflateParams{{}, {ClientNoContextTakeover: true}, {ClientMaxWindowBits: 9}} {
		d := NewDeflater(p, DefaultDeflateLevel)
		buf := make([]byte, 0, 4096)
		d.Deflate(buf, msg)
		allocs := testing.AllocsPerRun(100, func() { d.Deflate(buf, msg) })
		if allocs > 0.1 { // sync.Pool may drop its content at a GC
			t.Errorf("%s: %.2f allocations per message, want 0", p, allocs)
		}
	}
}

// TestDeflateConcurrentSessions: Deflaters and Inflaters of different
// sessions share the pools safely (run with -race).
func TestDeflateConcurrentSessions(t *testing.T) {
	msgs := deflateTestMessages()[:7]
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			p := DeflateParams{ClientNoContextTakeover: g%2 == 0}
			d := NewDeflater(p, DefaultDeflateLevel)
			f := NewInflater(DeflateParams{ServerNoContextTakeover: p.ClientNoContextTakeover})
			for round := 0; round < 20; round++ {
				for i, m := range msgs {
					got, err := f.Inflate(nil, d.Deflate(nil, m), -1)
					if err != nil || !bytes.Equal(got, m) {
						errs <- fmt.Errorf("session %d, round %d, message %d: %v", g, round, i, err)
						return
					}
				}
			}
			d.Reset()
			f.Reset()
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkDeflateInflate compresses and decompresses 1 KiB JSON-like
// messages (64 different ones, in turn), with and without context takeover.
func BenchmarkDeflateInflate(b *testing.B) {
	rng := rand.New(rand.NewSource(14))
	msgs := make([][]byte, 64)
	for i := range msgs {
		msgs[i] = jsonText(rng, 1024)
	}
	for _, noTakeover := range []bool{false, true} {
		name := "takeover"
		if noTakeover {
			name = "no_takeover"
		}
		b.Run(name, func(b *testing.B) {
			p := DeflateParams{ClientNoContextTakeover: noTakeover}
			d := NewDeflater(p, DefaultDeflateLevel)
			f := NewInflater(DeflateParams{ServerNoContextTakeover: noTakeover})
			cbuf := make([]byte, 0, 4096)
			dbuf := make([]byte, 0, 4096)
			var compressed int
			b.SetBytes(1024)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c := d.Deflate(cbuf, msgs[i%len(msgs)])
				compressed += len(c)
				if _, err := f.Inflate(dbuf, c, -1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(compressed)/float64(b.N), "compressed-B/msg")
		})
	}
}
