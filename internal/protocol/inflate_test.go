package protocol

import (
	"bytes"
	"compress/flate"
	"encoding/hex"
	"errors"
	"io"
	"math/rand"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// The examples of RFC 7692 section 7.2.3, as message payloads.
var (
	// 7.2.3.1: "Hello" in one compressed block (also sent as two fragments,
	// whose payloads concatenate to the same bytes).
	rfcHelloCompressed = mustHex("f248cdc9c90700")
	// 7.2.3.2: "Hello" again, with the window of the message above.
	rfcHelloSharedWindow = mustHex("f200110000")
	// 7.2.3.3: "Hello" in a stored (uncompressed) block.
	rfcHelloStored = mustHex("000500faff48656c6c6f00")
	// 7.2.3.4: "Hello" in a block with BFINAL set, then the header of an
	// empty stored block.
	rfcHelloFinal = mustHex("f348cdc9c9070000")
	// 7.2.3.5: "Hello" in two compressed blocks ("He", "llo").
	rfcHelloTwoBlocks = mustHex("f248050000" + "00ffff" + "cac9c90700")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestInflateRFCExamples decodes RFC 7692's example payloads, each sent twice
// in a session, with and without context takeover.
func TestInflateRFCExamples(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
	}{
		{"compressed block", rfcHelloCompressed},
		{"stored block", rfcHelloStored},
		{"BFINAL block", rfcHelloFinal},
		{"two blocks", rfcHelloTwoBlocks},
	}
	for _, tt := range tests {
		for _, noTakeover := range []bool{false, true} {
			name := tt.name + "/takeover"
			if noTakeover {
				name = tt.name + "/no takeover"
			}
			t.Run(name, func(t *testing.T) {
				f := NewInflater(DeflateParams{ServerNoContextTakeover: noTakeover})
				for i := 0; i < 2; i++ {
					got, err := f.Inflate(nil, tt.payload, 1<<20)
					if err != nil {
						t.Fatalf("message %d: %v", i+1, err)
					}
					if string(got) != "Hello" {
						t.Fatalf("message %d = %q, want %q", i+1, got, "Hello")
					}
				}
			})
		}
	}
}

// TestInflateSharedWindow is RFC 7692 section 7.2.3.2: the second message
// refers to the first, which works only with context takeover; also after a
// first message that ended with a BFINAL block (section 7.2.3.4).
func TestInflateSharedWindow(t *testing.T) {
	for _, first := range [][]byte{rfcHelloCompressed, rfcHelloFinal, rfcHelloStored} {
		f := NewInflater(DeflateParams{})
		for i, p := range [][]byte{first, rfcHelloSharedWindow, rfcHelloSharedWindow} {
			got, err := f.Inflate(nil, p, -1)
			if err != nil || string(got) != "Hello" {
				t.Fatalf("first %x, message %d: got %q, %v; want Hello", first, i+1, got, err)
			}
		}

		f = NewInflater(DeflateParams{ServerNoContextTakeover: true})
		if _, err := f.Inflate(nil, first, -1); err != nil {
			t.Fatal(err)
		}
		if got, err := f.Inflate(nil, rfcHelloSharedWindow, -1); !errors.Is(err, ErrInflateCorrupt) {
			t.Fatalf("no takeover: second message = %q, %v; want ErrInflateCorrupt (no window to refer to)", got, err)
		}
	}
}

// TestInflateFinalBlock: a block with BFINAL set ends a DEFLATE stream, not
// the message. RFC 7692 section 7.2.1 lets blocks follow it in the same
// message ("The next DEFLATE block follows the padded data if any"): they
// are decoded, never dropped, and if they are not valid DEFLATE the message
// fails as corrupt (the session closes with 1007), never arrives cut short.
// Each payload is decoded twice in a session, with and without context
// takeover.
func TestInflateFinalBlock(t *testing.T) {
	hello := mustHex("f348cdc9c90700") // RFC 7692 7.2.3.4 without its last byte
	world := deflateStream(t, flate.BestSpeed, []byte(" World"))[0]
	tests := []struct {
		name    string
		payload []byte
		want    string // the message, if no error
		err     string // the error's detail, if any
	}{
		{"FinalBlockAloneIsAccepted", hello, "Hello", ""},
		{"FinalBlockThenEmptyStoredBlockHeaderIsAccepted", rfcHelloFinal, "Hello", ""},
		{"WholeStreamIsAccepted", finalStream(t, []byte("Hello, world")), "Hello, world", ""},
		{"WholeStreamThenEmptyStoredBlockHeaderIsAccepted", append(finalStream(t, []byte("Hello, world")), 0x00), "Hello, world", ""},
		{"EmptyFinalBlocksAfterFinalBlockAreAccepted", cat(hello, mustHex("0300"), mustHex("0300"), mustHex("00")), "Hello", ""},
		{"BlocksAfterFinalBlockAreDecoded", cat(hello, world), "Hello World", ""},
		{"StreamsAfterFinalBlocksAreDecoded", cat(finalStream(t, []byte("one ")), finalBlock(t, []byte("two ")), finalStream(t, []byte("three")), []byte{0x00}), "one two three", ""},
		{"StoredBlockAfterFinalBlockIsDecoded", cat(hello, rfcHelloStored), "HelloHello", ""},
		{"BlocksAfterFinalBlockReferBackToIt", cat(hello, rfcHelloSharedWindow), "HelloHello", ""},
		{"DataAfterFinalBlockThatIsNotDeflateIsAnError", cat(hello, mustHex("07")), "", "invalid deflate data before byte 8"},
		{"GarbageAfterFinalBlockIsAnError", cat(hello, mustHex("ffffffff")), "", "invalid deflate data"},
		{"BlockCutShortAfterFinalBlockIsAnError", cat(hello, mustHex("001400ebff4865")), "", "deflate data ends inside a block"},
		{"BadBlockAfterGoodBlocksAfterFinalBlockIsAnError", cat(hello, world, mustHex("0005000000")), "", "invalid deflate data before byte"},
	}
	for _, tt := range tests {
		for _, noTakeover := range []bool{false, true} {
			name := tt.name + "/takeover"
			if noTakeover {
				name = tt.name + "/no_takeover"
			}
			t.Run(name, func(t *testing.T) {
				f := NewInflater(DeflateParams{ServerNoContextTakeover: noTakeover})
				for i := 1; i <= 2; i++ {
					got, err := f.Inflate([]byte("keep"), tt.payload, 1<<20)
					if tt.err == "" {
						if err != nil || string(got) != "keep"+tt.want {
							t.Fatalf("message %d: got %q, %v; want %q", i, got, err, "keep"+tt.want)
						}
						continue
					}
					if !errors.Is(err, ErrInflateCorrupt) || errors.Is(err, ErrInflateLimit) {
						t.Fatalf("message %d: got %q, %v; want ErrInflateCorrupt (close 1007), not ErrInflateLimit", i, got, err)
					}
					if string(got) != "keep" {
						t.Fatalf("message %d: returned %q, want dst with its original length", i, got)
					}
					if !strings.Contains(err.Error(), tt.err) {
						t.Fatalf("message %d: error %q does not say %q", i, err, tt.err)
					}
					// The failed message left the context as it was.
					if got, err := f.Inflate(nil, rfcHelloCompressed, -1); err != nil || string(got) != "Hello" {
						t.Fatalf("after the error: got %q, %v; want Hello", got, err)
					}
				}
			})
		}
	}
}

// TestInflateFinalBlockWindow: the blocks after a final block see the same
// window as the ones before it: the previous messages with context takeover,
// none without; and the next message sees the whole message.
func TestInflateFinalBlockWindow(t *testing.T) {
	// An empty final block, then "Hello" as a back-reference 5 bytes back.
	refersBack := cat(mustHex("0300"), rfcHelloSharedWindow)

	f := NewInflater(DeflateParams{})
	for i, p := range [][]byte{rfcHelloCompressed, refersBack} {
		if got, err := f.Inflate(nil, p, -1); err != nil || string(got) != "Hello" {
			t.Fatalf("takeover, message %d: got %q, %v; want Hello", i+1, got, err)
		}
	}
	f = NewInflater(DeflateParams{ServerNoContextTakeover: true})
	if _, err := f.Inflate(nil, rfcHelloCompressed, -1); err != nil {
		t.Fatal(err)
	}
	if got, err := f.Inflate(nil, refersBack, -1); !errors.Is(err, ErrInflateCorrupt) {
		t.Fatalf("no takeover: got %q, %v; want ErrInflateCorrupt (nothing to refer back to)", got, err)
	}

	// A long message: the blocks after the final block refer back across
	// the end of the first stream and into the window; the next message
	// refers back into them.
	rng := rand.New(rand.NewSource(16))
	prev, first, extra := randomBytes(rng, 20000), randomBytes(rng, 20000), randomBytes(rng, 30000)
	second := cat(first[:9000], prev[18000:], extra) // prev within 32 KiB
	next := cat(extra[:5000], []byte("end"))
	msg := cat(finalStream(t, first), referringBack(t, cat(prev, first), second))

	f = NewInflater(DeflateParams{})
	if got, err := f.Inflate(nil, deflateStream(t, flate.BestSpeed, prev)[0], -1); err != nil || !bytes.Equal(got, prev) {
		t.Fatalf("first message: %d bytes, %v", len(got), err)
	}
	if got, err := f.Inflate(nil, msg, -1); err != nil || !bytes.Equal(got, cat(first, second)) {
		t.Fatalf("second message: %d bytes, %v; want %d", len(got), err, len(first)+len(second))
	}
	if got, err := f.Inflate(nil, referringBack(t, cat(first, second), next), -1); err != nil || !bytes.Equal(got, next) {
		t.Fatalf("third message: %d bytes, %v; want %d", len(got), err, len(next))
	}
	// Without the first message's window, the second does not decode: its
	// blocks after the final block did refer back into the window.
	f = NewInflater(DeflateParams{ServerNoContextTakeover: true})
	if got, err := f.Inflate(nil, msg, -1); !errors.Is(err, ErrInflateCorrupt) {
		t.Fatalf("second message without the window: %d bytes, %v; want ErrInflateCorrupt", len(got), err)
	}
}

// referringBack compresses msg with the window dict, sync-flushed, the tail
// removed, and checks that it refers back into dict.
func referringBack(t *testing.T, dict, msg []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriterDict(&buf, flate.BestCompression, dict)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var cie flate.CorruptInputError
	if _, err := io.ReadAll(flate.NewReader(bytes.NewReader(buf.Bytes()))); !errors.As(err, &cie) {
		t.Fatalf("decoded without the window: %v; want a distance too far back", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), syncTail)
}

// TestInflateFinalBlockLimit: the blocks after a final block count against
// the limit, like any output of the message.
func TestInflateFinalBlockLimit(t *testing.T) {
	p := cat(mustHex("f348cdc9c90700"), deflateStream(t, flate.BestSpeed, []byte(" World"))[0])
	f := NewInflater(DeflateParams{})
	if got, err := f.Inflate(nil, p, 10); !errors.Is(err, ErrInflateLimit) {
		t.Fatalf("limit 10: got %q, %v; want ErrInflateLimit", got, err)
	}
	if got, err := f.Inflate(nil, p, 11); err != nil || string(got) != "Hello World" {
		t.Fatalf("limit 11: got %q, %v; want Hello World", got, err)
	}
}

// TestInflateFinalBlockAllocs: a message ending in a final block, then the
// header of an empty stored block (RFC 7692 section 7.2.3.4) or other
// blocks, allocates nothing once the pool and the window are warm.
func TestInflateFinalBlockAllocs(t *testing.T) {
	skipIfPoolsDrop(t)
	msg := jsonText(rand.New(rand.NewSource(17)), 1024)
	for _, p := range [][]byte{
		append(finalStream(t, msg), 0x00),
		cat(finalStream(t, msg[:500]), finalStream(t, msg[500:])),
	} {
		for _, noTakeover := range []bool{false, true} {
			f := NewInflater(DeflateParams{ServerNoContextTakeover: noTakeover})
			buf := make([]byte, 0, 4096)
			if _, err := f.Inflate(buf, p, -1); err != nil {
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(100, func() {
				if got, err := f.Inflate(buf, p, -1); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("got %d bytes, %v", len(got), err)
				}
			})
			if allocs > 0.1 {
				t.Errorf("no takeover %v, %d-byte payload: %.2f allocations per message, want 0", noTakeover, len(p), allocs)
			}
		}
	}
}

// finalBlock returns msg compressed in one block with BFINAL set, padded to
// a byte boundary: a sync-flushed block with its BFINAL bit set, cut after
// the byte where it ends.
func finalBlock(t testing.TB, msg []byte) []byte {
	t.Helper()
	p := deflateStream(t, flate.BestSpeed, msg)[0]
	p[0] |= 1
	r := bytes.NewReader(p) // an io.ByteReader: flate reads no further than the end
	got, err := io.ReadAll(flate.NewReader(r))
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("finalBlock(%q): the first block holds %q (%v), not all", msg, got, err)
	}
	return p[:len(p)-r.Len()]
}

