package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/wasmserve/wasmserve/host/internal/config"
)

func TestREADMEDocumentsEveryKey(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range config.ServerKeys() {
		if !strings.Contains(string(readme), "| `"+k.Name+"` |") {
			t.Errorf("README's configuration reference lacks a row for %q", k.Name)
		}
	}
	for _, k := range config.ClientKeys() {
		if !strings.Contains(string(readme), "| `"+k.Name+"` |") {
			t.Errorf("README's configuration reference lacks a row for the client key %q", k.Name)
		}
	}
}
