package protocol

import (
	"testing"
	"unicode/utf8"
)

// Streaming UTF-8 validation, sans I/O: text cut into pieces at every
// position, as reads and frames cut it.

func TestUTF8(t *testing.T) {
	valid := "aé€😀z" // 1-, 2-, 3- and 4-byte sequences
	t.Run("ValidTextSplitAnywhereIsValid", func(t *testing.T) {
		for i := 0; i <= len(valid); i++ {
			for j := i; j <= len(valid); j++ {
				var v UTF8
				if !v.Write([]byte(valid[:i])) || !v.Write([]byte(valid[i:j])) || !v.Write([]byte(valid[j:])) {
					t.Fatalf("split at %d and %d: rejected", i, j)
				}
				if !v.Done() {
					t.Fatalf("split at %d and %d: Done = false", i, j)
				}
			}
		}
	})
	t.Run("TextEndingInsideACharacterIsNotDone", func(t *testing.T) {
		for _, s := range []string{"é", "€", "😀"} {
			for cut := 1; cut < len(s); cut++ {
				var v UTF8
				if !v.Write([]byte(s[:cut])) {
					t.Errorf("%q cut at %d: the prefix was rejected", s, cut)
				}
				if v.Done() {
					t.Errorf("%q cut at %d: Done = true", s, cut)
				}
				if !v.Write([]byte("a")) || !v.Done() {
					t.Errorf("%q cut at %d: Done did not reset the validator", s, cut)
				}
			}
		}
	})
	t.Run("InvalidByteFailsAtOnce", func(t *testing.T) {
		for _, bad := range []string{"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "a\x80"} {
			var v UTF8
			if v.Write([]byte(bad)) {
				t.Errorf("%q accepted", bad)
			}
		}
	})
	t.Run("ImpossibleSequenceStartFailsBeforeItsEnd", func(t *testing.T) {
		// 0xF5 can start no sequence; 0xE0 0x80 can continue to none
		// (overlong): both fail without waiting for more bytes.
		for _, bad := range []string{"\xf5", "\xe0\x80", "\xf0\x80"} {
			var v UTF8
			if v.Write([]byte(bad)) {
				t.Errorf("%q accepted as a prefix", bad)
			}
		}
	})
	t.Run("AgreesWithTheStandardLibrary", func(t *testing.T) {
		for _, s := range []string{"", "plain", valid, "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf", "\xf4\x90", "\xc2"} {
			var v UTF8
			got := v.Write([]byte(s)) && v.Done()
			if want := utf8.ValidString(s); got != want {
				t.Errorf("%q: valid = %v, want %v", s, got, want)
			}
		}
	})
}