// cat concatenates byte slices into a new one.
func cat(parts ...[]byte) []byte {
	return bytes.Join(parts, nil)
}

func TestInflateEmptyMessage(t *testing.T) {
	// Sync-flushed nothing; zlib's empty final block; no payload at all.
	for _, p := range [][]byte{{0x00}, mustHex("0300"), nil} {
		got, err := NewInflater(DeflateParams{}).Inflate([]byte("x"), p, 0)
		if err != nil || string(got) != "x" {
			t.Fatalf("%x: got %q, %v; want dst unchanged", p, got, err)
		}
	}
}

func TestInflateCorrupt(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		detail  string
	}{
		{"reserved block type", mustHex("07"), "invalid deflate data before byte 1"},
		{"stored length mismatch", mustHex("0005000000"), "invalid deflate data before byte 5"},
		{"distance before the start", rfcHelloSharedWindow, "invalid deflate data"},
		{"garbage", []byte("not deflate at all"), ""},
		{"truncated stored block", mustHex("000500faff4865"), ""},
		{"truncated compressed block", rfcHelloCompressed[:3], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := NewInflater(DeflateParams{ServerNoContextTakeover: true}).Inflate(dst, tt.payload, -1)
			if !errors.Is(err, ErrInflateCorrupt) {
				t.Fatalf("got %q, %v; want ErrInflateCorrupt", got, err)
			}
			if string(got) != "keep" {
				t.Errorf("returned %q, want dst with its original length", got)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "lomond: corrupt compressed message: ") || strings.Count(msg, "lomond:") != 1 {
				t.Errorf("error %q: want one \"lomond: corrupt compressed message: \" prefix", msg)
			}
			if !strings.Contains(msg, tt.detail) {
				t.Errorf("error %q does not say %q", msg, tt.detail)
			}
			if strings.Contains(msg, "flate:") {
				t.Errorf("error %q carries compress/flate's text", msg)
			}
		})
	}
	// The compress/flate error stays reachable.
	_, err := NewInflater(DeflateParams{}).Inflate(nil, mustHex("07"), -1)
	var cie flate.CorruptInputError
	if !errors.As(err, &cie) {
		t.Errorf("errors.As(%v, flate.CorruptInputError) = false", err)
	}
}

