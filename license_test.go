package lomond

import (
	"os"
	"strings"
	"testing"
)

// TestLicense: the MIT licence pkg.go.dev needs to show the documentation is
// in place, with the project's copyright line.
func TestLicense(t *testing.T) {
	data, err := os.ReadFile("LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{
		"MIT License",
		"Copyright (c) 2026 The lomond-go authors",
		"Permission is hereby granted, free of charge,",
		`THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("LICENSE lacks %q", want)
		}
	}
}
