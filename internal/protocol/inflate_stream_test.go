package protocol

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"math/rand"
	"testing"
	"testing/iotest"
)

// readStream decompresses payload through an InflateStream fed by src.
func readStream(f *Inflater, src io.Reader) ([]byte, error) {
	z := f.Stream(src)
	defer z.Close()
	return io.ReadAll(z)
}

// TestInflateStreamMatchesInflate: the stream decoder agrees with Inflate,
// output and verdict, on the RFC examples and the final-block cases, fed
// whole and one byte at a time, and leaves the same context behind.
func TestInflateStreamMatchesInflate(t *testing.T) {
	hello := mustHex("f348cdc9c90700")
	world := deflateStream(t, flate.BestSpeed, []byte(" World"))[0]
	payloads := [][]byte{
		rfcHelloCompressed, rfcHelloStored, rfcHelloFinal, rfcHelloTwoBlocks, {},
		hello, cat(hello, world), cat(hello, mustHex("0300"), mustHex("0300"), mustHex("00")),
		cat(finalStream(t, []byte("one ")), finalBlock(t, []byte("two ")), finalStream(t, []byte("three")), []byte{0x00}),
		cat(hello, rfcHelloSharedWindow), cat(hello, mustHex("07")), cat(hello, mustHex("ffffffff")),
		cat(hello, mustHex("001400ebff4865")), mustHex("ffffffff"),
	}
	for i, p := range payloads {
		for _, noTakeover := range []bool{false, true} {
			for _, oneByte := range []bool{false, true} {
				params := DeflateParams{ServerNoContextTakeover: noTakeover}
				ref, stream := NewInflater(params), NewInflater(params)
				for msg := 1; msg <= 2; msg++ {
					want, werr := ref.Inflate(nil, p, -1)
					var src io.Reader = bytes.NewReader(p)
					if oneByte {
						src = iotest.OneByteReader(src)
					}
					got, gerr := readStream(stream, src)
					if (werr == nil) != (gerr == nil) || werr == nil && !bytes.Equal(got, want) {
						t.Fatalf("payload %d (%x), takeover %v, one byte %v, message %d: stream %q, %v; Inflate %q, %v",
							i, p, !noTakeover, oneByte, msg, got, gerr, want, werr)
					}
					if gerr != nil {
						if !errors.Is(gerr, ErrInflateCorrupt) {
							t.Fatalf("payload %d: stream error %v does not wrap ErrInflateCorrupt", i, gerr)
						}
						break
					}
				}
				// The context left behind is Inflate's.
				if werrNil(ref, stream) != "" {
					t.Fatalf("payload %d: %s", i, werrNil(ref, stream))
				}
			}
		}
	}
}

func werrNil(a, b *Inflater) string {
	if !bytes.Equal(a.window, b.window) {
		return "the windows differ"
	}
	return ""
}

// TestInflateStreamLargeParts: a message of 4 MiB sent in 64 KiB parts by
// DeflatePart decodes through the stream with context taken over into the
// next message, and a source error comes through as it is.
func TestInflateStreamLargeParts(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	words := []string{"alpha ", "beta ", "gamma ", "delta ", "lomond "}
	var msg bytes.Buffer
	for msg.Len() < 4<<20 {
		msg.WriteString(words[rng.Intn(len(words))])
	}
	for _, takeover := range []bool{true, false} {
		params := DeflateParams{ClientNoContextTakeover: !takeover, ServerNoContextTakeover: !takeover}
		d, f := NewDeflater(params, 0), NewInflater(params)
		for round := 0; round < 2; round++ {
			var wire []byte
			b := msg.Bytes()
			for len(b) > 0 {
				n := min(len(b), 64<<10)
				wire = d.DeflatePart(wire, b[:n], n == len(b))
				b = b[n:]
			}
			got, err := readStream(f, bytes.NewReader(wire))
			if err != nil || !bytes.Equal(got, msg.Bytes()) {
				t.Fatalf("takeover %v round %d: %d bytes, %v; want the %d bytes", takeover, round, len(got), err, msg.Len())
			}
		}
	}
	boom := errors.New("boom")
	f := NewInflater(DeflateParams{})
	_, err := readStream(f, io.MultiReader(bytes.NewReader(rfcHelloCompressed[:3]), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || errors.Is(err, ErrInflateCorrupt) {
		t.Fatalf("source error: %v, want boom as it is", err)
	}
}