// deflateStream compresses msgs as a server with context takeover does: one
// writer, a sync flush per message, the tail removed.
func deflateStream(t testing.TB, level int, msgs ...[]byte) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, m := range msgs {
		buf.Reset()
		if _, err := w.Write(m); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		p, ok := bytes.CutSuffix(buf.Bytes(), syncTail)
		if !ok {
			t.Fatalf("flush output %x does not end with the sync tail", buf.Bytes())
		}
		out = append(out, bytes.Clone(p))
	}
	return out
}

// TestInflateStreamTakeover decodes a server's stream compressed with
// context takeover, where later messages refer to earlier ones.
func TestInflateStreamTakeover(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var msgs [][]byte
	for i := 0; i < 40; i++ {
		msgs = append(msgs, jsonText(rng, 100+rng.Intn(5000)))
	}
	repeated := jsonText(rng, 3000)
	msgs = append(msgs, bytes.Repeat([]byte("big "), 50000), nil, randomBytes(rng, 70000), repeated, repeated)
	for _, level := range []int{flate.BestSpeed, flate.DefaultCompression, flate.BestCompression} {
		payloads := deflateStream(t, level, msgs...)
		if n := len(payloads[len(payloads)-1]); n >= len(repeated)/10 {
			t.Fatalf("level %d: a repeated message compressed to %d bytes, want a back-reference", level, n)
		}
		f := NewInflater(DeflateParams{})
		var dst []byte
		for i, p := range payloads {
			got, err := f.Inflate(dst[:0], p, -1)
			if err != nil {
				t.Fatalf("level %d, message %d: %v", level, i, err)
			}
			if !bytes.Equal(got, msgs[i]) {
				t.Fatalf("level %d, message %d: got %d bytes, want %d", level, i, len(got), len(msgs[i]))
			}
			dst = got
		}
	}
}

