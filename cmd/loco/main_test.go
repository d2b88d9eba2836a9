package main

import (
	"os"
	"testing"

	"github.com/locolan/loco/internal/testenv"
)

func TestMain(m *testing.M) {
	if role := os.Getenv("LOCO_TEST_DAEMON"); role != "" {
		fakeDaemon(role) // never returns
	}
	os.Exit(testenv.Main(m))
}