// TestInflateWindowBits: with server_max_window_bits=N the Inflater keeps
// 2^N bytes between messages (512 for N=8, as zlib uses a 9-bit window for 8).
func TestInflateWindowBits(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	first := randomBytes(rng, 2000)
	// The second message repeats 64 bytes of the first that start dist
	// bytes before the end of the first message.
	second := func(dist int) []byte { return bytes.Clone(first[len(first)-dist : len(first)-dist+64]) }
	tests := []struct {
		bits, dist int
		ok         bool
	}{
		{9, 512, true},
		{9, 513, false},
		{8, 512, true},
		{8, 513, false},
		{10, 1024, true},
		{10, 1025, false},
		{15, 1999, true},
		{0, 1999, true},
	}
	for _, tt := range tests {
		payloads := deflateStream(t, flate.BestCompression, first, second(tt.dist))
		f := NewInflater(DeflateParams{ServerMaxWindowBits: tt.bits})
		if _, err := f.Inflate(nil, payloads[0], -1); err != nil {
			t.Fatal(err)
		}
		got, err := f.Inflate(nil, payloads[1], -1)
		if tt.ok && (err != nil || !bytes.Equal(got, second(tt.dist))) {
			t.Errorf("bits %d, distance %d: got %d bytes, %v; want the message", tt.bits, tt.dist, len(got), err)
		}
		if !tt.ok && !errors.Is(err, ErrInflateCorrupt) {
			t.Errorf("bits %d, distance %d: got %v; want ErrInflateCorrupt (beyond the window)", tt.bits, tt.dist, err)
		}
	}
}

// TestInflateLimit: a message of exactly the limit passes, one byte more is
// ErrInflateLimit; a negative limit is no limit.
func TestInflateLimit(t *testing.T) {
	msg := bytes.Repeat([]byte("abcdefgh"), 1000)
	p := deflateStream(t, flate.BestSpeed, msg)[0]
	for _, tt := range []struct {
		limit int
		ok    bool
	}{{8000, true}, {7999, false}, {-1, true}, {0, false}, {1 << 30, true}} {
		got, err := NewInflater(DeflateParams{}).Inflate(nil, p, tt.limit)
		if tt.ok && (err != nil || !bytes.Equal(got, msg)) {
			t.Errorf("limit %d: got %d bytes, %v; want the message", tt.limit, len(got), err)
		}
		if !tt.ok && (!errors.Is(err, ErrInflateLimit) || len(got) != 0) {
			t.Errorf("limit %d: got %d bytes, %v; want ErrInflateLimit", tt.limit, len(got), err)
		}
	}
}

// TestInflateBomb: 1 MiB of zeros (about 1 KiB compressed) against a 64 KiB
// limit stops early: little is allocated and the window is untouched.
func TestInflateBomb(t *testing.T) {
	bomb := deflateStream(t, flate.BestCompression, make([]byte, 1<<20))[0]
	if len(bomb) > 2048 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	f := NewInflater(DeflateParams{})
	if _, err := f.Inflate(nil, bomb, 64<<10); !errors.Is(err, ErrInflateLimit) { // warms the reader pool
		t.Fatalf("got %v, want ErrInflateLimit", err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := f.Inflate(nil, bomb, 64<<10)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrInflateLimit) {
		t.Fatalf("got %v, want ErrInflateLimit", err)
	}
	if cap(got) > 64<<10+1 {
		t.Errorf("output buffer grew to %d bytes, want at most the limit + 1", cap(got))
	}
	// The output buffer (at most 64 KiB + 1 and its smaller predecessors)
	// and perhaps a decompressor if the pool was emptied by a GC.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<10 {
		t.Errorf("inflating the bomb allocated %d bytes, want under 256 KiB", alloc)
	}
	if len(f.window) != 0 {
		t.Errorf("a failed message left %d bytes in the window", len(f.window))
	}
	// Into a buffer with room for the whole bomb, it still stops at the
	// limit + 1: nothing is written past that.
	big := bytes.Repeat([]byte{0xaa}, 1<<20)
	if _, err := f.Inflate(big[:0], bomb, 64<<10); !errors.Is(err, ErrInflateLimit) {
		t.Fatalf("got %v, want ErrInflateLimit", err)
	}
	if i := bytes.IndexByte(big, 0xaa); i != 64<<10+1 || bytes.Count(big[i:], []byte{0xaa}) != len(big)-i {
		t.Errorf("output written up to byte %d of the buffer, want %d", i, 64<<10+1)
	}
	// Unlimited, it inflates.
	if got, err := f.Inflate(nil, bomb, -1); err != nil || len(got) != 1<<20 {
		t.Errorf("unlimited: got %d bytes, %v", len(got), err)
	}
}

// TestInflateResetAndPoolIsolation: Reset drops the window, and a pooled
// decompressor carries no window from one Inflater to another.
func TestInflateResetAndPoolIsolation(t *testing.T) {
	a := NewInflater(DeflateParams{})
	if _, err := a.Inflate(nil, rfcHelloCompressed, -1); err != nil {
		t.Fatal(err)
	}
	b := NewInflater(DeflateParams{})
	if _, err := b.Inflate(nil, rfcHelloSharedWindow, -1); !errors.Is(err, ErrInflateCorrupt) {
		t.Fatalf("fresh Inflater decoded a reference to another's window: %v", err)
	}
	a.Reset()
	if _, err := a.Inflate(nil, rfcHelloSharedWindow, -1); !errors.Is(err, ErrInflateCorrupt) {
		t.Fatalf("after Reset: %v, want ErrInflateCorrupt (no window)", err)
	}
	if _, err := a.Inflate(nil, rfcHelloCompressed, -1); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Inflate(nil, rfcHelloSharedWindow, -1); err != nil || string(got) != "Hello" {
		t.Fatalf("reused after Reset: %q, %v", got, err)
	}
}

// TestInflateWindowKept: the window holds exactly the last 2^bits bytes of
// output, across messages of every size.
func TestInflateWindowKept(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	var all []byte
	var msgs [][]byte
	for _, n := range []int{10, 300, 0, 700, 5000, 1, 40000, 20, 600} {
		m := randomBytes(rng, n)
		msgs = append(msgs, m)
	}
	payloads := deflateStream(t, flate.BestSpeed, msgs...)
	f := NewInflater(DeflateParams{ServerMaxWindowBits: 10})
	for i, p := range payloads {
		if _, err := f.Inflate(nil, p, -1); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		all = append(all, msgs[i]...)
		want := all[max(0, len(all)-1024):]
		if !bytes.Equal(f.window, want) || cap(f.window) > 1024 {
			t.Fatalf("after message %d: window %d bytes (cap %d), want the last %d of the output", i, len(f.window), cap(f.window), len(want))
		}
	}
}

// TestInflateAllocs: decoding into a buffer with room allocates nothing once
// the pool and the window are warm.
func TestInflateAllocs(t *testing.T) {
	skipIfPoolsDrop(t)
	msg := jsonText(rand.New(rand.NewSource(4)), 1024)
	for _, noTakeover := range []bool{false, true} {
		payloads := deflateStream(t, flate.BestSpeed, msg, msg)
		p := payloads[0]
		if !noTakeover {
			p = payloads[1]
		}
		f := NewInflater(DeflateParams{ServerNoContextTakeover: noTakeover})
		if _, err := f.Inflate(nil, payloads[0], -1); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 0, 4096)
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := f.Inflate(buf, p, -1); err != nil {
				t.Fatal(err)
			}
		})
		// sync.Pool may drop its content at a GC: allow a rare refill.
		if allocs > 0.1 {
			t.Errorf("no takeover %v: %.2f allocations per message, want 0", noTakeover, allocs)
		}
	}
}

// skipIfPoolsDrop skips an allocation test when sync.Pool loses what is put
// in it, as it does on purpose for a quarter of the items under the race
// detector.
func skipIfPoolsDrop(t *testing.T) {
	t.Helper()
	var p sync.Pool
	for i := 0; i < 200; i++ {
		p.Put(new(int))
		if p.Get() == nil {
			t.Skip("sync.Pool drops items in this build (race detector): allocations not measured")
		}
	}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	rng.Read(b)
	return b
}

// jsonText returns n bytes of JSON-like text.
func jsonText(rng *rand.Rand, n int) []byte {
	var b []byte
	words := []string{"id", "name", "price", "quantity", "status", "active", "user", "order", "timestamp"}
	for len(b) < n {
		b = append(b, `{"`...)
		b = append(b, words[rng.Intn(len(words))]...)
		b = append(b, `":`...)
		b = append(b, []byte(strings.Repeat("7", 1+rng.Intn(6)))...)
		b[len(b)-1] = byte('0' + rng.Intn(10))
		b = append(b, `,"`...)
		b = append(b, words[rng.Intn(len(words))]...)
		b = append(b, `":"`...)
		b = append(b, words[rng.Intn(len(words))]...)
		b = append(b, `"},`...)
	}
	return b[:n]
}

// FuzzInflate decodes arbitrary payloads, once with no window and, with
// context takeover, a second time with the first's output as window. Inflate
// must never panic, never return or allocate more than the limit, and agree
// with two reference decoders: compress/flate on the payload plus the sync
// tail, and refInflate, an independent DEFLATE decoder.
func FuzzInflate(f *testing.F) {
	for _, p := range [][]byte{
		rfcHelloCompressed, rfcHelloSharedWindow, rfcHelloStored, rfcHelloFinal, rfcHelloTwoBlocks,
		{0x00}, nil, mustHex("f348cdc9c907ffff"), mustHex("07"),
		// Blocks after a final block: a back-reference, a stored block,
		// an empty final block, garbage.
		mustHex("f348cdc9c90700" + "f200110000"), mustHex("f348cdc9c90700" + "000500faff48656c6c6f00"),
		mustHex("f348cdc9c90700" + "0300" + "00"), mustHex("f348cdc9c90700" + "07"),
	} {
		f.Add(p, uint16(1000), true)
		f.Add(p, uint16(3), false)
	}
	stream := deflateStream(f, flate.BestSpeed, []byte("hello hello hello websocket"), []byte("hello websocket hello"))
	f.Add(stream[0], uint16(100), true)
	f.Add(stream[1], uint16(100), true)
	f.Add(deflateStream(f, flate.BestCompression, make([]byte, 5000))[0], uint16(4096), false)
	f.Add(deflateStream(f, flate.HuffmanOnly, []byte("huffman only"))[0], uint16(50), true)

	f.Fuzz(func(t *testing.T, payload []byte, limit16 uint16, takeover bool) {
		limit := int(limit16)
		if limit16 == 0xffff && len(payload) <= 512 {
			limit = -1 // unlimited, on payloads that cannot inflate past 530 KB
		}
		inf := NewInflater(DeflateParams{ServerNoContextTakeover: !takeover})
		got, err := inf.Inflate(nil, payload, limit)
		checkInflate(t, nil, payload, limit, got, err)
		if !takeover || err != nil {
			return
		}
		dict := bytes.Clone(got[max(0, len(got)-32768):])
		got2, err := inf.Inflate(nil, payload, limit)
		checkInflate(t, dict, payload, limit, got2, err)
	})
}

// checkInflate checks one Inflate result (dst was nil) against the
// reference decoders given the window dict.
func checkInflate(t *testing.T, dict, payload []byte, limit int, got []byte, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, ErrInflateLimit) && !errors.Is(err, ErrInflateCorrupt) {
		t.Fatalf("unexpected error kind: %v", err)
	}
	if err != nil && len(got) != 0 {
		t.Fatalf("error %v with %d bytes returned", err, len(got))
	}
	if limit >= 0 && (len(got) > limit || cap(got) > limit+1) {
		t.Fatalf("limit %d: returned %d bytes, capacity %d", limit, len(got), cap(got))
	}
	overLimit := func(n int) bool { return limit >= 0 && n > limit }

	// compress/flate, reading until it ends or fails, or exceeds the limit.
	ref, refErr := flateMessage(dict, payload, limit)
	var cie flate.CorruptInputError
	switch {
	case refErr == nil: // a final block (the message ends there), or over the limit
		if overLimit(len(ref)) {
			if !errors.Is(err, ErrInflateLimit) {
				t.Fatalf("flate decodes %d bytes, over the limit %d; got %v", len(ref), limit, err)
			}
		} else if err != nil || !bytes.Equal(got, ref) {
			t.Fatalf("flate decodes %q; got %q, %v", ref, got, err)
		}
	case errors.As(refErr, &cie):
		if err == nil {
			t.Fatalf("flate fails (%v) after %q; got %q", refErr, ref, got)
		}
		if errors.Is(err, ErrInflateLimit) && !overLimit(len(ref)) {
			t.Fatalf("ErrInflateLimit but flate decodes only %d bytes before failing", len(ref))
		}
	default: // ran out of input: what it decoded is a prefix of the message
		if err == nil && !bytes.HasPrefix(got, ref) {
			t.Fatalf("flate decodes %q before running out, not a prefix of %q", ref, got)
		}
	}

	// The independent decoder.
	res := refInflateMessage(dict, payload, limit)
	switch res.end {
	case refOverLimit:
		if !errors.Is(err, ErrInflateLimit) {
			t.Fatalf("refInflate decodes over %d bytes, over the limit %d; got %v", len(res.out), limit, err)
		}
	case refFinal, refClean:
		if overLimit(len(res.out)) {
			if !errors.Is(err, ErrInflateLimit) {
				t.Fatalf("refInflate decodes %d bytes, over the limit %d; got %v", len(res.out), limit, err)
			}
		} else if err != nil || !bytes.Equal(got, res.out) {
			t.Fatalf("refInflate decodes %q (%v); got %q, %v", res.out, res.end, got, err)
		}
	case refCorrupt:
		if err == nil {
			t.Fatalf("refInflate fails (%s) after %q; got %q", res.detail, res.out, got)
		}
		if errors.Is(err, ErrInflateLimit) && !overLimit(len(res.out)) {
			t.Fatalf("ErrInflateLimit but refInflate decodes only %d bytes before failing", len(res.out))
		}
	}
}

// flateMessage decodes a message payload with compress/flate as RFC 7692
// section 7.2 reads it: followed by the sync tail, and with a new DEFLATE
// stream, with the window so far, after a final block that ends before the
// payload does (section 7.2.1). It stops once the output exceeds limit (if
// >= 0), returning nil, or at the first error; it returns a nil error also
// when the input ends after the sync tail without a final block.
func flateMessage(dict, payload []byte, limit int) ([]byte, error) {
	r := bytes.NewReader(append(bytes.Clone(payload), syncTail...)) // an io.ByteReader: read exactly
	hist := bytes.Clone(dict)
	start := len(hist)
	for {
		var fr io.Reader = flate.NewReaderDict(r, hist[max(0, len(hist)-32768):])
		if limit >= 0 {
			fr = io.LimitReader(fr, int64(limit+1-(len(hist)-start)))
		}
		out, err := io.ReadAll(fr)
		hist = append(hist, out...)
		switch {
		case err != nil || limit >= 0 && len(hist)-start > limit:
			return hist[start:], err
		case int(r.Size())-r.Len() >= len(payload):
			return hist[start:], nil
		}
	}
}

func TestRefInflate(t *testing.T) {
	// The reference decoder itself, on the RFC examples and flate output.
	for _, p := range [][]byte{rfcHelloCompressed, rfcHelloStored, rfcHelloTwoBlocks} {
		res := refInflate(nil, append(bytes.Clone(p), syncTail...), -1)
		if res.end != refClean || string(res.out) != "Hello" {
			t.Errorf("%x: %q, %v %s", p, res.out, res.end, res.detail)
		}
	}
	res := refInflate(nil, append(bytes.Clone(rfcHelloFinal), syncTail...), -1)
	if res.end != refFinal || string(res.out) != "Hello" {
		t.Errorf("final: %q, %v", res.out, res.end)
	}
	// After a final block, the message goes on (RFC 7692 section 7.2.1).
	res = refInflateMessage(nil, cat(rfcHelloFinal[:7], rfcHelloSharedWindow), -1)
	if res.end != refClean || string(res.out) != "HelloHello" {
		t.Errorf("blocks after a final block: %q, %v %s", res.out, res.end, res.detail)
	}
	res = refInflateMessage(nil, rfcHelloFinal, -1)
	if res.end != refClean || string(res.out) != "Hello" {
		t.Errorf("RFC 7692 7.2.3.4 message: %q, %v %s", res.out, res.end, res.detail)
	}
	res = refInflate([]byte("Hello"), append(bytes.Clone(rfcHelloSharedWindow), syncTail...), -1)
	if res.end != refClean || string(res.out) != "Hello" || res.maxDist != 5 {
		t.Errorf("shared window: %q, %v, max distance %d", res.out, res.end, res.maxDist)
	}
	if res := refInflate(nil, append(bytes.Clone(rfcHelloSharedWindow), syncTail...), -1); res.end != refCorrupt {
		t.Errorf("shared window without dictionary: %v", res.end)
	}
	rng := rand.New(rand.NewSource(5))
	msgs := [][]byte{jsonText(rng, 3000), randomBytes(rng, 70000), bytes.Repeat([]byte("xyz"), 30000)}
	for _, level := range []int{flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, flate.BestCompression} {
		for _, m := range msgs {
			p := deflateStream(t, level, m)[0]
			res := refInflate(nil, append(p, syncTail...), -1)
			if res.end != refClean || !bytes.Equal(res.out, m) {
				t.Errorf("level %d: %d bytes, %v %s; want %d", level, len(res.out), res.end, res.detail, len(m))
			}
			if level <= flate.NoCompression && res.maxDist != 0 {
				t.Errorf("level %d: back-reference distance %d", level, res.maxDist)
			}
		}
	}
}

// refEnd is how refInflate stopped.
type refEnd int

const (
	refTruncated refEnd = iota // the input ended inside a block, or after one but mid-byte
	refFinal                   // a block with BFINAL set ended
	refClean                   // the input ended right after a block, on a byte boundary
	refCorrupt                 // the data is invalid
	refOverLimit               // the output exceeded the limit
)

func (e refEnd) String() string {
	return [...]string{"truncated", "final", "clean", "corrupt", "over limit"}[e]
}

type refResult struct {
	out     []byte
	end     refEnd
	detail  string
	maxDist int // the longest back-reference distance seen
}

// refInflate is an independent DEFLATE decoder (RFC 1951), written for
// clarity after zlib's puff.c: bit by bit, canonical Huffman codes by
// counting. dict is the window before data (its last 32 KiB count). It
// follows compress/flate's rules where RFC 1951 leaves room: Huffman codes
// must be complete, except a single code of length 1; at most 286 literal
// and 30 distance codes. It stops after the first final block, or once the
// output exceeds limit (if >= 0).
func refInflate(dict, data []byte, limit int) refResult {
	return refDecode(dict, data, 0, limit)
}

// refInflateMessage decodes a message payload as RFC 7692 section 7.2 reads
// it: followed by the sync tail, and with more blocks after a final block
// that ends before the payload does (section 7.2.1), with the window so far.
func refInflateMessage(dict, payload []byte, limit int) refResult {
	return refDecode(dict, append(bytes.Clone(payload), syncTail...), len(payload), limit)
}

// refDecode decodes data until a final block ends at or after byte msgLen,
// or the data ends or is invalid. After a final block that ends before,
// the next block starts on the next byte boundary.
func refDecode(dict, data []byte, msgLen, limit int) refResult {
	if len(dict) > 32768 {
		dict = dict[len(dict)-32768:]
	}
	d := &refDecoder{in: data, hist: bytes.Clone(dict), start: len(dict), limit: limit}
	res := refResult{}
	for {
		final, err := d.block()
		res.out, res.maxDist = d.hist[d.start:], d.maxDist
		switch {
		case errors.Is(err, errRefOverLimit):
			res.end = refOverLimit
			return res
		case errors.Is(err, errRefTruncated):
			res.end = refTruncated
			return res
		case err != nil:
			res.end, res.detail = refCorrupt, err.Error()
			return res
		case final && d.pos < msgLen:
			d.bits, d.nbits = 0, 0 // padding
		case final:
			res.end = refFinal
			return res
		case d.pos == len(d.in):
			res.end = refTruncated
			if d.nbits == 0 {
				res.end = refClean
			}
			return res
		}
	}
}

var (
	errRefTruncated = errors.New("input ends")
	errRefOverLimit = errors.New("over the limit")
)

type refDecoder struct {
	in      []byte
	pos     int
	bits    uint32
	nbits   uint
	hist    []byte // dict, then output
	start   int    // len(dict)
	limit   int
	maxDist int
}

func (d *refDecoder) overLimit() bool {
	return d.limit >= 0 && len(d.hist)-d.start > d.limit
}

func (d *refDecoder) getBits(n uint) (int, error) {
	for d.nbits < n {
		if d.pos == len(d.in) {
			return 0, errRefTruncated
		}
		d.bits |= uint32(d.in[d.pos]) << d.nbits
		d.pos++
		d.nbits += 8
	}
	v := int(d.bits & (1<<n - 1))
	d.bits >>= n
	d.nbits -= n
	return v, nil
}

func (d *refDecoder) block() (final bool, err error) {
	hdr, err := d.getBits(3)
	if err != nil {
		return false, err
	}
	final = hdr&1 == 1
	switch hdr >> 1 {
	case 0:
		return final, d.stored()
	case 1:
		return final, d.codes(refFixedLit, refFixedDist)
	case 2:
		lit, dist, err := d.dynamicTables()
		if err != nil {
			return final, err
		}
		return final, d.codes(lit, dist)
	default:
		return final, errors.New("reserved block type")
	}
}

func (d *refDecoder) stored() error {
	d.bits, d.nbits = 0, 0 // to a byte boundary
	if len(d.in)-d.pos < 4 {
		d.pos = len(d.in)
		return errRefTruncated
	}
	n := int(d.in[d.pos]) | int(d.in[d.pos+1])<<8
	nn := int(d.in[d.pos+2]) | int(d.in[d.pos+3])<<8
	d.pos += 4
	if n != ^nn&0xffff {
		return errors.New("stored length mismatch")
	}
	if len(d.in)-d.pos < n {
		d.hist = append(d.hist, d.in[d.pos:]...)
		d.pos = len(d.in)
		return errRefTruncated
	}
	d.hist = append(d.hist, d.in[d.pos:d.pos+n]...)
	d.pos += n
	if d.overLimit() {
		return errRefOverLimit
	}
	return nil
}

// refHuffman is a canonical Huffman code: how many codes of each length,
// and the symbols in code order.
type refHuffman struct {
	count  [16]int
	symbol []int
}

// newRefHuffman builds a code from code lengths; ok is false for an
// over-subscribed or incomplete code (except one code of length 1, or none).
func newRefHuffman(lengths []int) (h *refHuffman, ok bool) {
	h = new(refHuffman)
	for _, l := range lengths {
		h.count[l]++
	}
	if h.count[0] == len(lengths) {
		return h, true // no codes: fails when used
	}
	left := 1
	maxLen := 0
	for l := 1; l < 16; l++ {
		left <<= 1
		left -= h.count[l]
		if left < 0 {
			return nil, false
		}
		if h.count[l] > 0 {
			maxLen = l
		}
	}
	if left > 0 && !(maxLen == 1 && h.count[1] == 1) {
		return nil, false
	}
	var offs [16]int
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	h.symbol = make([]int, len(lengths))
	for sym, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = sym
			offs[l]++
		}
	}
	return h, true
}

func (d *refDecoder) decode(h *refHuffman) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := d.getBits(1)
		if err != nil {
			return 0, err
		}
		code |= b
		count := h.count[l]
		if code-count < first {
			return h.symbol[index+code-first], nil
		}
		index += count
		first += count
		first <<= 1
		code <<= 1
	}
	return 0, errors.New("no such code")
}

var (
	refLengthBase  = [29]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	refLengthExtra = [29]uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	refDistBase    = [30]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	refDistExtra   = [30]uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}

	refFixedLit, refFixedDist = refFixedTables()
)

func refFixedTables() (lit, dist *refHuffman) {
	var l [288]int
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	lit, _ = newRefHuffman(l[:])
	// The fixed distance code has 32 five-bit codes; 30 and 31 are invalid.
	dist = &refHuffman{symbol: make([]int, 32)}
	dist.count[5] = 32
	for i := range dist.symbol {
		dist.symbol[i] = i
	}
	return lit, dist
}

func (d *refDecoder) codes(lit, dist *refHuffman) error {
	for {
		sym, err := d.decode(lit)
		if err != nil {
			return err
		}
		switch {
		case sym < 256:
			d.hist = append(d.hist, byte(sym))
			if d.overLimit() {
				return errRefOverLimit
			}
			continue
		case sym == 256:
			return nil
		case sym > 285:
			return errors.New("invalid length symbol")
		}
		sym -= 257
		extra, err := d.getBits(refLengthExtra[sym])
		if err != nil {
			return err
		}
		length := refLengthBase[sym] + extra
		dsym, err := d.decode(dist)
		if err != nil {
			return err
		}
		if dsym > 29 {
			return errors.New("invalid distance symbol")
		}
		extra, err = d.getBits(refDistExtra[dsym])
		if err != nil {
			return err
		}
		distance := refDistBase[dsym] + extra
		if distance > min(len(d.hist), 32768) {
			return errors.New("distance too far back")
		}
		d.maxDist = max(d.maxDist, distance)
		for i := 0; i < length; i++ {
			d.hist = append(d.hist, d.hist[len(d.hist)-distance])
		}
		if d.overLimit() {
			return errRefOverLimit
		}
	}
}

func (d *refDecoder) dynamicTables() (lit, dist *refHuffman, err error) {
	nlit, err := d.getBits(5)
	if err != nil {
		return nil, nil, err
	}
	ndist, err := d.getBits(5)
	if err != nil {
		return nil, nil, err
	}
	ncode, err := d.getBits(4)
	if err != nil {
		return nil, nil, err
	}
	nlit, ndist, ncode = nlit+257, ndist+1, ncode+4
	if nlit > 286 || ndist > 30 {
		return nil, nil, errors.New("too many codes")
	}
	order := [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	var clen [19]int
	for i := 0; i < ncode; i++ {
		if clen[order[i]], err = d.getBits(3); err != nil {
			return nil, nil, err
		}
	}
	lencode, ok := newRefHuffman(clen[:])
	if !ok {
		return nil, nil, errors.New("bad code-length code")
	}
	lengths := make([]int, nlit+ndist)
	for i := 0; i < len(lengths); {
		sym, err := d.decode(lencode)
		if err != nil {
			return nil, nil, err
		}
		if sym < 16 {
			lengths[i] = sym
			i++
			continue
		}
		var rep, val int
		switch sym {
		case 16:
			if i == 0 {
				return nil, nil, errors.New("repeat with no previous length")
			}
			val = lengths[i-1]
			rep, err = d.getBits(2)
			rep += 3
		case 17:
			rep, err = d.getBits(3)
			rep += 3
		default:
			rep, err = d.getBits(7)
			rep += 11
		}
		if err != nil {
			return nil, nil, err
		}
		if i+rep > len(lengths) {
			return nil, nil, errors.New("too many lengths")
		}
		for ; rep > 0; rep-- {
			lengths[i] = val
			i++
		}
	}
	if lit, ok = newRefHuffman(lengths[:nlit]); !ok {
		return nil, nil, errors.New("bad literal/length code")
	}
	if dist, ok = newRefHuffman(lengths[nlit:]); !ok {
		return nil, nil, errors.New("bad distance code")
	}
	return lit, dist, nil
}

// BenchmarkInflate decompresses 1 KiB JSON-like messages (64 different ones,
// in turn), with and without context takeover, and messages each ending in
// a BFINAL block, as a sender without sync flush writes them (RFC 7692
// section 7.2.3.4).
func BenchmarkInflate(b *testing.B) {
	rng := rand.New(rand.NewSource(15))
	msgs := make([][]byte, 64)
	for i := range msgs {
		msgs[i] = jsonText(rng, 1024)
	}
	cases := []struct {
		name     string
		params   DeflateParams
		payloads [][]byte
	}{
		{"takeover", DeflateParams{}, deflateStream(b, flate.BestSpeed, msgs...)},
		{"no_takeover", DeflateParams{ServerNoContextTakeover: true}, nil},
		{"final_block", DeflateParams{ServerNoContextTakeover: true}, nil},
	}
	for _, m := range msgs {
		p := deflateStream(b, flate.BestSpeed, m)[0]
		cases[1].payloads = append(cases[1].payloads, p)
		cases[2].payloads = append(cases[2].payloads, append(finalStream(b, m), 0x00))
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			f := NewInflater(c.params)
			buf := make([]byte, 0, 4096)
			b.SetBytes(1024)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Going round the takeover stream again works: each message
				// refers only to the ones before it, at the same distances.
				if _, err := f.Inflate(buf, c.payloads[i%len(c.payloads)], -1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// finalStream returns msg compressed as a whole DEFLATE stream: blocks
// ending with one that has BFINAL set (compress/flate's Close).
func finalStream(t testing.TB, msg []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
